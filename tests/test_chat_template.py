"""Masks, stop ids and prompts from any tokenizer's chat template (adapters/chat_template.py, issue 13).

Three templates (``benchmarks/template_tokenizers.py``): Gemma (the kit's, real Gemma-3 tokenizer),
ChatML (the real SmolLM2-135M-Instruct tokenizer and template, ``models/tiny-smollm2``) and a
Llama-3-style one (Meta's Llama-3 template on the SmolLM2 tokenizer with the Llama-3 special tokens
added: Llama-3-style, not Llama's vocabulary).

Oracles independent of the module's span search: the reply's start is the length of the template's
own rendering of the turns before it with ``add_generation_prompt=True``; the reply as the template
writes it is the content trimmed (Gemma, Llama 3: Jinja ``trim``) or not (ChatML); the end-of-turn
text is the template's documented one. Expected mask: 1 on exactly the tokens inside those spans.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.chat import STOP_TOKEN_IDS, render_conversation, render_prompt
from adapters.chat_template import (
    KNOWN_CHAT_CONTROLS,
    apply_template,
    generation_stop_kwargs,
    model_prompt,
    read_template,
    render_with_template,
    set_generation_stops,
    stop_token_ids,
    uses_gemma_path,
)
from adapters.errors import ControlTokenError, ConversationError, TemplateError
from adapters.masking import DROP_BOUNDARY, DROP_LOSSY, mask_batch, mask_conversation, template_mask_batch, template_mask_conversation

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("template_tokenizers", ROOT / "benchmarks" / "template_tokenizers.py")
templates = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(templates)

# name -> (end-of-turn text, the template trims message content, BOS string)
EXPECTED = {
    "gemma": ("<end_of_turn>", True, "<bos>"),
    "chatml": ("<|im_end|>", False, ""),
    "llama3": ("<|eot_id|>", True, "<|begin_of_text|>"),
}


@pytest.fixture(scope="session")
def chatml_folder() -> Path:
    folder = templates.chatml_dir()
    if folder is None:
        pytest.skip(f"{templates.CHATML_DIRS[0]} is absent: run `make models` (scripts/build_offline_models.py)")
    return folder


@pytest.fixture(scope="session")
def chatml(chatml_folder):
    return templates.load("chatml", chatml_folder=chatml_folder)


@pytest.fixture(scope="session")
def llama3(chatml_folder):
    return templates.load("llama3", chatml_folder=chatml_folder)


class _Tokenizers(dict):
    def __repr__(self) -> str:  # hypothesis prints its arguments; a tokenizer's repr is pages long
        return f"<tokenizers {', '.join(self)}>"


@pytest.fixture(scope="session")
def by_name(tokenizer, chatml, llama3):
    return _Tokenizers(gemma=tokenizer, chatml=chatml, llama3=llama3)


@pytest.fixture(scope="session")
def offline_rows(offline_jsonl):
    return [json.loads(line) for line in offline_jsonl.read_text(encoding="utf-8").splitlines() if line.strip()]


def expected_spans(tok, name: str, messages: list[dict]) -> tuple[str, list[tuple[int, int]], list[str]]:
    """Independent oracle: (template text, reply + end-of-turn spans, their expected text)."""
    end_of_turn, trims, _ = EXPECTED[name]
    text = tok.apply_chat_template(messages, tokenize=False)
    spans, pieces = [], []
    for k, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = len(tok.apply_chat_template(messages[:k], tokenize=False, add_generation_prompt=True))
        piece = (message["content"].strip() if trims else message["content"]) + end_of_turn
        spans.append((start, start + len(piece)))
        pieces.append(piece)
    return text, spans, pieces


def _token_byte_ranges(tok, name: str, text: str, ids: list[int], offsets) -> list[tuple[int, int]]:
    """Each token's exact [start, end) in the UTF-8 bytes of ``text``.

    Byte-level BPE (ChatML, Llama-3-style): a token's bytes are its vocabulary string through the
    byte alphabet (special tokens: their text), summed from 0; no offsets involved, so a token that
    joins a prompt character with the first byte of a reply character is seen. Gemma (SentencePiece
    with one token per fallback byte, never merged): the tokenizer's character offsets, as bytes.
    """
    if name == "gemma":
        return [(len(text[:s].encode()), len(text[:e].encode())) for s, e in offsets]
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    byte_of = {c: b for b, c in bytes_to_unicode().items()}
    specials = {i for i, t in tok.added_tokens_decoder.items() if t.special}
    ranges, at = [], 0
    for token_id, piece in zip(ids, tok.convert_ids_to_tokens(ids)):
        size = len(piece.encode()) if token_id in specials else len(bytes(byte_of[c] for c in piece))
        ranges.append((at, at + size))
        at += size
    return ranges if at == len(text.encode()) else None  # None: the tokenizer dropped some bytes


def expected_mask(tok, name: str, text: str, spans) -> tuple[list[int], list[int] | None, bool]:
    """(ids, mask: 1 iff a token lies inside a span, whether some token straddles a span edge), in bytes.
    ``mask`` is None when the tokenization is lossy (bytes dropped): then no exact mask exists."""
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    byte_spans = [(len(text[:s].encode()), len(text[:e].encode())) for s, e in spans]
    ranges = _token_byte_ranges(tok, name, text, enc["input_ids"], enc["offset_mapping"])
    if ranges is None:
        return enc["input_ids"], None, False
    mask, straddles = [], False
    for start, end in ranges:
        mask.append(int(any(s <= start and end <= e for s, e in byte_spans)))
        straddles |= any(start < s < end or start < e < end for s, e in byte_spans)
    return enc["input_ids"], mask, straddles


def trained_runs(ids, mask) -> list[list[int]]:
    runs, current = [], []
    for token, bit in zip(ids, mask):
        if bit:
            current.append(token)
        elif current:
            runs.append(current)
            current = []
    return runs + ([current] if current else [])


# --------------------------------------------------------------------------------------------
# What is read from each template
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gemma", "chatml", "llama3"])
def test_read_template_finds_end_of_turn_bos_and_system_role(by_name, name):
    tok = by_name[name]
    info = read_template(tok)
    end_of_turn, _, bos = EXPECTED[name]
    assert info.end_of_turn == end_of_turn
    assert info.end_of_turn_ids == tuple(tok.convert_tokens_to_ids([end_of_turn]))
    assert info.bos == bos
    assert info.system_role
    # Its own turn markers are control strings, and so is every family's.
    assert set(KNOWN_CHAT_CONTROLS) <= set(info.controls)


def test_gemma_path_is_chosen_only_for_gemma(by_name):
    assert uses_gemma_path(by_name["gemma"])
    assert not uses_gemma_path(by_name["chatml"]) and not uses_gemma_path(by_name["llama3"])


def test_stop_ids_per_template(by_name):
    gemma, chatml, llama3 = by_name["gemma"], by_name["chatml"], by_name["llama3"]
    assert stop_token_ids(gemma) == STOP_TOKEN_IDS == (106, 1)
    assert stop_token_ids(chatml) == tuple(chatml.convert_tokens_to_ids(["<|im_end|>"]))
    assert stop_token_ids(llama3) == tuple(llama3.convert_tokens_to_ids(["<|eot_id|>", "<|end_of_text|>"]))
    kwargs = generation_stop_kwargs(llama3)
    assert kwargs["eos_token_id"] == list(stop_token_ids(llama3))


@pytest.mark.parametrize("name", ["gemma", "chatml", "llama3"])
def test_prefill_follows_the_generation_prompt(by_name, offline_rows, name):
    tok = by_name[name]
    messages = offline_rows[0]["messages"]
    prompt = model_prompt(messages, tok, generation_prefill="<think>\n")
    own = tok.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
    assert prompt == own + "<think>\n"
    assert messages[-1]["content"][:30] not in prompt  # the gold reply is not in the prompt
    if name == "gemma":
        assert prompt == render_prompt(messages, generation_prefill="<think>\n")
    ids = tok(prompt, add_special_tokens=False)["input_ids"]
    bos = EXPECTED[name][2]
    if bos:
        assert ids.count(tok.convert_tokens_to_ids(bos)) == 1 and ids[0] == tok.convert_tokens_to_ids(bos)


# --------------------------------------------------------------------------------------------
# Every offline row, every template
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gemma", "chatml", "llama3"])
def test_every_offline_row_trains_exactly_reply_and_end_of_turn(by_name, offline_rows, name):
    tok = by_name[name]
    end_of_turn, trims, _ = EXPECTED[name]
    masker = template_mask_batch if name == "gemma" else mask_batch  # gemma: force the template path
    examples, dropped = masker(offline_rows, tok)
    assert dropped == [] and len(examples) == len(offline_rows)
    for index, ex in examples:
        messages = offline_rows[index]["messages"]
        reply = messages[-1]["content"]
        runs = trained_runs(ex.input_ids, ex.loss_mask)
        assert len(runs) == 1
        assert tok.decode(runs[0]) == (reply.strip() if trims else reply) + end_of_turn
        first = ex.loss_mask.index(1)
        prompt = tok.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
        assert tok.decode(ex.input_ids[:first]) == prompt
        assert tok.decode(ex.input_ids) == tok.apply_chat_template(messages, tokenize=False)


def test_template_path_on_gemma_equals_the_gemma_path(tokenizer, offline_rows):
    ours = mask_batch(offline_rows, tokenizer)
    assert ours == template_mask_batch(offline_rows, tokenizer)
    for row in offline_rows[:50]:
        assert render_with_template(row["messages"], tokenizer) == render_conversation(row["messages"])
        assert mask_conversation(row, tokenizer) == template_mask_conversation(row, tokenizer)


# --------------------------------------------------------------------------------------------
# Property tests over conversations, and adversarial text
# --------------------------------------------------------------------------------------------

PIECES = st.sampled_from(
    ["<think>", "</think>", "<proof>", "</proof>", "<answer>", "</answer>", "<", ">", "</", "><", "\n", "\n\n",
     " ", "  ", "assistant", "user", "system", "model", "<|im", "_end|>", "<|eot", "header_id|>", "<start_of",
     "14.5", "é", "日本", "🙂", "\t", "\u200b"]
)
# Code points up to plane 3: SmolLM2's byte-level vocabulary has no token for the lead bytes of
# planes 4-16 (unassigned / private use) and drops them; that case has its own test below.
TEXT = st.lists(st.one_of(st.text(st.characters(max_codepoint=0x3FFFF, exclude_categories=("Cs",)), max_size=10), PIECES), max_size=8).map("".join).filter(
    lambda s: not any(c in s for c in KNOWN_CHAT_CONTROLS) and "<pad>" not in s and "<unk>" not in s
)


@st.composite
def conversations(draw):
    messages = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(TEXT)})
    for _ in range(draw(st.integers(1, 3))):
        messages.append({"role": "user", "content": draw(TEXT)})
        messages.append({"role": "assistant", "content": draw(TEXT)})
    if draw(st.booleans()):
        messages.append({"role": "user", "content": draw(TEXT)})
    return messages


PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("name", ["gemma", "chatml", "llama3"])
@PROPERTY
@given(messages=conversations())
def test_property_mask_is_exactly_replies_and_end_of_turn(by_name, name, messages):
    tok = by_name[name]
    text, spans, pieces = expected_spans(tok, name, messages)
    assert [text[s:e] for s, e in spans] == pieces  # the oracle's own spans hold the expected text
    ids, mask, straddles = expected_mask(tok, name, text, spans)
    rendered = render_with_template(messages, tok)
    assert rendered.text == text and list(rendered.reply_spans) == spans
    examples, dropped = template_mask_batch([messages], tok)
    if mask is None:  # lossy tokenizer: the row is dropped, or kept only if every reply still decodes exactly
        if examples:
            ex = examples[0][1]
            assert [tok.decode(run) for run in trained_runs(ex.input_ids, ex.loss_mask)] == pieces
        else:
            assert [d.kind for d in dropped] in ([DROP_LOSSY], [DROP_BOUNDARY])
        return
    if straddles:
        assert examples == [] and [d.kind for d in dropped] == [DROP_BOUNDARY]
        return
    assert dropped == [] and examples[0][1].input_ids == ids and examples[0][1].loss_mask == mask
    runs = trained_runs(ids, mask)
    assert [tok.decode(run) for run in runs] == pieces


CONTROL_SOURCES = ["<|im_start|>", "<|im_end|>", "<|eot_id|>", "<|start_header_id|>", "<|begin_of_text|>",
                   "<start_of_turn>", "<end_of_turn>", "<bos>", "<eos>", "<|endoftext|>"]


@pytest.mark.parametrize("name", ["gemma", "chatml", "llama3"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    messages=conversations(),
    control=st.sampled_from(CONTROL_SOURCES),
    where=st.integers(0, 50),
    cut=st.integers(0, 1000),
)
def test_property_control_strings_in_any_message_are_rejected(by_name, name, messages, control, where, cut):
    tok = by_name[name]
    target = messages[where % len(messages)]
    at = cut % (len(target["content"]) + 1)
    target["content"] = target["content"][:at] + control + target["content"][at:]
    with pytest.raises(ControlTokenError, match="control token"):
        template_mask_conversation(messages, tok)
    masker = template_mask_batch if name == "gemma" else mask_batch  # the Gemma path keeps its own four
    with pytest.raises(ControlTokenError, match=r"row 1: message"):
        masker([[{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], messages], tok)


# --------------------------------------------------------------------------------------------
# BOS, system folding, templates that cannot express a row
# --------------------------------------------------------------------------------------------

ROW = [{"role": "system", "content": "Be careful."}, {"role": "user", "content": "Q?"},
       {"role": "assistant", "content": "<think>\nt\n</think>\n\n<proof>\np\n</proof>\n\n<answer>\na\n</answer>"}]
PLAIN_TURNS = ("{% for m in messages %}{{ '<start_of_turn>' + m['role'] + '\n' + m['content'] + '<end_of_turn>\n' }}"
                "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>assistant\n' }}{% endif %}")


@pytest.fixture(scope="session")
def scratch(tiny_model_dir, chatml_folder):
    """A second Gemma and ChatML tokenizer each (loading Gemma's 262k vocabulary takes seconds): tests
    give them other templates through :func:`templated`, which puts the original back."""
    from transformers import AutoTokenizer

    return _Tokenizers(gemma=AutoTokenizer.from_pretrained(str(tiny_model_dir)),
                       chatml=AutoTokenizer.from_pretrained(str(chatml_folder)))


@contextlib.contextmanager
def templated(tok, template):
    before = tok.chat_template
    tok.chat_template = template
    try:
        yield tok
    finally:
        tok.chat_template = before


def test_reply_the_vocabulary_cannot_spell_is_dropped_as_lossy(chatml):
    """U+40000 (UTF-8 F1 80 80 80): SmolLM2 has no token for byte F1 and silently drops it."""
    messages = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "ok \U00040000"}]
    ids = chatml(chatml.apply_chat_template(messages, tokenize=False), add_special_tokens=False)["input_ids"]
    assert "\U00040000" not in chatml.decode(ids)  # the premise: the tokenizer loses it
    examples, dropped = mask_batch([messages, messages[:2]], chatml)
    assert examples == [] and [d.kind for d in dropped] == [DROP_LOSSY, DROP_LOSSY]
    with pytest.raises(ConversationError, match="does not survive tokenization"):
        mask_conversation(messages, chatml)


def test_one_bos_when_the_tokenizer_adds_it_and_the_template_does_not(scratch):
    with templated(scratch["gemma"], PLAIN_TURNS) as tok:  # Gemma's tokenizer adds <bos> itself
        assert tok("x")["input_ids"][0] == 2
        ex = template_mask_conversation(ROW, tok)
        assert ex.input_ids[0] == 2 and ex.input_ids.count(2) == 1
        assert tok.decode(ex.trained_ids()) == ROW[-1]["content"] + "<end_of_turn>"


def test_one_bos_when_the_template_writes_it_twice(scratch):
    with templated(scratch["gemma"], "{{ bos_token }}{{ bos_token }}" + PLAIN_TURNS) as tok:
        assert apply_template(tok, ROW).startswith("<bos><bos><start_of_turn>")
        ex = template_mask_conversation(ROW, tok)
        assert ex.input_ids[0] == 2 and ex.input_ids.count(2) == 1


def test_system_folded_into_first_user_turn_when_the_template_has_no_system_role(scratch):
    no_system = ("{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
                 + PLAIN_TURNS)
    with templated(scratch["gemma"], no_system) as tok:
        assert not read_template(tok).system_role
        rendered = render_with_template(ROW, tok)
    assert "<start_of_turn>user\nBe careful.\n\nQ?<end_of_turn>" in rendered.text
    assert "<start_of_turn>system" not in rendered.text


@pytest.mark.parametrize(
    "template, message",
    [
        ("{% for m in messages %}{% if m['role'] == 'user' %}{{ m['content'] }}{% endif %}{% endfor %}", "no assistant role"),
        ("{{ raise_exception('nope') }}", "cannot render"),
        ("{% for m in messages %}{{ '<start_of_turn>' + m['role'] + '\n' + m['content'] + '\n' }}{% endfor %}",
         "no special end-of-turn"),
        ("{% for m in messages %}{{ '<start_of_turn>' + m['role'] + '\n' + m['content'] | replace('the ', 'a ') + eos_token }}"
         "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>assistant\n' }}{% endif %}", "verbatim"),
    ],
    ids=["no-assistant-role", "raises", "no-end-of-turn", "reply-rewritten"],
)
def test_template_that_cannot_express_the_row_is_a_template_error(scratch, template, message):
    for tok in scratch.values():
        with templated(tok, template), pytest.raises(TemplateError, match=message):
            template_mask_conversation([{"role": "user", "content": "q"}, {"role": "assistant", "content": "the reply"}], tok)


def test_no_chat_template_is_a_template_error(scratch):
    with templated(scratch["chatml"], None) as tok, pytest.raises(TemplateError, match="no chat template"):
        mask_conversation(ROW, tok)


def test_inspect_masks_cli_exits_2_on_a_template_without_assistant_role(scratch, tmp_path, offline_jsonl):
    with templated(scratch["chatml"], "{% for m in messages %}{% if m['role'] == 'user' %}{{ m['content'] }}"
                                      "{% endif %}{% endfor %}") as tok:
        tok.save_pretrained(tmp_path / "tok")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "inspect_masks.py"), str(offline_jsonl), "--tokenizer",
         str(tmp_path / "tok"), "--split", "all"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and "no assistant role" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_inspect_masks_cli_on_chatml(chatml_folder, offline_jsonl):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "inspect_masks.py"), str(offline_jsonl), "--tokenizer",
         str(chatml_folder), "--rows", "1", "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["dropped"] == [] and report["spans"][0]["trained_text"].endswith("</answer><|im_end|>")


# --------------------------------------------------------------------------------------------
# Stop ids reach generation and TRL's GRPO
# --------------------------------------------------------------------------------------------


def test_set_generation_stops_reaches_grpo_trainer(chatml_folder, tmp_path):
    """TRL's GRPOTrainer takes its rollout stop ids from model.generation_config when it is built."""
    import datasets
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig
    from trl import GRPOConfig, GRPOTrainer

    tok = AutoTokenizer.from_pretrained(str(chatml_folder))
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config.eos_token_id = None
    assert set_generation_stops(model, tok) == stop_token_ids(tok)
    args = GRPOConfig(output_dir=str(tmp_path), use_cpu=True, report_to=[], per_device_train_batch_size=2,
                      num_generations=2, max_completion_length=4)
    trainer = GRPOTrainer(model=model, reward_funcs=[lambda completions, **kw: [0.0] * len(completions)], args=args,
                          train_dataset=datasets.Dataset.from_list([{"prompt": "x"}] * 2), processing_class=tok)
    assert set(stop_token_ids(tok)) <= set(trainer.eos_token_ids)


def _tiny_llama(tok, seed: int = 0):
    """A random 1-layer Llama over ``tok``'s vocabulary (SmolLM2 is a Llama), for generation tests."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=2048,
                         tie_word_embeddings=False)
    return AutoModelForCausalLM.from_config(config).eval()


def _greedy(model, ids: list[int], steps: int) -> list[int]:
    """Greedy decoding written out by hand (argmax of a full forward pass per step), no stop ids."""
    import torch

    new: list[int] = []
    with torch.no_grad():
        for _ in range(steps):
            new.append(int(model(input_ids=torch.tensor([ids + new])).logits[0, -1].argmax()))
    return new


@pytest.mark.parametrize("name", ["chatml", "llama3"])
def test_generate_stops_on_the_template_end_of_turn(by_name, offline_rows, name):
    import torch

    from adapters.generation import generate

    tok = by_name[name]
    model = _tiny_llama(tok)
    prompt = model_prompt(offline_rows[0]["messages"], tok, generation_prefill="<think>\n")
    ids = tok(prompt, add_special_tokens=False)["input_ids"]
    first = _greedy(model, ids, 1)[0]
    stops = stop_token_ids(tok)
    assert first not in stops
    # Swap the output rows of the model's first choice and the template's end of turn: greedy decoding
    # now ends the turn at once (the input embeddings are untied, so nothing else changes).
    head = model.get_output_embeddings().weight
    with torch.no_grad():
        head[[first, stops[0]]] = head[[stops[0], first]]
    assert _greedy(model, ids, 1) == [stops[0]]
    assert generate(model, tok, [prompt], max_new_tokens=6, batch_size=1) == [""]
    # With Gemma's stop ids (106, 1: ordinary tokens here) the same model runs on past its turn.
    longer = generate(model, tok, [prompt], max_new_tokens=6, batch_size=1, stop_ids=STOP_TOKEN_IDS)[0]
    assert longer.startswith(tok.convert_ids_to_tokens(stops[0]))


def test_eval_simple_on_a_chatml_model_uses_its_template(chatml_folder, tmp_path):
    """eval_simple --model on the built tiny ChatML model (models/tiny-smollm2): prompts from its own template."""
    from adapters.eval_run import EvalOptions, load_test_rows, run_evaluation

    model_dir = chatml_folder
    dataset = ROOT / "tests" / "fixtures" / "eval" / "dataset"
    out = tmp_path / "eval"
    metrics = run_evaluation(EvalOptions(dataset=str(dataset), out=out, model=model_dir, limit=2, max_new_tokens=4,
                                         batch_size=2, prefill_think=True, progress=False))
    assert metrics["n"] == 2
    responses = [json.loads(line)["response"] for line in (out / "responses.jsonl").read_text().splitlines()]
    assert len(responses) == 2 and all(r.startswith("<think>\n") for r in responses)
    # The same replies as generating from the ChatML prompts directly (not Gemma's <start_of_turn> prompts).
    from adapters.generation import generate, load_model

    model, loaded = load_model(model_dir)
    rows = load_test_rows(str(dataset))[:2]
    prompts = [model_prompt(r["messages"], loaded, generation_prefill="<think>\n") for r in rows]
    assert all("<|im_start|>assistant\n<think>\n" in p and "<start_of_turn>" not in p for p in prompts)
    direct = generate(model, loaded, prompts, max_new_tokens=4, batch_size=2)
    assert responses == ["<think>\n" + d.lstrip("\n") for d in direct]


def test_bench_masking_per_template_section(chatml_folder, tmp_path):
    """benchmarks/bench_masking.py --templates: one row per template, 0 dropped, the file's other sections kept."""
    spec = importlib.util.spec_from_file_location("bench_masking", ROOT / "benchmarks" / "bench_masking.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    markdown = tmp_path / "masking.md"
    markdown.write_text("# Masking benchmark\n\nthe TRL table\n\n## Per chat template\n\nold figures\n\n## Later\n\nkept\n")
    dataset = ROOT / "tests" / "fixtures" / "eval" / "dataset"
    assert bench.main(["--dataset", str(dataset), "--templates", "gemma,chatml,llama3", "--repeats", "1",
                       "--markdown", str(markdown)]) == 0
    text = markdown.read_text()
    assert text.startswith("# Masking benchmark\n\nthe TRL table\n\n## Per chat template\n")
    assert "old figures" not in text and text.rstrip().endswith("## Later\n\nkept")
    rows = [line for line in text.splitlines() if line.startswith("| gemma |") or line.startswith("| chatml |")
            or line.startswith("| llama3 |")]
    assert len(rows) == 3
    assert "`<\\|im_end\\|>`" in rows[1] and "| 106, 1 |" in rows[0]
    assert all(re.split(r"(?<!\\)\|", row)[6].strip() == "0" for row in rows)  # dropped (cells split on bare |)
    assert bench.main(["--dataset", str(dataset), "--templates", "gpt"]) == 2


# ---------------------------------------------------------------------------- notebooks: which template

# Unsloth's Qwen3 GRPO notebook's own template (../shared/base_notebooks/unsloth_qwen3_4b_grpo.ipynb), with
# the kit's tags: no turn markers, and a generation prompt that opens the reasoning tag the reply starts with.
QWEN3_NOTEBOOK_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{{ messages[0]['content'] + eos_token }}"
    "{% set loop_messages = messages[1:] %}{% else %}{{ 'You are given a problem.' + eos_token }}"
    "{% set loop_messages = messages %}{% endif %}{% for message in loop_messages %}"
    "{% if message['role'] == 'user' %}{{ message['content'] }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<think>' }}{% endif %}"
)


def test_choose_chat_template_keeps_a_template_that_expresses_the_rows(scratch, tokenizer, offline_rows):
    from adapters.chat import GEMMA_CHAT_TEMPLATE
    from adapters.chat_template import choose_chat_template, describe_stops, template_name

    chatml_tok = scratch["chatml"]
    own = chatml_tok.chat_template
    assert choose_chat_template(chatml_tok, offline_rows[0]["messages"]).startswith("ChatML (the model's own")
    assert chatml_tok.chat_template == own and template_name(chatml_tok) == "ChatML"
    assert describe_stops(chatml_tok) == "<|im_end|> (2)"
    gemma_tok = scratch["gemma"]
    with templated(gemma_tok, PLAIN_TURNS):
        assert choose_chat_template(gemma_tok).startswith("Gemma")
        assert gemma_tok.chat_template == GEMMA_CHAT_TEMPLATE
        assert describe_stops(gemma_tok) == "<end_of_turn> (106), <eos> (1)"


def test_choose_chat_template_replaces_one_that_cannot_and_masks_with_chatml(scratch, offline_rows):
    from adapters.chat_template import CHATML_TEMPLATE, choose_chat_template

    tok = scratch["chatml"]
    with templated(tok, QWEN3_NOTEBOOK_TEMPLATE):
        why = choose_chat_template(tok, offline_rows[0]["messages"])
        assert why.startswith("ChatML (the kit's plain ChatML") and "verbatim" in why
        assert tok.chat_template == CHATML_TEMPLATE
        conversation = [m for m in offline_rows[0]["messages"] if m["role"] in ("user", "assistant")]
        example = template_mask_conversation(conversation, tok, 4096)
        trained = [t for t, keep in zip(example.input_ids, example.loss_mask) if keep]
        assert tok.decode(trained) == conversation[-1]["content"] + "<|im_end|>"


def test_choose_chat_template_without_chatml_markers_is_an_error(scratch, monkeypatch):
    from adapters import chat_template

    tok = scratch["chatml"]
    monkeypatch.setattr(chat_template, "CHATML_MARKERS", ("<|no_such_marker|>", "<|im_end|>"))
    with templated(tok, QWEN3_NOTEBOOK_TEMPLATE), pytest.raises(TemplateError, match="no chat template can express"):
        chat_template.choose_chat_template(tok)
    with templated(tok, None), pytest.raises(TemplateError, match="has no chat template"):
        chat_template.choose_chat_template(tok)
