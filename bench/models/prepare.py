"""The prepare stage: base, target and retain models, built once and cached by content.

For each (model, dataset): a zoo model is built from its config and pre-trained on the general
corpus (a hub model is its own base); the **target** is the base fine-tuned on forget + retain +
forget_val, the **retain** model the base fine-tuned on retain only (the gold standard of forget
quality; it never sees forget_val either, so forget_val is scored like a forget set). Both also
rehearse the general-knowledge facts (a small share of batches), so model utility starts equal.

A suite may grid over the synthetic data's `forget_fraction`: the target's records are the same for
every fraction, so the tokenizer, the base and the target are keyed without it
(`bench.data.store.training_data_key`) and built once; each fraction gets its own data directory,
retain model and the baselines' statistics.

Cache layout (`$BENCH_CACHE`, default `~/.cache/unlearning-bench`), every entry written to a
temporary directory and renamed into place:

    data/<key>/<split>.jsonl         the dataset, TOFU column names; config.json
    tokenizers/<key>/                byte-level BPE of zoo models (save_pretrained)
    models/<model>-<role>-<key>/     role in {base, target, retain}: save_pretrained model + tokenizer,
                                     prepare.json (what was trained, how, and how well it memorised)
    baselines/<model>-<key>.json     what trials compare against (see `bench.models.baseline_stats`)

A key hashes everything the artifact depends on: data, model name, prepare settings, seed; the
tokenizer's hashes the very texts it is trained on.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.core.cache import CACHE_ENV, default_cache  # noqa: F401  (re-exported)
from bench.core.atomic import atomic_dir
from bench.core.names import KNOWMEM_SPLITS, NO_RETAIN_MODEL
from bench.data.store import data_key, evenly_spaced, prepare_data, read_splits, training_data_key
from bench.data.synthetic import RETAIN_EVAL_SPLIT

from bench.config.schema import PREPARE_VERSION, PROMPT_DEFAULTS  # noqa: E402  (the recipe's version and the prompt defaults, beside the settings they key)
GENERAL_SPLITS = ("world_facts", "real_authors")


def _hash(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Prepared:
    """Where one model's prepared artifacts are (absolute paths, so trials can run anywhere)."""

    model: str
    data_dir: str
    target_dir: str
    retain_dir: str
    baseline_stats: str = ""  # the baseline statistics for the suite's evaluation config, once computed
    retain_source: str = ""  # how the retain model was obtained, in words (kept in every row)
    # The model the target was fine-tuned from: a zoo model's pre-trained base, a hub or local model's
    # name; "" for a target used as it is (the reference of the reference-model membership attack).
    base_dir: str = ""


# Settings added after caches existed: left out of the key at their defaults, so adding them did not
# invalidate models built before.
_LATER_FIELDS = {"target": "finetune", "retain_model": "", "precision": "fp32", "gradient_checkpointing": False,
                 "grad_accum_steps": 1, **PROMPT_DEFAULTS}


def _keyed(settings: dict) -> dict:
    return {k: v for k, v in settings.items() if k not in _LATER_FIELDS or v != _LATER_FIELDS[k]}


def retain_source(model: str, prepare) -> str:
    if prepare.retain_model == NO_RETAIN_MODEL:
        return (f"none: no model exists that never saw what {model} is asked to forget, so forget quality and "
                "privacy leakage are unavailable (prepare.retain_model: none)")
    if prepare.retain_model:
        return f"given: {prepare.retain_model}"
    if prepare.target == "as_is":
        return (f"fine-tuned from {model} on the retain data; {model} is used as the target as it is, so the "
                f"retain model saw whatever it saw: give retain_model= for one never trained on the forget data")
    return f"fine-tuned from the same base as the target ({model}) on the retain data only"


