"""Human-readable output of an evaluation run: ``report.md`` tables and ``report.png`` bars.

Shapes: :func:`render_markdown` (metrics dict, optional other run's metrics, labels) -> Markdown text;
:func:`write_plot` (same, a path) -> writes a PNG with three panels per type: strict format rate,
gym safe rate, gym hallucination rate. With ``--compare`` both runs stand side by side; the
gold replies' own figures (the ceiling) are shown beside them, never a flat 50.
"""

from __future__ import annotations

from pathlib import Path

from .dsa_format import FAILURE_KINDS
from .evaluation import type_order
from .gym_scorer import BRANCHES


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def _num(value) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _overall_rows(runs: list[tuple[str, dict]], gold: dict) -> tuple[list[str], list[list[str]]]:
    header = ["metric"] + [label for label, _ in runs] + ["gold replies (ceiling)"]
    spec = [
        ("strict format", lambda g: _pct(g["strict_format_rate"]), None),
        ("lenient format (three blocks found)", lambda g: _pct(g["lenient_format_rate"]), None),
        ("`<think>` present", lambda g: _pct(g["tag_presence"]["think"]), None),
        ("`<proof>` present", lambda g: _pct(g["tag_presence"]["proof"]), None),
        ("`<answer>` present", lambda g: _pct(g["tag_presence"]["answer"]), None),
        ("proofs quoting the context verbatim", lambda g: _pct(g["proof_grounding_share"]), None),
        ("gym mean reward", lambda g: _num(g["gym"]["mean_reward"]), lambda o: _num(o["mean_reward"])),
        ("gym safe rate", lambda g: _pct(g["gym"]["safe_rate"]), lambda o: _pct(o["safe_rate"])),
        ("gym hallucination rate", lambda g: _pct(g["gym"]["hallucination_rate"]), lambda o: _pct(o["hallucination_rate"])),
        ("gym refusal rate", lambda g: _pct(g["gym"]["refusal_rate"]), lambda o: _pct(o["refusal_rate"])),
        ("gym consistency rate", lambda g: _pct(g["gym"]["consistency_rate"]), lambda o: _pct(o["consistency_rate"])),
        ("gym format-error rate", lambda g: _pct(g["gym"]["format_error_rate"]), lambda o: _pct(o["format_error_rate"])),
        # The gym scores an answer where the gold declines as an answer (up to +50); the gold itself never does it.
        ("answers where the gold abstains or names a conflict",
         lambda g: str(g.get("gold_aware", {}).get("answers_where_gold_declines", "n/a")), lambda o: "0"),
        ("gym mean reward, those answers scored -5 (gold-aware)",
         lambda g: _num(g.get("gold_aware", {}).get("mean_reward")), lambda o: _num(o["mean_reward"])),
    ]
    rows = []
    for name, run_fn, gold_fn in spec:
        rows.append([name] + [run_fn(m["overall"]) for _, m in runs] + [gold_fn(gold) if gold_fn else "—"])
    return header, rows


