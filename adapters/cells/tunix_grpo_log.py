# %%
# GRPO rewards recorded for the log: every reward call during training keeps the mean reward of each DSA
# reward function; the next cell (tunix_grpo_train_log) writes them with the steps to OUTPUT_DIR/grpo_log.json.
import functools

DSA_GRPO_REWARDS = {}


def dsa_recorded_rewards(reward_fns):
    """The same reward functions, each recording the mean of every batch it scores."""

    def record(fn):
        @functools.wraps(fn)
        def recorded(prompts, completions, **columns):
            scores = fn(prompts=prompts, completions=completions, **columns)
            DSA_GRPO_REWARDS.setdefault(fn.__name__, []).append(sum(scores) / max(len(scores), 1))
            return scores

        return recorded

    return [record(fn) for fn in reward_fns]


DSA_REWARD_FNS = dsa_recorded_rewards(DSA_REWARD_FNS)
