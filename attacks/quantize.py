"""Quantization attack: round the unlearned weights to 8 or 4 bits and look again.

Zhang et al. 2024, "Catastrophic Failure of LLM Unlearning via Quantization": unlearning with a
small learning rate moves the weights so little that rounding them to a 4-bit grid lands many back on
the grid points of the original model, and the forgotten answers return. The scheme here is
round-to-nearest symmetric absmax per output channel, as the common 8-bit and 4-bit loaders quantize a
linear layer, simulated in floating point (quantize, then dequantize into the weight's dtype) so every
metric runs unchanged on the result.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from transformers.pytorch_utils import Conv1D

from bench.core.errors import FieldError

from .base import ATTACKS, AttackContext, AttackResult

MIN_BITS, MAX_BITS = 2, 16  # 1 bit leaves no level besides 0 in a symmetric grid (qmax = 0)


def quantize_rtn(weight: torch.Tensor, bits: int) -> torch.Tensor:
    """Round-to-nearest symmetric absmax quantization per output channel (row), dequantized.

    For each row w of `weight` (out, in): scale = max|w| / qmax with qmax = 2**(bits-1) - 1,
    q = clamp(round(w / scale), -qmax, qmax), and the result is q * scale. A zero row gets scale 1
    (any would do) so it comes back as zeros, not NaN. Computed in float32 (rounding uses torch.round,
    half to even), returned in `weight`'s dtype. Every entry is within scale/2 of the original.

    Args:
        weight: (out, in) or any shape whose first dimension is the output channel.
        bits: bits per weight, 2 to 16 (4 and 8 in Zhang et al. 2024).
    """
    if not isinstance(bits, int) or isinstance(bits, bool) or not MIN_BITS <= bits <= MAX_BITS:
        raise FieldError("bits", f"an integer from {MIN_BITS} to {MAX_BITS}", bits)
    if weight.dim() < 1 or weight.numel() == 0:
        raise ValueError(f"quantize_rtn needs a non-empty weight, got shape {tuple(weight.shape)}")
    qmax = 2 ** (bits - 1) - 1
    w = weight.detach().float()
    rows = w.reshape(w.shape[0], -1)  # (out, rest)
    absmax = rows.abs().amax(dim=1, keepdim=True)  # (out, 1)
    scale = torch.where(absmax > 0, absmax / qmax, torch.ones_like(absmax))
    q = torch.clamp(torch.round(rows / scale), -qmax, qmax)
    return (q * scale).reshape(weight.shape).to(weight.dtype)


def _tied_to_embedding(model: torch.nn.Module, weight: torch.Tensor) -> bool:
    get = getattr(model, "get_input_embeddings", None)
    embedding = get() if callable(get) else None
    return embedding is not None and weight is getattr(embedding, "weight", None)


def quantize_model(model: torch.nn.Module, bits: int) -> torch.nn.Module:
    """A copy of `model` with every linear weight quantized by `quantize_rtn`; `model` is untouched.

    Quantized: each `torch.nn.Linear` (out, in) per row, and each transformers `Conv1D` (GPT-2),
    whose weight is stored transposed (in, out), so its output channels are its columns. Biases,
    embeddings and norms stay in full precision, as in the 8-bit and 4-bit loaders.

    An output head tied to the input embedding (the tiny zoo models, GPT-2) is left alone: its weight
    *is* the embedding matrix, and quantizing it would quantize the embeddings too, which the loaders
    do not do. An untied head is a Linear like any other and is quantized. (bitsandbytes loaders keep
    even an untied head in full precision; quantizing it here makes the attack a little stronger.)
    """
    attacked = copy.deepcopy(model)
    with torch.no_grad():
        for module in attacked.modules():
            if not isinstance(module, (torch.nn.Linear, Conv1D)) or _tied_to_embedding(attacked, module.weight):
                continue
            w = module.weight
            if isinstance(module, Conv1D):  # (in, out): quantize per column
                w.copy_(quantize_rtn(w.t(), bits).t())
            else:
                w.copy_(quantize_rtn(w, bits))
    return attacked


@dataclass(frozen=True)
class QuantizeSettings:
    bits: int = 4  # 4 bits is where Zhang et al. 2024 found the forgotten knowledge returns; 8 barely moves it

    def __post_init__(self):
        if not isinstance(self.bits, int) or isinstance(self.bits, bool) or not MIN_BITS <= self.bits <= MAX_BITS:
            raise FieldError("bits", f"an integer from {MIN_BITS} to {MAX_BITS}", self.bits)


@ATTACKS.register("quantize", settings=QuantizeSettings, kind="model", grid={"bits": (8, 4)},
                  description="Round-to-nearest absmax weight quantization per output channel (8 and 4 bits).")
def quantize(model: torch.nn.Module, settings: QuantizeSettings, ctx: AttackContext) -> AttackResult:
    """Quantizes a copy of the model; evaluated on the forget split as it is."""
    return AttackResult(quantize_model(model, settings.bits), info={"bits": settings.bits})
