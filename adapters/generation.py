"""Batched greedy generation for ``eval_simple.py --model``: prompts rendered as in training.

Shapes:

* :func:`load_model` ``PATH`` -> ``(model, tokenizer)``: a transformers folder, or a PEFT LoRA adapter
  folder (``adapter_config.json``) over the base model its config names. Tunix/orbax checkpoints
  are refused with a clear error: loading them needs JAX and the Tunix model code, which this
  environment does not have (export the Tunix model to safetensors first).
* :func:`generate` (model, tokenizer, prompts: list[str]) -> completions: list[str], the text after
  each prompt up to (not including) the first stop id: the tokenizer's end-of-turn token(s) and EOS
  (:func:`adapters.chat_template.stop_token_ids`; Gemma: ``adapters.chat.STOP_TOKEN_IDS``, 106 and 1;
  ChatML: ``<|im_end|>``; Llama 3: ``<|eot_id|>``).

Prompts come from :func:`adapters.chat_template.model_prompt` (Gemma: :func:`adapters.chat.render_prompt`),
which already starts with the model's BOS where it has one; they are tokenized with
``add_special_tokens=False`` so no second BOS appears (FIELD_NOTES §3).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

from .chat import PAD_ID
from .chat_template import stop_token_ids
from .errors import DSAError

ORBAX_MARKERS = ("_CHECKPOINT_METADATA", "_METADATA", "manifest.ocdbt", "checkpoint")


class ModelLoadError(DSAError):
    """A model folder cannot be loaded for generation."""


def describe_model_folder(path: Path) -> str:
    """``transformers`` | ``peft`` | ``orbax``; raises :class:`ModelLoadError` for anything else."""
    if not path.is_dir():
        raise ModelLoadError(f"{path}: model folder not found")
    if (path / "adapter_config.json").is_file():
        return "peft"
    if (path / "config.json").is_file():
        return "transformers"
    names = {p.name for p in path.rglob("*")} if path.is_dir() else set()
    if names & set(ORBAX_MARKERS) or any(n.endswith(".orbax-checkpoint-tmp") for n in names):
        return "orbax"
    raise ModelLoadError(f"{path}: no config.json or adapter_config.json (not a transformers or PEFT folder)")


def refuse_unsupported(path: Path, kind: str) -> None:
    """Raise :class:`ModelLoadError` for folder kinds this environment cannot generate with."""
    if kind == "orbax":
        raise ModelLoadError(
            f"{path}: Tunix/orbax checkpoints are not supported here (they need JAX and the Tunix model "
            "code); export the model to a safetensors folder and pass that"
        )


HALF_DTYPES = ("bfloat16", "float16")


def _peft_base_path(adapter: Path, base: str) -> str:
    """An adapter's ``base_model_name_or_path`` as a loadable path: a relative base saved beside the adapter
    resolves against it; anything else (a hub id, an absolute path) stays as written."""
    if not Path(base).exists() and (adapter / base).exists():
        return str(adapter / base)
    return base


def saved_dtype(path: str | Path) -> str | None:
    """The weights' dtype a model folder's ``config.json`` records (``dtype``; older transformers wrote
    ``torch_dtype``); for a PEFT adapter folder, its base model's. None where no config says."""
    path = Path(path)
    config_path = path / "config.json"
    if not config_path.is_file() and (path / "adapter_config.json").is_file():
        try:
            base = json.loads((path / "adapter_config.json").read_text(encoding="utf-8")).get("base_model_name_or_path")
        except (OSError, ValueError):
            return None
        if base:
            config_path = Path(_peft_base_path(path, base)) / "config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = config.get("dtype") or config.get("torch_dtype")
    return value if isinstance(value, str) else None


def generation_dtype(path: str | Path, dtype: str = "auto", device: str | None = None) -> str:
    """The dtype :func:`load_model` loads ``path``'s weights in: ``dtype`` as asked, except that ``auto``
    (as saved) becomes ``float32`` where the saved weights are half precision and the device is a CPU
    without bfloat16 hardware (:func:`adapters.training.cpu_has_native_bf16`): there every half-precision
    product runs in software, and greedy generation of the offline 270M takes 2.6x as long as in float32.
    An explicit ``bfloat16`` is kept: it was asked for (e.g. to halve the memory)."""
    if dtype != "auto":
        return dtype
    import torch

    from .training import cpu_has_native_bf16

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu" and saved_dtype(path) in HALF_DTYPES and not cpu_has_native_bf16():
        return "float32"
    return "auto"


