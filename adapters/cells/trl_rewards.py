# %%
# GRPO rewards (DSA core): strict format, partial format and the gym's rubric (scaled to about -1..1),
# TRL/Unsloth convention (completions as message lists). A prompt ending inside <think> is detected and
# the tag put back before judging.
GYM_REWARD_SCALE = 0.02
DSA_REWARD_FUNCS = trl_rewards(gym_scale=GYM_REWARD_SCALE)
