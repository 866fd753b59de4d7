# %%
# GRPO rewards (DSA core): strict format, partial format and the gym's rubric (scaled to about -1..1),
# Tunix convention fn(prompts, completions: list[str], **columns). The prompts pre-fill <think>, so the
# rewards put it back before judging: a pre-filled tag must not zero the format reward. The gym reward is
# gold-aware: the gym scores an answer where the gold reply abstains (a missing fact) or names a conflict up
# to +50, above the right abstention's +30; here that answer scores -5.
GYM_REWARD_SCALE = 0.02
DSA_REWARD_FNS = tunix_rewards(prefilled_think=True, gym_scale=GYM_REWARD_SCALE, gym_kind="gym-gold-aware")
