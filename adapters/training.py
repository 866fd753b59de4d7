"""The kit's own masked-SFT step pieces, shared by ``benchmarks/format_learning.py``, ``scripts/demo.py``
and the data-parallel ``scripts/train_sft.py``.

A row is a TRL-shaped dict (:func:`adapters.masking.to_trl_tokenized`): ``input_ids[n]`` and
``completion_mask[n]``, where ``completion_mask[i]`` says whether token ``i`` is a target. Rows go through
the model one at a time (no padding), so a row's loss is the same whatever else is in its batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from adapters.errors import DSAError


def learning_rate(step: int, args) -> float:
    """Linear warm-up over ``args.warmup`` steps, then linear decay to 0 at ``args.steps`` (TRL's default)."""
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    return args.lr * max(0.0, (args.steps - step) / max(1, args.steps - args.warmup))


PRECISIONS = ("fp32", "bf16")


def autocast(precision: str):
    """The forward's context for ``precision``: ``fp32`` none; ``bf16`` CPU autocast to bfloat16.

    With ``bf16`` the weights, gradients and AdamW state stay float32; only the matrix products run
    in bfloat16 (on a CPU with AMX much faster; ``benchmarks/bench_precision.py`` measures it).
    """
    import contextlib

    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast("cpu", dtype=torch.bfloat16)


class PrecisionError(DSAError):
    """A precision this machine has no hardware for (bfloat16 on a CPU without AVX-512 BF16 or AMX)."""


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU multiplies bfloat16 in hardware: AVX-512 BF16 or AMX.

    Without either, PyTorch converts every bfloat16 product in software: on a 2-core AMD EPYC with AVX2
    alone an autocast SFT step of the 270M took 39x as long as in float32 (811 s against 21 s for
    a ~980-token v2 row) and greedy generation with bfloat16 weights 2.6x as long
    (``benchmarks/results/precision_avx2.md``; with AMX, ``precision.md``: 1.5x and 2.5x faster).
    PyTorch's own probes first (``torch.cpu``, private, so a release may drop them), then the kernel's
    flags; where neither answers, True: a missing probe must not forbid what the hardware may well do.
    """
    import torch

    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if all(probe is not None for probe in probes):
        return any(probe() for probe in probes)
    try:
        flags = set(cpuinfo.read_text(encoding="utf-8", errors="replace").split())
    except OSError:
        return True
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def require_native_precision(precision: str) -> None:
    """Raise :class:`PrecisionError` for ``bf16`` on a CPU without bfloat16 hardware (:func:`cpu_has_native_bf16`).

    The CLIs that train on the CPU call this before any work, so a run that would take days ends with one line.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "bf16" and not cpu_has_native_bf16():
        raise PrecisionError("--precision bf16 needs a CPU with AVX-512 BF16 or AMX and this one has neither "
                             "(there an SFT step runs ~40x slower than in float32, "
                             "benchmarks/results/precision_avx2.md): use --precision fp32")


def _target_logits(model, ids, completion_mask: Sequence[int]):
    """``ids``: ``[1, T]`` -> (logits ``[K, V]`` of the K trained predictions, their targets ``[K]``).

    Prediction ``i`` is of token ``i + 1``, so the positions kept are those whose *next* token is
    trained. Only those positions go through the 262k-word output layer (``logits_to_keep``): on the
    270M that layer is most of the forward cost, and the prompt's logits would be thrown away.
    """
    import torch

    targets = torch.tensor(list(completion_mask[1:]), dtype=torch.bool, device=ids.device)
    positions = torch.nonzero(targets).squeeze(1)
    logits = model(input_ids=ids, logits_to_keep=positions).logits[0]
    return logits, ids[0, 1:][targets]


def masked_loss(model, ids, completion_mask: Sequence[int]):
    """Mean cross-entropy (a scalar tensor) over the target tokens ``completion_mask`` marks; ``ids``: ``[1, T]``."""
    import torch

    logits, targets = _target_logits(model, ids, completion_mask)
    return torch.nn.functional.cross_entropy(logits, targets)


def masked_loss_sum(model, ids, completion_mask: Sequence[int]):
    """(sum of cross-entropy over the target tokens, number of target tokens); ``ids``: ``[1, T]``.

    The pieces of a per-token mean over many rows (and processes): sums and counts add, means do not.
    """
    import torch

    logits, targets = _target_logits(model, ids, completion_mask)
    return torch.nn.functional.cross_entropy(logits, targets, reduction="sum"), int(targets.numel())


def trained_tokens(rows: Sequence[dict]) -> int:
    """Target tokens in ``rows`` (each row's ``completion_mask`` from index 1: ``<bos>`` is never predicted)."""
    return sum(sum(row["completion_mask"][1:]) for row in rows)
