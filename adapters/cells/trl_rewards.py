# %%
# GRPO rewards (DSA core): strict format, partial format and the gym's rubric (scaled to about -1..1),
# TRL/Unsloth convention (completions as message lists). A prompt ending inside <think> is detected and
# the tag put back before judging. The gym reward is gold-aware: the gym scores an answer where the gold
# reply abstains (a missing fact) or names a conflict up to +50, above the right abstention's +30, so on
# the raw rubric GRPO pays the model to invent the missing fact; here that answer scores -5.
GYM_REWARD_SCALE = 0.02
DSA_REWARD_FUNCS = trl_rewards(gym_scale=GYM_REWARD_SCALE, gym_kind="gym-gold-aware")
