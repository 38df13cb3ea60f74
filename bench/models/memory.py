"""Memory per device of a suite's trials, estimated before anything starts.

A trial's unlearning holds, per worker:

- the weights, in `prepare.precision`;
- the gradients and AdamW's two moments of the parameters the method trains (torch keeps both in
  the parameters' dtype);
- the copy of the trained weights kept to undo a diverging step (`unlearn.keep_last_finite`);
- the frozen reference model, for the methods that need one;
- with fsdp, every one of these divided by the workers, plus the decoder layers gathered whole
  for the forward and backward pass (one layer in use, one prefetched);
- the activations of one micro-batch: Korthikanti et al. 2022, "Reducing Activation Recomputation
  in Large Transformer Models", count 34·s·b·h bytes per layer in 16-bit for a layer whose
  attention scores are not stored (PyTorch's fused attention keeps none); twice that in fp32;
  with gradient checkpointing 2·s·b·h per layer plus one layer's full set. On top, the logits
  and their log-softmax in fp32, 8·s·b·V bytes.

Parameter counts are exact: the model is built on PyTorch's meta device (no memory) from its
configuration, which comes from the zoo, a local directory, the local Hugging Face cache or, for
the hub models the shipped suites name, the published configuration recorded in `PUBLISHED`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from bench.config.errors import SuiteError
from bench.training.parallel import sharding_for

GIB = 2**30
BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}
STREAMS = ("forget", "retain", "alternate", "plausible")  # the method needs that are one sequence batch each
# Dimensions of published checkpoints (their config.json on the hub), for planning without the hub.
PUBLISHED = {
    "meta-llama/Llama-3.2-1B": dict(model_type="llama", hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                                    num_attention_heads=32, num_key_value_heads=8, vocab_size=128256,
                                    tie_word_embeddings=True),
    "meta-llama/Llama-2-7b-hf": dict(model_type="llama", hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                                     num_attention_heads=32, num_key_value_heads=32, vocab_size=32000,
                                     tie_word_embeddings=False),
    "meta-llama/Llama-3.1-8B": dict(model_type="llama", hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                                    num_attention_heads=32, num_key_value_heads=8, vocab_size=128256,
                                    tie_word_embeddings=False),
    "HuggingFaceH4/zephyr-7b-beta": dict(model_type="mistral", hidden_size=4096, intermediate_size=14336,
                                         num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                                         vocab_size=32000, tie_word_embeddings=False),
    "Qwen/Qwen2-1.5B": dict(model_type="qwen2", hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                            num_attention_heads=12, num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    "smollm2-135m": dict(model_type="llama", hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                         num_attention_heads=9, num_key_value_heads=3, vocab_size=49152, tie_word_embeddings=True),
}
# MUSE's News models are Llama-2-7B fine-tunes.
PUBLISHED["muse-bench/MUSE-news_target"] = PUBLISHED["muse-bench/MUSE-news_retrain"] = PUBLISHED["meta-llama/Llama-2-7b-hf"]


@dataclass(frozen=True)
class Shape:
    """What the estimate reads of a model: parameter counts and the dimensions of its activations."""

    params: int
    trained: int  # the parameters the method trains
    largest_layer: int  # parameters of the largest decoder layer (fsdp gathers one whole)
    hidden: int
    layers: int
    vocab: int


@dataclass(frozen=True)
class Estimate:
    """Bytes per device of one trial's unlearning, by part."""

    weights: float
    gradients: float
    optimizer: float
    kept_copy: float
    reference: float
    gathered: float
    activations: float

    @property
    def total(self) -> float:
        return sum(dataclasses.astuple(self))

    def describe(self) -> str:
        parts = ", ".join(f"{k.replace('_', ' ')} {v / GIB:.2f}" for k, v in dataclasses.asdict(self).items() if v)
        return f"{self.total / GIB:.2f} GiB per device ({parts})"