def render_markdown(metrics: dict, other: dict | None = None, labels: tuple[str, str] = ("this run", "other run"),
                    sources: dict | None = None) -> str:
    """Metrics (and optionally another run's) -> the Markdown report."""
    runs = [(labels[0], metrics)] + ([(labels[1], other)] if other is not None else [])
    lines = ["# DSA evaluation report", ""]
    for key, value in (sources or {}).items():
        lines.append(f"- {key}: `{value}`")
    lines.append(f"- rows evaluated: {metrics['n']}" + (f" ({labels[1]}: {other['n']})" if other else ""))
    lines += ["", "## Overall", ""]
    header, rows = _overall_rows(runs, metrics["gold"]["overall"])
    lines += _table(header, rows)

    lines += ["", "## By type", ""]
    types = type_order(list(metrics["by_type"]) + (list(other["by_type"]) if other else []))
    header = ["type", "run", "n", "strict", "lenient", "grounded proofs", "mean reward", "safe", "hallucination",
              "gold mean reward", "gold safe"]
    rows = []
    for t in types:
        gold = metrics["gold"]["by_type"].get(t)
        for label, m in runs:
            g = m["by_type"].get(t)
            if g is None:
                continue
            rows.append([t, label, str(g["n"]), _pct(g["strict_format_rate"]), _pct(g["lenient_format_rate"]),
                         _pct(g["proof_grounding_share"]), _num(g["gym"]["mean_reward"]), _pct(g["gym"]["safe_rate"]),
                         _pct(g["gym"]["hallucination_rate"]),
                         _num(gold["mean_reward"]) if gold else "n/a", _pct(gold["safe_rate"]) if gold else "n/a"])
    lines += _table(header, rows)

    lines += ["", "## Strict-format failures (rows by primary failure; any = rows with that failure at all)", ""]
    header = ["failure kind"] + [f"{label} primary" for label, _ in runs] + [f"{label} any" for label, _ in runs]
    rows = [[kind] + [str(m["overall"]["strict_failures"][kind]) for _, m in runs]
            + [str(m["overall"]["strict_failures_any"][kind]) for _, m in runs] for kind in FAILURE_KINDS]
    lines += _table(header, rows)

    lines += ["", "## Gym rubric branch that decided each row", ""]
    header = ["branch"] + [label for label, _ in runs] + ["gold replies"]
    rows = [[branch] + [str(m["overall"]["gym"]["branches"][branch]) for _, m in runs]
            + [str(metrics["gold"]["overall"]["branches"][branch])] for branch in BRANCHES]
    lines += _table(header, rows)
    lines += ["", "The gold replies do not score 50 everywhere under the gym's rubric: compare a model "
              "with the gold column, not with a flat 50.", ""]
    return "\n".join(lines)


def write_plot(metrics: dict, path: str | Path, other: dict | None = None,
               labels: tuple[str, str] = ("this run", "other run")) -> None:
    """Write ``report.png``: per type (and overall), strict format / safe / hallucination bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [(labels[0], metrics)] + ([(labels[1], other)] if other is not None else [])
    types = type_order(list(metrics["by_type"]) + (list(other["by_type"]) if other else []))
    groups = ["overall"] + types

    def value(m, group, getter):
        block = m["overall"] if group == "overall" else m["by_type"].get(group)
        return (getter(block) or 0.0) if block else 0.0

    panels = [
        ("strict format rate", lambda b: b["strict_format_rate"], None),
        ("gym safe rate", lambda b: b["gym"]["safe_rate"], lambda b: b["safe_rate"]),
        ("gym hallucination rate", lambda b: b["gym"]["hallucination_rate"], lambda b: b["hallucination_rate"]),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for ax, (title, getter, gold_getter) in zip(axes, panels):
        series = len(runs) + (1 if gold_getter is not None else 0)
        width = 0.8 / series
        for k, (label, m) in enumerate(runs):
            xs = [i + (k - (series - 1) / 2) * width for i in range(len(groups))]
            ax.bar(xs, [value(m, g, getter) for g in groups], width, label=label)
        if gold_getter is not None:
            gold = metrics["gold"]
            xs = [i + (len(runs) - (series - 1) / 2) * width for i in range(len(groups))]
            vals = [(gold_getter(gold["overall"] if g == "overall" else gold["by_type"].get(g, {})) or 0.0)
                    if (g == "overall" or g in gold["by_type"]) else 0.0 for g in groups]
            ax.bar(xs, vals, width, label="gold replies", color="lightgray", edgecolor="gray")
        ax.set_title(title)
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels(groups, rotation=20)
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=8)
    fig.tight_layout()
    # No timestamps or software version in the PNG metadata: the file depends only on the metrics.
    fig.savefig(str(path), format="png", dpi=80, metadata={"Software": None})
    plt.close(fig)