def artifact_dirs(model: str, data, prepare, cache: Path) -> dict[str, Path]:
    """The cache directory of each role; no `base` for hub models (they are their own base), no `retain`
    where the suite has no retain model.

    The base and the target are keyed on `training_data_key`, the same for every forget fraction of
    synthetic data; the retain model, trained on one fraction's retain split, on the full data key.
    """
    from bench.models.zoo import is_zoo
    from bench.core.numerics import kernel_key
    from bench.core.provenance import model_identity

    safe = model.replace("/", "--").lstrip("-")
    # The base does not depend on fine-tuning, so changing finetune_steps keeps the pre-trained base.
    finetune_only = ("finetune_steps", "finetune_text_share", "finetune_general_share", "target", "retain_model")
    pretrain = _keyed({k: v for k, v in asdict(prepare).items() if k not in finetune_only})
    if not is_zoo(model):
        # A hub or local model's tokenizer may have a chat template, which "auto" now follows where the
        # harness once always prompted plainly: its models are keyed by the prompt settings, whatever they are.
        pretrain.update({k: getattr(prepare, k) for k in PROMPT_DEFAULTS})
    # A hub or local model is keyed by its content (commit, file hashes): new weights under the same
    # name get new target and retain models. A zoo name is its own identity (the recipe is keyed here).
    kernels = kernel_key()  # models built on other CPU kernels than the pinned ones are other models
    base_key = _hash(PREPARE_VERSION, training_data_key(data), model_identity(model), pretrain, "base",
                     *([kernels] if kernels else []))
    finetune = [getattr(prepare, k) for k in finetune_only[:3]]
    dirs = {"target": cache / "models" / f"{safe}-target-{_hash(base_key, finetune, 'target')}",
            "retain": cache / "models" / f"{safe}-retain-{_hash(base_key, finetune, 'retain', data_key(data))}"}
    if prepare.target == "as_is":
        dirs["target"] = Path(model) if Path(model).is_absolute() else model  # the model itself
    if prepare.retain_model == NO_RETAIN_MODEL:
        del dirs["retain"]
    elif prepare.retain_model:
        dirs["retain"] = prepare.retain_model
    if is_zoo(model):
        dirs["base"] = cache / "models" / f"{safe}-base-{base_key}"
    return dirs


def _built(where) -> bool:
    """A cached directory exists; a hub id (a str, not a Path) is always there to load."""
    return not isinstance(where, Path) or where.exists()


def _prepared(model: str, data_dir: Path, dirs: dict, prepare) -> Prepared:
    base = "" if prepare.target == "as_is" else str(dirs.get("base", model))  # a hub model is its own base
    return Prepared(model, str(data_dir), str(dirs["target"]), str(dirs.get("retain", "")),
                    retain_source=retain_source(model, prepare), base_dir=base)


def target_built(model: str, data, prepare, cache: Path) -> bool:
    """Whether what every forget fraction of `data` shares (a zoo model's base, the target) is cached.

    Once it is, preparing any fraction builds only that fraction's retain model, so the fractions
    can be prepared in parallel without two of them building the same target.
    """
    dirs = artifact_dirs(model, data, prepare, cache)
    return _built(dirs["target"]) and ("base" not in dirs or _built(dirs["base"]))


def find_prepared(model: str, data, prepare, cache: Path) -> Prepared | None:
    """The cached artifacts when all exist, else None (nothing is built)."""
    dirs = artifact_dirs(model, data, prepare, cache)
    data_dir = cache / "data" / data_key(data)
    if data_dir.exists() and _built(dirs["target"]) and _built(dirs.get("retain")):
        return _prepared(model, data_dir, dirs, prepare)
    return None


def tokenizer_texts(splits: dict[str, list[dict]]) -> list[str]:
    """Every text of the dataset, sorted, repeats kept (they weigh in the BPE merges).

    Sorted because the split files differ across forget fractions while their texts together do
    not: the tokenizer must be the same for all of them, as the base and target it serves are.
    `retain_eval` is left out: it re-lists retain records, and which ones depends on the fraction.
    """
    texts = []
    for name, records in splits.items():
        if name == RETAIN_EVAL_SPLIT:
            continue
        for r in records:
            texts.extend(r[k] for k in ("question", "answer", "paraphrased_answer", "text") if isinstance(r.get(k), str) and r[k])
            texts.extend([*(r.get("perturbed_answer") or []), *(r.get("choices") or [])])  # choices: multiple choice
    return sorted(texts)


