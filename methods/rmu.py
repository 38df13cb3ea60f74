"""RMU: representation misdirection for unlearning.

Li et al. 2024, "The WMDP Benchmark: Measuring and Reducing Malicious Use With Unlearning".
On forget data the activations h of one layer ℓ are steered toward a fixed random direction
scaled by c; on retain data they are kept equal to the frozen model's. Only the MLP output
projections of layers ℓ-2 … ℓ are trained. With mse(x, y) the mean over answer tokens of
‖x - y‖² / d:

    loss = mse(h_θ(x_f), c·u) + α · mse(h_θ(x_r), h_frozen(x_r))

u is drawn uniform on [0, 1)^d from the trial seed and normalised. Adaptive RMU sets
c = s · (mean token norm of h on the first forget batch, before any update).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from bench.core.encoding import IGNORE_INDEX

from bench.core.errors import FieldError

from .base import METHODS, MethodContext
from .losses import masked_mean

# Names of the MLP output projection in the architectures transformers ships most often.
MLP_OUTPUT_NAMES = ("down_proj", "c_proj", "fc2", "dense_4h_to_h", "w2", "fc_out")


@dataclass(frozen=True)
class RMUArgs:
    steering_coeff: float = 2.0  # c: length of the target activation c·u (fixed mode)
    layer: int | None = None  # ℓ, 0-based; None = the middle layer (n_layers // 2)
    alpha: float = 1.0  # weight of the retain (activation-matching) term
    adaptive: bool = False  # c = adaptive_scale x the forget activations' mean norm before unlearning
    adaptive_scale: float = 5.0  # s of adaptive RMU (WMDP's value)

    def __post_init__(self):
        if self.layer is not None and self.layer < 0:
            raise FieldError("layer", "an integer >= 0 (or null for the middle layer)", self.layer)
        for key in ("steering_coeff", "adaptive_scale"):
            if not getattr(self, key) > 0:
                raise FieldError(key, "a number > 0", getattr(self, key))


def decoder_layers(model) -> torch.nn.ModuleList:
    """The model's stack of transformer blocks (the ModuleList as long as the layer count)."""
    n = model.config.num_hidden_layers
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == n:
            return module
    raise ValueError(f"cannot find the {n} decoder layers of {type(model).__name__}")


def resolve_layer(model, args: RMUArgs) -> int:
    n = model.config.num_hidden_layers
    layer = n // 2 if args.layer is None else args.layer
    if not 0 <= layer < n:
        raise FieldError("layer", f"an integer in [0, {n - 1}] for this model ({n} layers)", layer)
    return layer


def mlp_output_projection(block) -> torch.nn.Module:
    """The MLP's output projection of one transformer block."""
    mlp = getattr(block, "mlp", None) or getattr(block, "feed_forward", None)
    for name in MLP_OUTPUT_NAMES:
        if mlp is not None and hasattr(mlp, name):
            return getattr(mlp, name)
    raise ValueError(f"no MLP output projection ({', '.join(MLP_OUTPUT_NAMES)}) in {type(block).__name__}")


def rmu_parameters(model, args: RMUArgs) -> list[torch.nn.Parameter]:
    """The parameters RMU trains: the MLP output projections of layers ℓ-2 … ℓ."""
    layers, layer = decoder_layers(model), resolve_layer(model, args)
    return [p for i in range(max(0, layer - 2), layer + 1) for p in mlp_output_projection(layers[i]).parameters()]


@contextlib.contextmanager
def capture_layer_output(model, layer: int):
    """Collects the output hidden states (B, T, d) of decoder layer `layer` during a forward pass."""
    captured: list[torch.Tensor] = []

    def hook(_module, _inputs, output):
        captured.append(output[0] if isinstance(output, tuple) else output)

    handle = decoder_layers(model)[layer].register_forward_hook(hook)
    try:
        yield captured
    finally:
        handle.remove()


def layer_activations(model, inputs: dict, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Layer `layer`'s output (B, T, d) and the mask (B, T) of the answer tokens' positions."""
    with capture_layer_output(model, layer) as captured:
        model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
    return captured[0], inputs["labels"] != IGNORE_INDEX


def activation_mse(h: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over masked tokens of ‖h - target‖² / d. h (B, T, d); target (d,) or (B, T, d); mask (B, T)."""
    per_token = ((h.float() - target.float()) ** 2).mean(-1)  # (B, T): ‖·‖²/d
    return masked_mean(per_token, mask)


def random_direction(dim: int, seed: int) -> torch.Tensor:
    """u ~ U[0, 1)^d from `seed`, normalised to unit length (the same u for the whole trial)."""
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(dim, generator=g)
    return u / u.norm()


def rmu_needs(_args) -> frozenset:
    return frozenset({"forget", "retain", "reference", "hidden_states"})


@METHODS.register("rmu", args=RMUArgs, needs=rmu_needs, version=1, params=rmu_parameters,
                  paper='Li et al. 2024, "The WMDP Benchmark: Measuring and Reducing Malicious Use With Unlearning"')
def rmu(model, batch: dict, ctx: MethodContext):
    """RMU: steer layer-ℓ activations on forget data to c·u, keep retain activations; trains MLP out-projections ℓ-2…ℓ."""
    a: RMUArgs = ctx.args
    layer = resolve_layer(model, a)
    h_f, m_f = layer_activations(model, batch["forget"], layer)
    if "target" not in ctx.state:
        c = a.steering_coeff
        if a.adaptive:  # before any update, on the unlearning's first forget batch (whichever worker this is)
            first = ctx.first_batch["forget"] if ctx.first_batch is not None else batch["forget"]
            first = {k: v.to(h_f.device) for k, v in first.items() if k in ("input_ids", "attention_mask", "labels")}
            with torch.no_grad():
                h_0, m_0 = layer_activations(model, first, layer)
                c = a.adaptive_scale * float(h_0.float().norm(dim=-1)[m_0].mean())
        ctx.state["target"] = c * random_direction(h_f.shape[-1], ctx.seed).to(h_f.device)
        ctx.state["c"] = c
    forget = activation_mse(h_f, ctx.state["target"], m_f)
    h_r, m_r = layer_activations(model, batch["retain"], layer)
    with torch.no_grad():
        h_ref, _ = layer_activations(ctx.reference, batch["retain"], layer)
    retain = activation_mse(h_r, h_ref, m_r)
    loss = forget + a.alpha * retain
    return loss, {"forget_mse": float(forget.detach()), "retain_mse": float(retain.detach()), "c": ctx.state["c"]}
