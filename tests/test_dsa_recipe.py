"""benchmarks/dsa_recipe.py: the phase chain, skipping finished phases, resuming GRPO, and a report that
reads its numbers from the evaluations.

The chain runs at tiny scale (models/tiny-gemma3, a few rows, 1-3 steps): it trains, so those tests are
``e2e``; the pieces (the stop callback, the branch table, GRPO prompts) are checked in the fast suite.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings, strategies as st
from markdown_tables import table_rows

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def recipe():
    spec = importlib.util.spec_from_file_location("dsa_recipe", ROOT / "benchmarks" / "dsa_recipe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------------------- fast


def test_unknown_phase_is_a_usage_error(recipe, tmp_path, capsys):
    assert recipe.main(["--out", str(tmp_path / "out"), "--phases", "data,train"]) == 2
    assert "unknown phase(s) train" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_latest_checkpoint_is_the_highest_step(recipe, tmp_path):
    assert recipe.latest_checkpoint(tmp_path / "missing") is None
    for name in ("checkpoint-2", "checkpoint-10", "checkpoint-9", "checkpoint-x", "other-12"):
        (tmp_path / name).mkdir()
    assert recipe.latest_checkpoint(tmp_path).name == "checkpoint-10"


def _run_callback(recipe, max_seconds, per_call, durations, max_steps=100):
    """Drive the stop callback over steps of the given wall durations (a fake clock) -> steps run."""
    clock = [1000.0]
    callback = recipe._stop_callback(max_seconds, per_call, clock=lambda: clock[0])
    state = SimpleNamespace(global_step=0, max_steps=max_steps)
    for duration in durations:
        clock[0] += duration
        state.global_step += 1
        control = SimpleNamespace(should_save=False, should_training_stop=False)
        callback.on_step_end(None, state, control)
        if control.should_training_stop:
            assert control.should_save  # stopping early always leaves a checkpoint to resume from
            break
    return state.global_step


def test_stop_callback_stops_before_the_budget(recipe):
    # 60 s steps, 300 s budget: after step 3 (180 s) one more step plus margin (90 s) still fits; after
    # step 4 (240 s + 90 s > 300 s) it does not.
    assert _run_callback(recipe, 300, None, [60] * 10) == 4
    assert _run_callback(recipe, 10_000, 2, [60] * 10) == 2
    # The last step is never cut: the run ends by itself and needs no checkpoint.
    assert _run_callback(recipe, 10_000, 3, [60] * 3, max_steps=3) == 3
    # A slow step anywhere sets the margin for the rest of the invocation.
    assert _run_callback(recipe, 300, None, [10] * 40) == 29
    assert _run_callback(recipe, 300, None, [10, 100] + [10] * 40) == 7


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["answer_correct", "abstention_wrong", "ungrounded_proof", "format_error"]),
                          st.integers(-50, 50)), min_size=1, max_size=40))
def test_branch_table_adds_up_to_the_mean_reward(recipe, rows):
    results = [{"gym": {"branch": branch, "reward": float(reward)}} for branch, reward in rows]
    table = recipe.branch_table(results)
    assert sum(block["rows"] for block in table.values()) == len(rows)
    assert sum(block["reward"] for block in table.values()) == pytest.approx(sum(r for _, r in rows) / len(rows))
    for branch, block in table.items():
        assert block["rows"] == sum(1 for b, _ in rows if b == branch)


def test_grpo_log_keeps_each_reward_per_step(recipe):
    history = [
        {"loss": 0.1, "reward": 1.0, "rewards/gym_rubric_reward/mean": 0.5, "step_time": 3.0, "step": 1},
        {"loss": 0.2, "reward": 1.5, "rewards/gym_rubric_reward/mean": 0.7, "kl": 0.01, "step": 2},
        {"train_runtime": 9.0, "step": 2},
    ]
    log = recipe.grpo_log(history, [{"from_step": 0, "to_step": 2, "seconds": 9.0}])
    assert log["steps"] == [1, 2]
    assert log["reward"] == [1.0, 1.5] and log["rewards/gym_rubric_reward/mean"] == [0.5, 0.7]
    assert log["kl"] == [None, 0.01] and log["step_time"] == [3.0, None]
    assert "train_runtime" not in log and log["invocations"][0]["to_step"] == 2


def test_equal_reward_groups_count_float32_rounding_as_equal(recipe):
    """Eight gym rewards of 0.6 in float32 (TRL's own group std) are equal, whatever TRL's isclose says."""
    import torch

    rounded = torch.full((8,), 30 * 0.02, dtype=torch.float32)
    std = rounded.std().item()  # as TRL: std of the group's summed rewards
    differing = torch.tensor([1.0, 1.0, -0.1, 1.0, 1.0, 1.0, 1.0, 1.0]).std().item()
    assert 0 < std < recipe.EQUAL_REWARDS_STD and not torch.isclose(torch.tensor(std), torch.tensor(0.0))
    log = {"prompts_per_step": 1, "reward_std": [differing, 0.0, std, None],
           "frac_reward_zero_std": [0.0, 1.0, 0.0, None]}
    assert recipe.equal_reward_groups(log) == (2, 1, 3)
    assert recipe.equal_reward_groups({**log, "prompts_per_step": 2}) is None


def test_grpo_prompts_are_the_evaluated_prompts(recipe, tokenizer, tmp_path):
    """TRL renders each GRPO prompt with the tokenizer's chat template: the same tokens eval_simple.py sends."""
    from adapters.chat import render_prompt
    from adapters.dataset import load_splits, save_splits, to_dataset_dict
    from adapters import synthetic

    rows = synthetic.generate_rows(12, 3)
    save_splits(to_dataset_dict(rows[:8], rows[8:]), tmp_path / "d", force=True)
    grpo, dropped = recipe.grpo_rows(tmp_path / "d", tokenizer, 1536)
    train = list(load_splits(str(tmp_path / "d"))["train"])
    assert dropped == 0 and len(grpo) == len(train)
    for row, item in zip(train, grpo):
        trl_ids = tokenizer.apply_chat_template(item["prompt"], add_generation_prompt=True, tokenize=True,
                                                return_dict=True)["input_ids"]
        assert trl_ids == tokenizer(render_prompt(row["messages"]), add_special_tokens=False)["input_ids"]
        assert item["answer"] == row["messages"][1]["content"] and item["context"] in row["messages"][0]["content"]
    lengths = sorted(len(tokenizer(render_prompt(r["messages"]), add_special_tokens=False)["input_ids"]) for r in train)
    short, kept = recipe.grpo_rows(tmp_path / "d", tokenizer, lengths[3])[0], lengths[3]
    assert len(short) == sum(1 for n in lengths if n <= kept)


def test_prompts_sharing_a_test_context_are_removed(recipe, tokenizer, tmp_path):
    """A fresh generation's train rows that repeat a context of the evaluated test split never reach GRPO."""
    from adapters.dataset import save_splits, to_dataset_dict
    from adapters.gym_scorer import split_user_content
    from adapters import synthetic

    rows = synthetic.generate_rows(12, 5)
    save_splits(to_dataset_dict(rows[:8], rows[8:]), tmp_path / "evaluated", force=True)
    # Two train rows of the second dataset are test rows of the evaluated one (same context and question).
    save_splits(to_dataset_dict(rows[:4] + rows[9:11], rows[:1]), tmp_path / "fresh", force=True)
    grpo, _ = recipe.grpo_rows(tmp_path / "fresh", tokenizer, 1536)
    kept, removed = recipe.without_test_contexts(grpo, tmp_path / "evaluated")
    test_contexts = {split_user_content(row["messages"][0]["content"])[0] for row in rows[8:]}
    assert removed == 2 and len(kept) == 4
    assert not any(item["context"] in test_contexts for item in kept)
    assert [item["answer"] for item in kept] == [row["messages"][1]["content"] for row in rows[:4]]


def test_completion_only_scoring_gives_the_same_log_probs_and_gradients(recipe, tiny_model_dir):
    """The patched TRL fused head: identical completion log-probs and gradients, prompt positions zero."""
    import torch
    import trl.trainer.utils as trl_utils
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    ids = torch.randint(3, 1000, (2, 40))
    labels = ids.clone()
    labels[:, :30] = -100  # the prompt: only the last 10 tokens are a completion
    labels[1, 36:] = -100  # a shorter second completion (padding)

    def run(compact: bool):
        model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
        trl_utils.add_fused_lm_head(model)
        saved = trl_utils._use_triton
        if compact:
            recipe.score_completions_only()
        assert trl_utils._use_triton(torch.device("cpu")) is compact  # only the patch takes the compact path
        try:
            out = model(input_ids=ids, labels=labels, fused_lm_head=True)
        finally:
            trl_utils._use_triton = saved
        out.log_probs.sum().backward()
        grad = model.model.layers[-1].mlp.down_proj.weight.grad.clone()
        return out.log_probs.detach(), grad

    full, full_grad = run(False)
    compact, compact_grad = run(True)
    mask = labels[:, 1:] != -100
    assert torch.allclose(full[mask], compact[mask], atol=1e-5)
    assert (compact[~mask] == 0).all() and (full[~mask] == 0).all()
    assert torch.allclose(full_grad, compact_grad, atol=1e-5)


# --------------------------------------------------------------------------------------- e2e (training)

TINY = ["--rows", "104", "--train-rows", "4", "--steps", "2", "--warmup", "1", "--eval-rows", "3",
        "--max-new-tokens", "6", "--eval-batch-size", "3", "--num-generations", "2", "--max-completion-length", "6"]


@pytest.fixture(scope="module")
def chain(recipe, tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("recipe") / "out"
    argv = ["--out", str(out), "--model", str(tiny_model_dir), "--grpo-steps", "2", *TINY]
    assert recipe.main(argv) == 0
    return out, argv


@pytest.mark.e2e
def test_the_chain_writes_every_phase_and_the_report(chain):
    out, _ = chain
    for done in ("data/data.json", "sft/train_log.json", "sft/model/config.json", "eval-base/metrics.json",
                 "eval-sft/metrics.json", "grpo/grpo_log.json", "grpo/model/config.json", "eval-grpo/metrics.json"):
        assert (out / done).exists(), done
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    log = json.loads((out / "grpo" / "grpo_log.json").read_text())
    assert log["steps"] == [1, 2] and log["total_steps"] == 2
    for name in ("strict_format_reward", "partial_format_reward", "gym_rubric_reward"):
        assert len(log[f"rewards/{name}/mean"]) == 2
    assert not (out / "grpo" / "checkpoints").exists()  # removed once the model is saved
    assert json.loads((out / "data" / "data.json").read_text())["test"] == 100


@pytest.mark.e2e
def test_a_second_invocation_skips_every_finished_phase(recipe, chain, capsys):
    out, argv = chain
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.parent.name == "model"}
    capsys.readouterr()
    assert recipe.main(argv) == 0
    printed = capsys.readouterr().out
    for name in ("data", "sft", "eval base", "eval sft", "grpo", "eval grpo"):
        assert f"{name}: done already" in printed, name
    assert stamps == {p: p.stat().st_mtime_ns for p in stamps}
    assert len((out / "commands.txt").read_text().splitlines()) == 2


@pytest.mark.e2e
def test_the_report_reads_its_numbers_from_the_evaluations(recipe, chain):
    out, _ = chain
    text = (out / "summary.md").read_text()
    overall = table_rows(text, "metric")
    branches = table_rows(text, "branch")
    for column, (label, folder) in enumerate(recipe.STAGES):
        metrics = json.loads((out / folder / "metrics.json").read_text())
        assert overall["strict format"][column] == f"{100 * metrics['overall']['strict_format_rate']:.1f} %"
        assert overall["gym mean reward"][column] == f"{metrics['overall']['gym']['mean_reward']:.2f}"
        assert overall["gym safe"][column] == f"{100 * metrics['overall']['gym']['safe_rate']:.1f} %"
        for branch, count in metrics["overall"]["gym"]["branches"].items():
            cell = branches.get(branch, [None] * 4)[column]
            assert (cell or "0").split(" ")[0] == str(count), (label, branch)
    gold = json.loads((out / "eval-sft" / "metrics.json").read_text())["gold"]
    assert overall["gym mean reward"][3] == f"{gold['overall']['mean_reward']:.2f}"
    by_type = table_rows(text, "row type")
    assert sorted(by_type) == sorted(gold["by_type"])
    for kind, cells in by_type.items():
        stages = [json.loads((out / folder / "metrics.json").read_text())["by_type"].get(kind) for _, folder in recipe.STAGES]
        assert cells[0] == str(next(s["n"] for s in stages if s))
        assert cells[1:4] == [f"{s['gym']['mean_reward']:.2f}" if s else "-" for s in stages]
        assert cells[4] == f"{gold['by_type'][kind]['mean_reward']:.2f}"
    diff = recipe.FL.paired_difference(recipe.FL.row_rewards(out / "eval-grpo"), recipe.FL.row_rewards(out / "eval-sft"))
    row = re.search(r"^\| after GRPO - after SFT \| (\S+) \| \[(\S+), (\S+)\] \| (\d+) / (\d+) \|$", text, re.M)
    assert row.groups() == (f"{diff['mean']:+.2f}", f"{diff['low']:+.2f}", f"{diff['high']:+.2f}",
                            str(diff["better"]), str(diff["worse"]))


def _grpo_only(chain, tmp_path, *flags) -> tuple[Path, list[str]]:
    """A fresh ``--out`` holding the chain's data and SFT phases, and the argv of a grpo-only invocation."""
    done, _ = chain
    out = tmp_path / "out"
    for part in ("data", "sft"):
        shutil.copytree(done / part, out / part)
    return out, ["--out", str(out), "--model", str(ROOT / "models" / "tiny-gemma3"), "--phases", "grpo", *flags, *TINY]


@pytest.mark.e2e
def test_an_interrupted_grpo_phase_resumes_to_the_same_total(recipe, chain, tmp_path):
    out, argv = _grpo_only(chain, tmp_path, "--grpo-steps", "3", "--grpo-steps-per-call", "2")
    assert recipe.main(argv) == 0
    assert not (out / "grpo" / "grpo_log.json").exists()
    checkpoints = sorted(p.name for p in (out / "grpo" / "checkpoints").glob("checkpoint-*"))
    assert checkpoints == ["checkpoint-2"]
    assert recipe.main(argv) == 0
    log = json.loads((out / "grpo" / "grpo_log.json").read_text())
    assert log["total_steps"] == 3 and log["steps"] == [1, 2, 3]
    assert [(i["from_step"], i["to_step"]) for i in log["invocations"]] == [(0, 2), (2, 3)]
    assert (out / "grpo" / "model" / "config.json").exists()


@pytest.mark.e2e
def test_until_budget_ends_the_grpo_phase_where_the_budget_stops_it(recipe, chain, tmp_path):
    out, argv = _grpo_only(chain, tmp_path, "--grpo-steps", "3", "--grpo-steps-per-call", "1", "--grpo-until-budget")
    assert recipe.main(argv) == 0
    log = json.loads((out / "grpo" / "grpo_log.json").read_text())
    assert (log["total_steps"], log["steps"], log["ended_by_budget"]) == (1, [1], True)
    assert (out / "grpo" / "model" / "config.json").exists() and not (out / "grpo" / "checkpoints").exists()


@pytest.mark.e2e
def test_grpo_data_seed_trains_on_a_fresh_generation(recipe, chain, tmp_path):
    out, argv = _grpo_only(chain, tmp_path, "--grpo-steps", "1", "--grpo-data-seed", "7")
    assert recipe.main(argv) == 0
    info = json.loads((out / "grpo" / "data" / "data.json").read_text())
    assert (info["seed"], info["train"]) == (7, 4)
    log = json.loads((out / "grpo" / "grpo_log.json").read_text())
    assert log["prompt_source"] == {"source": "fresh v2 generation, seed 7", "dropped_over_max_length": 0,
                                    "removed_sharing_a_test_context": 0}
    fresh = {row["messages"][0]["content"] for row in
             map(json.loads, (out / "grpo" / "data" / "dipg" / "train.jsonl").read_text().splitlines())}
    sft = {row["messages"][0]["content"] for row in
           map(json.loads, (out / "data" / "dipg" / "train.jsonl").read_text().splitlines())}
    assert log["prompts"] == 4 and not fresh & sft  # other rows than SFT's


def _result(row_id, reward, gold, branch="answer_correct", gold_branch="answer_correct"):
    return {"id": row_id, "gym": {"reward": reward, "branch": branch}, "gold_gym": {"reward": gold, "branch": gold_branch}}


def test_hard_results_are_the_replies_scored_below_the_gold(recipe):
    results = [_result("below", 20.0, 50.0, "answer_wrong"), _result("equal", 30.0, 30.0, "abstention_correct",
                                                                       "abstention_correct"),
               _result("answers where the gold abstains", 50.0, 30.0, "answer_correct", "abstention_correct"),
               _result("format", -50.0, 30.0, "format_error", "abstention_correct")]
    assert [r["id"] for r in recipe.hard_results(results)] == ["below", "format"]
    assert [r["id"] for r in recipe.hard_results(results, "gold-aware")] == [
        "below", "answers where the gold abstains", "format"]
    assert recipe.row_reward(results[2], "gold-aware") == -5.0 and recipe.row_reward(results[2]) == 50.0


def test_declined_lines_count_answers_where_the_gold_declines_and_score_them_minus_5(recipe):
    def row(index, reward, branch, gold_branch):
        return {**_result(index, reward, 30.0, branch, gold_branch), "index": index}

    sft = [row(0, 50.0, "answer_correct", "abstention_correct"), row(1, 20.0, "answer_wrong", "conflict_correct"),
           row(2, 30.0, "abstention_correct", "abstention_correct"), row(3, 50.0, "answer_correct", "answer_correct")]
    grpo = [row(0, 30.0, "abstention_correct", "abstention_correct"), *sft[1:]]
    stages = {"after SFT": sft, "after GRPO": grpo, "gold replies": [{"gym": r["gold_gym"]} for r in sft]}
    table = table_rows("\n".join(recipe.declined_lines(stages)), "gold-aware")
    assert table["rows answered where the gold declines"] == ["2", "1", "0"]
    assert table["of them scored +50 (answer_correct)"] == ["1", "0", "0"]
    # SFT: -5, -5, 30, 50 -> 17.50; GRPO: 30, -5, 30, 50 -> 26.25; the gold replies keep the gym's 30s.
    assert table["gym mean reward over all rows, these scored -5"] == ["17.50", "26.25", "30.00"]
    text = "\n".join(recipe.declined_lines(stages))
    assert "Gold-aware reward, after GRPO - after SFT, paired by test row: +8.75 " in text
    assert "(1 better / 0 worse)" in text


def test_only_selected_keeps_the_chosen_prompts_in_order(recipe, tmp_path):
    (tmp_path / "selected.json").write_text(json.dumps({"hard_ids": ["c", "a", "z"]}))
    rows = [{"id": i} for i in "abcd"]
    assert recipe.only_selected(rows, tmp_path / "selected.json") == [{"id": "a"}, {"id": "c"}]


@pytest.mark.e2e
def test_grpo_select_resumes_by_chunk_and_grpo_trains_on_its_choice(recipe, chain, tmp_path):
    flags = ("--phases", "grpo-select,grpo", "--grpo-prompts", "hard", "--grpo-data-seed", "7", "--grpo-steps", "1",
             "--select-rows", "3", "--select-chunk", "2")
    out, argv = _grpo_only(chain, tmp_path, *flags, "--select-max-minutes", "0.0001")
    select = out / "grpo-select"
    assert recipe.main(argv) == 0  # the budget stops it after one chunk; GRPO waits for the whole selection
    assert sorted(p.name for p in select.glob("chunk-*")) == ["chunk-000"]
    assert not (select / "selected.json").exists() and not (out / "grpo" / "grpo_log.json").exists()
    first = (select / "chunk-000" / "eval" / "results.jsonl").stat().st_mtime_ns
    assert recipe.main([*argv, "--select-max-minutes", "55"]) == 0
    assert (select / "chunk-000" / "eval" / "results.jsonl").stat().st_mtime_ns == first  # not evaluated again
    results = [json.loads(line) for chunk in ("chunk-000", "chunk-001")
               for line in (select / chunk / "eval" / "results.jsonl").read_text().splitlines()]
    pool = [json.loads(line)["metadata"]["id"] for line in
            (out / "grpo" / "data" / "dipg" / "train.jsonl").read_text().splitlines()]
    assert [r["id"] for r in results] == pool[:3]
    selected = json.loads((select / "selected.json").read_text())
    hard = [r["id"] for r in results if r["gym"]["reward"] < r["gold_gym"]["reward"]]
    assert (selected["evaluated"], selected["hard_ids"]) == (3, hard)
    log = json.loads((out / "grpo" / "grpo_log.json").read_text())
    assert log["prompts"] == len(hard)
    assert log["prompt_source"]["selected"].startswith(f"{len(hard)} of 3 evaluated")
    shutil.copytree(chain[0] / "eval-sft", out / "eval-sft")
    assert recipe.main([*argv, "--phases", "report"]) == 0
    assert (f"GRPO prompts (grpo-select): {len(hard)} of the first 3 GRPO prompts, those whose greedy SFT reply "
            "scored below the gold reply" in (out / "summary.md").read_text())


def test_hard_prompts_without_a_selection_exit_2(recipe, tmp_path, capsys):
    (tmp_path / "sft" / "model").mkdir(parents=True)
    with pytest.raises(SystemExit) as exc:
        recipe.train_grpo(recipe.build_parser().parse_args(["--out", str(tmp_path), "--grpo-prompts", "hard",
                                                             "--model", str(ROOT / "models" / "tiny-gemma3")]),
                          ROOT / "models" / "tiny-gemma3", tmp_path / "grpo")
    assert exc.value.code == 2
    assert "needs the grpo-select phase" in capsys.readouterr().err


def test_reward_weights_parse_three_non_negative_numbers(recipe):
    assert recipe.parse_reward_weights("1,1,1") == [1.0, 1.0, 1.0]
    assert recipe.parse_reward_weights(" 0, 0.5 ,1") == [0.0, 0.5, 1.0]
    for bad, message in (("1,1", "give 3"), ("a,b,c", "not numbers"), ("0,0,0", "not all 0"),
                         ("1,-1,1", ">= 0"), ("1,nan,1", "finite")):
        with pytest.raises(ValueError, match=message):
            recipe.parse_reward_weights(bad)


def test_bad_reward_weights_exit_2_before_anything_is_written(recipe, tmp_path, capsys):
    out = tmp_path / "out"
    assert recipe.main(["--out", str(out), "--phases", "grpo", "--reward-weights", "1,1"]) == 2
    assert capsys.readouterr().err.startswith("error: --reward-weights '1,1'")
    assert not out.exists()


@pytest.mark.e2e
def test_reward_weights_decide_the_reward_grpo_trains_on(recipe, chain, tmp_path):
    out, argv = _grpo_only(chain, tmp_path, "--grpo-steps", "2", "--reward-weights", "1,0,0")
    assert recipe.main(argv) == 0
    log = json.loads((out / "grpo" / "grpo_log.json").read_text())
    assert log["reward_weights"] == {"strict": 1.0, "partial": 0.0, "gym": 0.0}
    # Every reward is still logged; the trained reward is the strict format's alone. (The tiny model never
    # writes the tags, so strict is 0 while the gym rubric is not: the two sums differ.)
    gym = log["rewards/gym_rubric_reward/mean"]
    assert any(value != 0 for value in gym)
    assert log["reward"] == pytest.approx(log["rewards/strict_format_reward/mean"])
    assert log["reward"] != pytest.approx([a + b for a, b in zip(log["rewards/strict_format_reward/mean"], gym)])


@pytest.mark.e2e
def test_the_report_names_the_reward_weights(recipe, chain):
    out, _ = chain
    text = (out / "summary.md").read_text()
    assert "; reward weights strict 1, partial 1, gym 1;" in text
    log = json.loads((out / "grpo" / "grpo_log.json").read_text())
    equal, counted, steps = recipe.equal_reward_groups(log)
    assert f"Steps whose 2 rewards were all equal (group std < 1e-06: no advantage, nothing learned): {equal} of {steps} " \
           f"(TRL's frac_reward_zero_std counts {counted} of them)." in text