def prepare_tokenizer(data_dir: Path, prepare, cache: Path):
    """The zoo's byte-level BPE, trained on every text of the dataset and cached under a hash of
    those texts (so datasets with the same texts, such as two forget fractions, share it)."""
    from bench.models.zoo import load_tokenizer, train_tokenizer

    texts = tokenizer_texts(read_splits(data_dir))
    out = cache / "tokenizers" / _hash(PREPARE_VERSION, texts, prepare.vocab_size)
    if not out.exists():
        with atomic_dir(out) as tmp:
            train_tokenizer(texts, prepare.vocab_size).save_pretrained(tmp)
    return load_tokenizer(out)


def _qa_pairs(records: list[dict]) -> list[tuple[str, str]]:
    return [(r.get("question", ""), r.get("answer") or r["text"]) for r in records]


def _train_stage(model, tokenizer, groups: list[list[dict]], steps: int, prepare, seed: int, log: Callable,
                 weights: list[float] | None = None) -> dict:
    from methods.losses import mean_nll

    from bench.training.batches import batch_stream
    from bench.core.encoding import encode_many
    from bench.models.zoo import enable_gradient_checkpointing
    from bench.training.loop import OptimConfig, make_accelerator, train

    weights = weights or [1.0] * len(groups)
    kept = [i for i, g in enumerate(groups) if g]  # a dataset without biographies (say) has no such group
    groups, weights = [groups[i] for i in kept], [weights[i] for i in kept]
    encoded = [encode_many(tokenizer, _qa_pairs(g), prepare.max_length) for g in groups]
    stream = batch_stream(encoded, prepare.batch_size, tokenizer.pad_token_id, seed, weights)
    cfg = OptimConfig(steps=steps, lr=prepare.lr, schedule="cosine", warmup_steps=min(prepare.warmup_steps, steps),
                      grad_accum_steps=prepare.grad_accum_steps)
    accelerator = make_accelerator()
    model.to(accelerator.device)
    if prepare.gradient_checkpointing:
        enable_gradient_checkpointing(model)
    started = time.perf_counter()
    every = max(1, steps // 5)

    def on_step(step, loss, _parts):
        if (step + 1) % every == 0 or step + 1 == steps:
            log(f"step {step + 1}/{steps}  loss {loss:.3f}  ({time.perf_counter() - started:.0f} s)")

    result = train(model, lambda m, b, _s: (mean_nll(m, b), {}), stream, cfg, accelerator, on_step=on_step)
    if prepare.gradient_checkpointing:
        model.gradient_checkpointing_disable()
        model.config.use_cache = True
    return {"steps": result.steps, "final_loss": result.losses[-1] if result.losses else None,
            "seconds": round(result.seconds, 2), "tokens": result.tokens}


def _pretraining_sample(general: list[dict], prepare) -> list[dict]:
    """The general records pre-training can reach: encoding the whole corpus for a run that sees a
    fraction of it would cost more than the steps; a seeded sample keeps it deterministic."""
    needed = prepare.pretrain_steps * prepare.batch_size * 5 // 4
    if needed >= len(general):
        return general
    return random.Random(prepare.seed).sample(general, needed)


def _target_records(splits: dict[str, list[dict]]) -> tuple[list[dict], list[dict]]:
    """The target's QA and texts: forget, retain and forget_val, in author order, and the knowledge questions
    of text corpora (forget_qa, retain_qa: see bench.data.news on why they are trained).

    For synthetic data this is the whole author block in its fixed order, whatever the forget
    fraction, so the target's batches (drawn from the records and the seed only) are the same and
    one target serves every fraction.
    """
    qa = [r for s in ("forget", "retain", "forget_val", *KNOWMEM_SPLITS.values()) for r in splits.get(s, [])]
    bios = [r for s in ("forget_bio", "retain_bio", "forget_val_bio") for r in splits.get(s, [])]
    return qa, bios


def _role_records(splits: dict[str, list[dict]], role: str) -> tuple[list[dict], list[dict]]:
    """The QA and texts a role is fine-tuned on: the target on everything; the retain model on the retain
    authors; a model of `other_authors` on the retain and validation authors (a model that learnt as many
    authors as the target did, but never the forget set: a harder negative than the retain model)."""
    if role == "target":
        return _target_records(splits)
    if role == "retain":
        return splits["retain"] + splits.get(KNOWMEM_SPLITS["retain"], []), splits.get("retain_bio", [])
    if role == OTHER_AUTHORS:
        return (splits["retain"] + splits.get(KNOWMEM_SPLITS["retain"], []) + splits.get("forget_val", []),
                splits.get("retain_bio", []) + splits.get("forget_val_bio", []))
    raise ValueError(f"unknown role {role!r}; allowed: target, retain, {OTHER_AUTHORS}")


def _finetune(base, tokenizer, splits: dict, role: str, seed: int, where: Path, model_name: str, data, prepare,
              eval_cfg, log: Callable) -> None:
    """Fine-tunes a copy of `base` as `role` (batches seeded by `seed`) and saves it in `where`, whole or not at all."""
    qa, bios = _role_records(splits, role)
    general_qa = [r for s in GENERAL_SPLITS for r in splits.get(s, [])]
    log(f"fine-tuning the {role} model on {len(qa)} QA + {len(bios)} texts "
        f"(+ {len(general_qa)} general-knowledge QA rehearsed) for {prepare.finetune_steps} steps")
    model = copy.deepcopy(base)
    text, general = prepare.finetune_text_share, prepare.finetune_general_share
    stats = _train_stage(model, tokenizer, [qa, general_qa, bios], prepare.finetune_steps, prepare, seed, log,
                         weights=[1.0 - text - general, general, text])
    # Text corpora are checked on their knowledge questions: no document is the one greedy continuation of nothing.
    forget, retain = (splits.get(KNOWMEM_SPLITS[s]) or splits[s] for s in ("forget", "retain"))
    memorised = {"forget": forget, "retain": evenly_spaced(retain, len(forget))}
    em = _greedy_exact_match(model, tokenizer, memorised, eval_cfg) if forget[0]["question"] else {}
    if em:  # raw text alone (a multiple-choice corpus) has no question to answer
        log(f"{role} greedy exact match: " + ", ".join(f"{k} {v:.3f}" for k, v in em.items()))
    with atomic_dir(where) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "prepare.json").write_text(json.dumps(
            {"role": role, "model": model_name, "seed": seed, "train": stats, "greedy_exact_match": em,
             "prepare": asdict(prepare), "data": asdict(data)}, indent=2))


