"""The three chat templates the kit's masks are tested and benchmarked on, as loaded tokenizers.

* ``gemma``: the real Gemma-3 tokenizer with the kit's template (``models/tiny-gemma3``).
* ``chatml``: the real SmolLM2-135M-Instruct tokenizer with its own ChatML template
  (``models/tiny-smollm2``, built by ``make models``; ``models/smollm2-135m`` also serves).
* ``llama3``: **Llama-3-style, not Llama's vocabulary**: a copy of the SmolLM2 tokenizer to which the
  Llama-3 special tokens (``<|begin_of_text|>``, ``<|start_header_id|>``, ``<|end_header_id|>``,
  ``<|eot_id|>``, and ``<|end_of_text|>`` as EOS) are added as special tokens, carrying Meta's
  Llama-3-8B-Instruct chat template (:data:`LLAMA3_CHAT_TEMPLATE`, verbatim).

Used by ``tests/test_chat_template.py`` and ``benchmarks/bench_masking.py --templates``.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GEMMA_DIR = ROOT / "models" / "tiny-gemma3"
CHATML_DIRS = (ROOT / "models" / "tiny-smollm2", ROOT / "models" / "smollm2-135m")
TEMPLATE_NAMES = ("gemma", "chatml", "llama3")

# Meta-Llama-3-8B-Instruct's chat_template (tokenizer_config.json), verbatim.
LLAMA3_CHAT_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + "
    "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
LLAMA3_SPECIAL_TOKENS = {
    "bos_token": "<|begin_of_text|>",
    "eos_token": "<|end_of_text|>",
    "additional_special_tokens": ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
}


def chatml_dir() -> Path | None:
    """The first SmolLM2 tokenizer folder that exists, or None."""
    for folder in CHATML_DIRS:
        if (folder / "tokenizer.json").is_file():
            return folder
    return None


def llama3_style(chatml_folder: Path):
    """A fresh copy of the SmolLM2 tokenizer with the Llama-3 special tokens and template (see above)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(chatml_folder))
    tokenizer.add_special_tokens(dict(LLAMA3_SPECIAL_TOKENS))
    tokenizer.chat_template = LLAMA3_CHAT_TEMPLATE
    return tokenizer


def load(name: str, gemma_dir: Path = GEMMA_DIR, chatml_folder: Path | None = None):
    """``gemma`` | ``chatml`` | ``llama3`` -> tokenizer; a missing folder -> FileNotFoundError naming it."""
    from transformers import AutoTokenizer

    if name == "gemma":
        if not (Path(gemma_dir) / "tokenizer.json").is_file():
            raise FileNotFoundError(f"{gemma_dir} is absent: run `make models`")
        return AutoTokenizer.from_pretrained(str(gemma_dir))
    folder = chatml_folder or chatml_dir()
    if folder is None:
        raise FileNotFoundError(f"{CHATML_DIRS[0]} is absent: run `make models`")
    if name == "chatml":
        return AutoTokenizer.from_pretrained(str(folder))
    if name == "llama3":
        return llama3_style(Path(folder))
    raise ValueError(f"unknown template {name!r} (one of {', '.join(TEMPLATE_NAMES)})")
