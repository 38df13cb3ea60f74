"""The model zoo: tiny architectures built from a transformers config, and hub names or paths.

A zoo name (`tiny-llama`, `tiny-gpt2`) is built from scratch and pre-trained by the prepare stage,
with a byte-level BPE tokenizer trained on the generated text. Any other name is a Hugging Face hub
id or a local `save_pretrained` directory, loaded with `AutoModelForCausalLM` / `AutoTokenizer` and
used as the base as it is.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from transformers.utils import logging as hf_logging
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GPT2Config,
    LlamaConfig,
    PretrainedConfig,
    PreTrainedTokenizerFast,
)

# Loading a tiny model takes milliseconds; a progress bar per load would drown the trial output.
hf_logging.disable_progress_bar()

SPECIAL_TOKENS = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>"}

from bench.core.names import PRECISIONS, ZOO_NAMES, is_zoo  # noqa: F401  (is_zoo: re-exported for callers)


@dataclass(frozen=True)
class ZooModel:
    """A tiny architecture; `build(tokenizer)` returns its transformers config."""

    name: str
    description: str
    build: Callable[[PreTrainedTokenizerFast], PretrainedConfig]


def _special_ids(tok: PreTrainedTokenizerFast) -> dict:
    return {"bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id}


ZOO: dict[str, ZooModel] = {
    m.name: m
    for m in [
        ZooModel(
            "tiny-llama",
            "Llama: 2 layers, hidden 128, 4 heads, FFN 512, tied embeddings (~0.66 M parameters)",
            lambda tok: LlamaConfig(
                vocab_size=len(tok), hidden_size=128, intermediate_size=512, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=512,
                tie_word_embeddings=True, **_special_ids(tok),
            ),
        ),
        ZooModel(
            "tiny-gpt2",
            "GPT-2: 2 layers, hidden 128, 4 heads, FFN 512, learned positions, no dropout, tied embeddings (~0.59 M parameters)",
            lambda tok: GPT2Config(
                vocab_size=len(tok), n_positions=512, n_embd=128, n_layer=2, n_head=4, n_inner=512,
                tie_word_embeddings=True, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,  # memorise, as Llama does
                **_special_ids(tok),
            ),
        ),
    ]
}


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE trained with `tokenizers`, wrapped for transformers with bos/eos/pad set."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIAL_TOKENS)


def build_model(name: str, tokenizer: PreTrainedTokenizerFast, seed: int):
    """A freshly initialised zoo model, its weights drawn by `init_weights` from `seed`."""
    model = AutoModelForCausalLM.from_config(ZOO[name].build(tokenizer))
    init_weights(model, seed)
    return model


INIT_STD = 0.02  # GPT-2's and Llama's initializer_range


def init_weights(model, seed: int) -> None:
    """Draws every parameter from the harness's own generator, so a zoo model's initial weights are a
    function of this code and the seed alone, whatever transformers' `_init_weights` does in a release.

    Matrices (embeddings included) N(0, 0.02); vectors named `*.weight` (layer and RMS norm scales) 1;
    biases 0. Each parameter has its own `random.Random`, seeded from (seed, its name), so adding a
    layer does not move the others. Python's Mersenne Twister and Box-Muller draws do not depend on
    the CPU's vector kernels, as torch's `normal_` does.
    """
    import torch

    with torch.no_grad():
        for name, param in model.named_parameters():  # tied weights appear once
            if param.dim() >= 2:
                rng = random.Random(int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "big"))
                values = [rng.gauss(0.0, INIT_STD) for _ in range(param.numel())]
                param.copy_(torch.tensor(values, dtype=torch.float64).reshape(param.shape))
            elif name.endswith(".bias"):
                param.zero_()
            else:
                param.fill_(1.0)


def pretrained_location(name: str) -> str:
    """A loadable location of a pretrained model known by name (`bench.core.pretrained`): its hub id, or
    the installed package's GGUF converted once into a `save_pretrained` directory under the cache
    (`models/<name>-gguf-<file hash>`): transformers dequantizes a GGUF on every load (~20 s for
    SmolLM2-135M here), the directory loads in about a second."""
    import json

    from bench.core.atomic import atomic_dir
    from bench.core.cache import default_cache
    from bench.core.pretrained import locate
    from bench.core.provenance import content_hash, model_identity

    located = locate(name)
    if located.hub_id:
        return located.hub_id
    where = default_cache() / "models" / f"{name}-gguf-{content_hash(located.gguf)[:16]}"
    if not (where / "config.json").is_file():
        source = {"pretrained_model_name_or_path": str(located.gguf.parent), "gguf_file": located.gguf.name}
        model, tokenizer = _dequantized(AutoModelForCausalLM.from_pretrained(**source)), AutoTokenizer.from_pretrained(**source)
        where.parent.mkdir(parents=True, exist_ok=True)
        with atomic_dir(where) as tmp:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            (tmp / "source.json").write_text(json.dumps({"name": name, "weights": model_identity(name)}))
    return str(where)


def _dequantized(model):
    """A GGUF-loaded model as a plain one: its weights are already dequantized to float tensors, but
    transformers keeps it marked as quantized and refuses `save_pretrained`; the same weights go into a
    model built from its config without the quantization entry."""
    import copy

    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=next(model.parameters()).dtype)
    plain.load_state_dict(model.state_dict())
    plain.generation_config = model.generation_config
    return plain


def _location(name_or_path: str | Path) -> str:
    from bench.core.pretrained import is_pretrained_name

    return pretrained_location(str(name_or_path)) if is_pretrained_name(str(name_or_path)) else str(name_or_path)


def load_tokenizer(name_or_path: str | Path, prompt=None):
    """Loads a tokenizer (hub id, directory, or a pretrained name), makes sure it can pad (many causal LMs
    ship without a pad token) and, given a `bench.core.encoding.PromptFormat`, makes it the format every
    encoding of this tokenizer uses (default: chat where it has a chat template, else plain)."""
    from bench.core.encoding import set_prompt_format

    tok = AutoTokenizer.from_pretrained(_location(name_or_path))
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return set_prompt_format(tok, prompt) if prompt is not None else tok


def torch_dtype(precision: str):
    """The torch dtype of a precision name: "fp32", "bf16" or "fp16"."""
    import torch

    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    if precision not in dtypes:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return dtypes[precision]


def load_model(name_or_path: str | Path, dtype=None):
    """Loads a causal LM by hub id, from a `save_pretrained` directory, or by a pretrained name.

    Args:
        name_or_path: hub id, local directory, or a name of `bench.core.names.PRETRAINED`.
        dtype: weights' dtype, a torch dtype or a precision name ("bf16"); None leaves it to
            transformers (the saved dtype since transformers 5).
    """
    if isinstance(dtype, str):
        dtype = torch_dtype(dtype)
    kwargs = {"dtype": dtype} if dtype is not None else {}
    return AutoModelForCausalLM.from_pretrained(_location(name_or_path), **kwargs)


def enable_gradient_checkpointing(model) -> None:
    """Recomputes activations in the backward pass instead of storing them (less memory, ~1/3 more compute).

    Uses non-reentrant checkpointing, which works when only some parameters are trained, and sets
    `config.use_cache = False`: a training forward pass has no use for the KV cache, and transformers
    warns about (and drops) it under checkpointing. Checkpointing only acts in train mode.
    """
    if not getattr(model, "supports_gradient_checkpointing", False):
        raise ValueError(f"{type(model).__name__} does not support gradient checkpointing")
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers 5 renamed it (the old name warns)
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    model.config.use_cache = False


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())