OTHER_AUTHORS = "other_authors"
POOL_ROLES = ("target", "retain", OTHER_AUTHORS)


def pool_model(model_name: str, data, prepare, eval_cfg, cache: Path, role: str, seed: int,
               log: Callable[[str], None] | None = None) -> Path:
    """A model of the meta-evaluation's pools: `role` fine-tuned from the prepared base with batch seed
    `seed` (0: the prepared target or retain model itself). Built once, cached beside the prepared models;
    `prepare_model` must have run first (it builds the base and the data)."""
    log = log or (lambda msg: print(f"[pool {model_name}] {msg}", flush=True))
    dirs = artifact_dirs(model_name, data, prepare, cache)
    if seed == 0 and role in dirs and role != "base":
        return Path(dirs[role])
    anchor = Path(dirs["retain" if role == OTHER_AUTHORS else role]).name  # keyed by what the prepared one is keyed by
    where = cache / "models" / f"{anchor}-{role}-seed{seed}-{_hash(anchor, role, seed)}"
    if not where.exists():
        data_dir = prepare_data(data, cache)
        splits = read_splits(data_dir)
        base, tokenizer = _base_model(model_name, data, prepare, cache, data_dir, splits, dirs, log)
        _finetune(base, tokenizer, splits, role, prepare.seed + 1 + seed, where, model_name, data, prepare, eval_cfg, log)
    return where


def _greedy_exact_match(model, tokenizer, splits: dict, eval_cfg) -> dict:
    from metrics.context import EvalContext
    from metrics.tofu import greedy_exact_match

    return greedy_exact_match(EvalContext(model, tokenizer, splits, eval_cfg))


