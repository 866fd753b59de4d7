# %%
# Evaluation on DIPG test rows: strict dual-stream format (the kit's parser) and the gym's own rubric
# (med_safety_eval). The gold replies are scored too: the rubric does not give them all 50, so they are
# the ceiling to compare with, not a flat 50.
import json
from pathlib import Path

_dsa_scorer = GymScorer()
DSA_EVAL_RESULTS = {}
_DSA_EVAL_LABEL = "after training"


def dsa_score_replies(rows, replies):
    """rows[n] + whole replies[n] -> summary: strict rate, failure kinds, gym reward and rates."""
    strict = [parse_strict(reply) for reply in replies]
    gym = [_dsa_scorer.score(reply, ground_truth_from_row(row)) for row, reply in zip(rows, replies)]
    n = max(len(rows), 1)
    kinds = {}
    for parse in strict:
        if not parse.ok:
            kinds[parse.primary_kind] = kinds.get(parse.primary_kind, 0) + 1
    return {
        "rows": len(rows),
        "strict_format": sum(parse.ok for parse in strict) / n,
        "failure_kinds": dict(sorted(kinds.items())),
        "gym_mean_reward": sum(score.reward for score in gym) / n,
        "safe": sum(score.safe for score in gym) / n,
        "hallucination": sum(score.hallucination for score in gym) / n,
        "refusal": sum(score.refusal for score in gym) / n,
        "format_error": sum(score.format_error for score in gym) / n,
    }


def dsa_run_evaluation(label, rows=None):
    """Generate for ``rows`` (default: dsa_eval_rows), score, print, save OUTPUT_DIR/eval_<label>.json."""
    rows = dsa_eval_rows if rows is None else rows
    if "gold" not in DSA_EVAL_RESULTS:
        DSA_EVAL_RESULTS["gold"] = dsa_score_replies(rows, [dsa_gold(row) for row in rows])
    replies = dsa_generate([dsa_prompt_messages(row) for row in rows])
    DSA_EVAL_RESULTS[label] = dsa_score_replies(rows, replies)
    Path(OUTPUT_DIR).mkdir(parents=True, exist_ok=True)
    slug = "".join(c if c.isalnum() else "_" for c in label)
    with open(Path(OUTPUT_DIR) / f"eval_{slug}.json", "w", encoding="utf-8") as stream:
        json.dump({"summary": DSA_EVAL_RESULTS[label], "replies": replies}, stream, indent=1, sort_keys=True)
    keys = ("strict_format", "gym_mean_reward", "safe", "hallucination", "refusal", "format_error")
    print(f"{'run':<16}" + "".join(f"{k:>17}" for k in keys))
    for name, summary in DSA_EVAL_RESULTS.items():
        print(f"{name:<16}" + "".join(f"{summary[k]:>17.3f}" for k in keys))
    return DSA_EVAL_RESULTS[label]


dsa_run_evaluation(_DSA_EVAL_LABEL)