def load_model(path: str | Path, dtype: str = "auto"):
    """Load ``(model, tokenizer)`` for generation, in eval mode, on the GPU when one is present.

    ``dtype``: ``auto`` (as saved; see :func:`generation_dtype` for the one exception), ``float32`` or
    ``bfloat16``.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    kind = describe_model_folder(path)
    refuse_unsupported(path, kind)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = generation_dtype(path, dtype, device)
    torch_dtype = getattr(torch, dtype) if dtype != "auto" else "auto"
    try:
        if kind == "peft":
            from peft import PeftModel

            config = json.loads((path / "adapter_config.json").read_text(encoding="utf-8"))
            base_path = config.get("base_model_name_or_path")
            if not base_path:
                raise ModelLoadError(f"{path}/adapter_config.json: no base_model_name_or_path")
            base_path = _peft_base_path(path, base_path)
            base = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch_dtype)
            model = PeftModel.from_pretrained(base, str(path))
            tokenizer_path = path if (path / "tokenizer_config.json").is_file() else Path(base_path)
        else:
            model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch_dtype)
            tokenizer_path = path
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_path))
    except ModelLoadError:
        raise
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{path}: cannot load model ({exc.__class__.__name__}: {str(exc).splitlines()[0]})") from exc
    model.to(device)
    model.eval()
    return model, tokenizer


def _cut_at_stop(ids: Sequence[int], stop_ids: Sequence[int], pad_id: int = PAD_ID) -> list[int]:
    """Token ids -> the ids before the first stop id, with trailing pads (``pad_id``) dropped."""
    out = []
    for token in ids:
        if token in stop_ids:
            break
        out.append(token)
    while out and out[-1] == pad_id:
        out.pop()
    return out


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Prompt lengths -> batches of prompt indices, each batch holding prompts of similar length.

    A haystack prompt (~1,000 tokens) batched with short ones makes every row of the batch pay for
    its padding, in the prefill and in each decoding step; sorting by length (ties by index, so the
    result is deterministic) keeps padding small. Every index appears exactly once.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def generate(
    model,
    tokenizer,
    prompts: Sequence[str],
    max_new_tokens: int = 512,
    batch_size: int = 8,
    do_sample: bool = False,
    temperature: float = 1.0,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    stop_ids: Sequence[int] | None = None,
) -> list[str]:
    """Generate one completion per prompt, batched with left padding; greedy unless ``do_sample``.

    Prompts are batched by length (:func:`length_sorted_batches`) and the replies put back in
    prompt order. Returns ``len(prompts)`` strings: the decoded new tokens up to the first stop id
    (``stop_ids``; default :func:`adapters.chat_template.stop_token_ids` of the tokenizer, then the ids of
    ``model.generation_config.eos_token_id`` not among them). Special tokens
    other than the stop ids are kept in the text, so a model that emits ``<bos>`` mid-reply is seen.
    """
    import torch

    torch.manual_seed(seed)
    device = next(model.parameters()).device
    if stop_ids is None:
        # The template's end of turn and EOS, then any other id the model's own generation config stops on.
        config_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        config_eos = [config_eos] if isinstance(config_eos, int) else list(config_eos or [])
        stop_ids = list(dict.fromkeys([*stop_token_ids(tokenizer), *config_eos]))
    stop_ids = list(stop_ids)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else PAD_ID
    encoded_all = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    completions: list[str | None] = [None] * len(prompts)
    for batch_indices in length_sorted_batches([len(ids) for ids in encoded_all], batch_size):
        encoded = [encoded_all[i] for i in batch_indices]
        width = max(len(ids) for ids in encoded)
        # Left padding: every prompt ends at the same column, so new tokens start together.
        input_ids = torch.tensor([[pad_id] * (width - len(ids)) + ids for ids in encoded], device=device)
        attention = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in encoded], device=device)
        kwargs = dict(
            max_new_tokens=max_new_tokens,
            eos_token_id=stop_ids,
            pad_token_id=pad_id,
            do_sample=do_sample,
        )
        if do_sample:
            kwargs["temperature"] = temperature
        else:
            # Clear sampling defaults from generation_config.json so greedy decoding is not warned about.
            kwargs.update(temperature=None, top_p=None, top_k=None)
        with torch.no_grad():
            output = model.generate(input_ids=input_ids, attention_mask=attention, **kwargs)
        for index, row in zip(batch_indices, output[:, width:].tolist()):
            completions[index] = tokenizer.decode(_cut_at_stop(row, stop_ids, pad_id), skip_special_tokens=False)
        if progress is not None:
            progress(len(batch_indices))
    return completions