def estimate(shape: Shape, *, precision: str, mixed_precision: str, sharding: str, workers: int,
             reference: bool, keep_copy: bool, sequences: int, seq_len: int, checkpointing: bool) -> Estimate:
    """Bytes per device; `sequences` is the examples of one micro-batch's forward passes (batch x streams)."""
    w = BYTES[precision]
    shards = workers if sharding == "fsdp" else 1
    act_bytes = 2 if mixed_precision in ("bf16", "fp16") or precision != "fp32" else 4
    tokens = seq_len * sequences
    per_layer = 17 * act_bytes * tokens * shape.hidden  # 34·s·b·h in 16-bit
    # checkpointing keeps each layer's input (2·s·b·h in 16-bit) and recomputes one layer at a time
    layers = act_bytes * tokens * shape.hidden * shape.layers + per_layer if checkpointing else per_layer * shape.layers
    logits = 8 * seq_len * sequences * shape.vocab
    return Estimate(
        weights=shape.params * w / shards,
        gradients=shape.trained * w / shards,
        optimizer=2 * shape.trained * w / shards,
        kept_copy=shape.trained * w / shards if keep_copy else 0.0,
        reference=shape.params * w / shards if reference else 0.0,
        gathered=2 * shape.largest_layer * w if sharding == "fsdp" else 0.0,
        activations=layers + logits,
    )


def model_shape(name: str, method: str, method_args: dict, zoo_vocab: int) -> Shape | None:
    """The model's shape as `method` trains it, or None where its configuration cannot be found here
    (`zoo_vocab`: the vocabulary a zoo model's tokenizer is trained to)."""
    import torch
    from transformers import AutoModelForCausalLM

    from methods import METHODS

    config = _config(name, zoo_vocab)
    if config is None:
        return None
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    spec = METHODS.get(method)
    trained = spec.trainable_parameters(model, spec.make_args(method_args))
    layer_classes = set(getattr(model, "_no_split_modules", None) or ())
    layer_sizes = [sum(p.numel() for p in m.parameters()) for m in model.modules() if type(m).__name__ in layer_classes]
    return Shape(params=sum(p.numel() for p in model.parameters()), trained=sum(p.numel() for p in trained),
                 largest_layer=max(layer_sizes, default=0), hidden=config.hidden_size,
                 layers=config.num_hidden_layers, vocab=config.vocab_size)


def _config(name: str, zoo_vocab: int):
    from transformers import AutoConfig

    from bench.core.names import is_zoo

    if name in PUBLISHED:
        known = dict(PUBLISHED[name])
        return AutoConfig.for_model(known.pop("model_type"), **known)
    if is_zoo(name):
        from bench.models.zoo import ZOO

        return ZOO[name].build(_ZooVocab(zoo_vocab))
    try:
        return AutoConfig.from_pretrained(name, local_files_only=True)  # a local directory, or the hub's cache
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class _ZooVocab:
    """Stands in for a zoo model's tokenizer: the vocabulary is trained with the data, to the suite's size."""

    size: int
    bos_token_id: int = 1
    eos_token_id: int = 2
    pad_token_id: int = 0

    def __len__(self) -> int:
        return self.size


@dataclass(frozen=True)
class PlanRow:
    """One configuration of a suite's trials and its estimate (None: the model's shape is unknown here)."""

    model: str
    methods: tuple[str, ...]
    settings: str
    estimate: Estimate | None
    workers: int


def plan_suite(suite) -> list[PlanRow]:
    """The distinct memory configurations of a suite's trials, each with its estimate per device."""
    from methods import METHODS

    rows: dict[tuple, PlanRow] = {}
    for spec in suite.trials():
        u, p = spec.unlearn, spec.prepare
        needs = METHODS.get(spec.method).needs(METHODS.get(spec.method).make_args(spec.method_args))
        sharding = sharding_for(u.sharding, suite.resources.workers)
        settings = (f"{p.precision}" + (f", autocast {u.mixed_precision}" if u.mixed_precision != "no" else "")
                    + f", {sharding}, batch {u.batch_size} x {len(needs & set(STREAMS))} streams, length {p.max_length}"
                    + (", reference" if "reference" in needs else "")
                    + (", gradient checkpointing" if u.gradient_checkpointing else ""))
        shape = model_shape(spec.model, spec.method, spec.method_args, p.vocab_size)
        key = (spec.model, settings, shape.trained if shape else None)
        est = None if shape is None else estimate(
            shape, precision=p.precision, mixed_precision=u.mixed_precision, sharding=sharding,
            workers=suite.resources.workers, reference="reference" in needs, keep_copy=u.keep_last_finite,
            sequences=u.batch_size * len(needs & set(STREAMS)), seq_len=p.max_length,
            checkpointing=u.gradient_checkpointing)
        if key in rows:
            rows[key] = dataclasses.replace(rows[key], methods=tuple(dict.fromkeys(rows[key].methods + (spec.method,))))
        else:
            rows[key] = PlanRow(spec.model, (spec.method,), settings, est, suite.resources.workers)
    return list(rows.values())


