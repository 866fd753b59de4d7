# %%
# GRPO rewards (DSA core): strict format, partial format and the gym's rubric (scaled to about -1..1),
# Tunix convention fn(prompts, completions: list[str], **columns). The prompts pre-fill <think>, so the
# rewards put it back before judging: a pre-filled tag must not zero the format reward.
GYM_REWARD_SCALE = 0.02
DSA_REWARD_FNS = tunix_rewards(prefilled_think=True, gym_scale=GYM_REWARD_SCALE)