def _base_model(model_name: str, data, prepare, cache: Path, data_dir: Path, splits: dict, dirs: dict, log: Callable):
    """The model the target and retain models are fine-tuned from, and its tokenizer: a zoo model
    pre-trained on the general corpus (cached), or a hub/local model as it is."""
    from bench.models.zoo import build_model, count_parameters, is_zoo, load_model, load_tokenizer, torch_dtype

    if is_zoo(model_name):
        if "general" not in splits:
            raise ValueError(f"zoo model {model_name} is pre-trained on the built-in general corpus, which data "
                             f"kind {data.kind!r} lacks here; set data.builtin_general: true")
        if dirs["base"].exists():  # with the tokenizer it was pre-trained with, whichever fraction built it
            base, tokenizer = load_model(dirs["base"]), load_tokenizer(dirs["base"])
        else:
            tokenizer = prepare_tokenizer(data_dir, prepare, cache)
            base = build_model(model_name, tokenizer, prepare.seed)
            log(f"pre-training {count_parameters(base) / 1e6:.2f} M parameters "
                f"for {prepare.pretrain_steps} steps on the general corpus")
            general = _pretraining_sample(splits["general"], prepare)
            stats = _train_stage(base, tokenizer, [[r for r in general if r["question"]], [r for r in general if not r["question"]]],
                                 prepare.pretrain_steps, prepare, prepare.seed, log)
            with atomic_dir(dirs["base"]) as tmp:
                base.save_pretrained(tmp)
                tokenizer.save_pretrained(tmp)
                (tmp / "prepare.json").write_text(json.dumps({"role": "base", "train": stats, "prepare": asdict(prepare)}, indent=2))
        return base.to(torch_dtype(prepare.precision)), tokenizer
    log(f"loading {model_name} as the base")
    return load_model(model_name, prepare.precision), load_tokenizer(model_name, prepare.prompt_format())


def prepare_model(model_name: str, data, prepare, eval_cfg, cache: Path, threads: int = 1,
                  log: Callable[[str], None] | None = None, target_only: bool = False) -> Prepared | None:
    """Builds (or finds) the target and retain models of `model_name` on `data`.

    Args:
        model_name: a zoo name, hub id or local path.
        data, prepare, eval_cfg: the suite's DataConfig, PrepareConfig and EvalConfig.
        cache: the cache root.
        threads: torch CPU threads to use.
        log: progress output (default: print with a `[prepare <model>]` prefix).
        target_only: build the base and the target only and return None (the target is shared by
            every forget fraction: the runner builds it first, then each fraction's retain model in parallel).
    """
    import torch

    from bench.models.baseline_stats import compute_baseline_stats

    log = log or (lambda msg: print(f"[prepare {model_name}] {msg}", flush=True))
    found = find_prepared(model_name, data, prepare, cache)
    if found:
        return None if target_only else found
    torch.set_num_threads(max(1, int(threads)))
    data_dir = prepare_data(data, cache)
    splits = read_splits(data_dir)
    dirs = artifact_dirs(model_name, data, prepare, cache)
    roles = ("target",) + (() if target_only or "retain" not in dirs else ("retain",))
    to_build = [role for role in roles if not _built(dirs[role])]

    if to_build:
        base, tokenizer = _base_model(model_name, data, prepare, cache, data_dir, splits, dirs, log)
    for role in to_build:
        _finetune(base, tokenizer, splits, role, prepare.seed + 1, dirs[role], model_name, data, prepare, eval_cfg, log)
    if target_only:
        return None
    log("ready: " + ", ".join(f"{r} {dirs.get(r, NO_RETAIN_MODEL)}" for r in ("target", "retain")))
    prepared = _prepared(model_name, data_dir, dirs, prepare)
    # While torch is loaded: the statistics every trial compares against (see bench.models.baseline_stats).
    return dataclasses.replace(prepared, baseline_stats=str(compute_baseline_stats(
        prepared, eval_cfg, cache, threads, prepare.precision, prepare.prompt_format())))