def device_memory(resources) -> tuple[float, str] | None:
    """(bytes one worker may use, what that is) on this machine: a GPU's memory (times the share of it a
    worker asks for), or for CPU workers the host's memory shared by the trial's workers; None where no
    GPU is visible for a GPU suite (a remote cluster's devices are not known here)."""
    import os

    if resources.gpu > 0:
        import torch

        if not torch.cuda.is_available():
            return None
        props = min((torch.cuda.get_device_properties(i) for i in range(torch.cuda.device_count())),
                    key=lambda d: d.total_memory)
        share = min(resources.gpu, 1.0)
        return props.total_memory * share, f"{props.name}, {props.total_memory / GIB:.1f} GiB" + (
            f" x {share:g} (resources.gpu)" if share < 1 else "")
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return total / resources.workers, (f"this host's {total / GIB:.1f} GiB" +
                                       (f" / {resources.workers} workers" if resources.workers > 1 else ""))


class DoesNotFit(SuiteError):
    """A configuration whose estimate exceeds the memory of the devices it would run on."""


def check_fits(suite) -> list[PlanRow]:
    """The suite's plan; raises DoesNotFit, naming the configuration and its estimate, when one cannot fit."""
    rows = plan_suite(suite)
    room = device_memory(suite.resources)
    if room is None:
        return rows
    capacity, what = room
    for row in rows:
        if row.estimate is not None and row.estimate.total > capacity:
            raise DoesNotFit(
                f"{suite.path}: resources: model {row.model}, method {', '.join(row.methods)} ({row.settings}, "
                f"{row.workers} worker{'s' if row.workers > 1 else ''}) needs an estimated {row.estimate.describe()}, "
                f"more than a device here holds ({what}); allowed: a configuration that fits, e.g. unlearn.sharding "
                "fsdp over more resources.workers, prepare.precision bf16, unlearn.gradient_checkpointing, a smaller "
                "unlearn.batch_size or prepare.max_length")
    return rows


def plan_table(rows: list[PlanRow], room: tuple[float, str] | None) -> str:
    """The plan as a Markdown table, with whether each configuration fits `room`."""
    from tabulate import tabulate

    parts = [f.name for f in dataclasses.fields(Estimate)]
    table = []
    for r in rows:
        e = r.estimate
        cells = [f"{getattr(e, k) / GIB:.2f}" if e else "?" for k in parts]
        total = f"{e.total / GIB:.2f}" if e else "? (configuration not found here)"
        fits = "?" if e is None or room is None else "yes" if e.total <= room[0] else "NO"
        table.append([r.model, ", ".join(r.methods), r.settings, r.workers, *cells, total, fits])
    headers = ["model", "methods", "settings", "workers", *[p.replace("_", " ") for p in parts], "GiB per device", "fits"]
    return tabulate(table, headers=headers, tablefmt="github", disable_numparse=True)


# The README's table: three model sizes, NPO (a reference) against gradient difference (none), a micro-batch of
# 4 forget + 4 retain sequences of 512 tokens with gradient checkpointing, the kept copy on (the default).
README_MODELS = (("1 B", "meta-llama/Llama-3.2-1B"), ("7 B", "meta-llama/Llama-2-7b-hf"), ("8 B", "meta-llama/Llama-3.1-8B"))


def readme_table(fsdp_workers: tuple[int, ...] = (2, 4, 8)) -> str:
    """GiB per GPU of one trial for each model and precision, with and without a reference: replicated
    (one worker or ddp over any number) and sharded over `fsdp_workers`."""
    from tabulate import tabulate

    table = []
    for size, name in README_MODELS:
        for method, reference in (("grad_diff", False), ("npo", True)):
            shape = model_shape(name, method, {}, 0)
            for precision in ("bf16", "fp32"):
                cells = [estimate(shape, precision=precision, mixed_precision="no", sharding=sharding, workers=n,
                                  reference=reference, keep_copy=True, sequences=8, seq_len=512, checkpointing=True)
                         for sharding, n in [("ddp", 1)] + [("fsdp", n) for n in fsdp_workers]]
                table.append([f"{size} ({shape.params / 1e9:.2f} B)", "yes" if reference else "no", precision,
                              *[f"{e.total / GIB:.1f}" for e in cells]])
    headers = ["model", "reference", "weights", "1 worker or ddp", *[f"fsdp x{n}" for n in fsdp_workers]]
    return tabulate(table, headers=headers, tablefmt="github", disable_numparse=True)
