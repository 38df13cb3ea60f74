"""Golden regression test: a miniature prepare and three trials, every number compared with the values
stored in tests/golden/miniature.json.

It fails when a dependency or a code change moves a number, and its message names the numbers that
moved. Tolerance: 1e-6 relative (1e-9 absolute near zero). With the CPU kernels pinned
(bench.core.numerics) and one thread, the same code and lock give these numbers bit for bit, run after run;
the tolerance only absorbs summation-order noise in reporting code (numpy, scipy), while a real change
(another initial weight, tokenizer merge, batch order or library kernel) moves trained numbers by far
more: one ulp early in training grows to whole percents after a few dozen steps.

To refresh the stored values on purpose (a deliberate change of numbers, or `scripts/refresh-lock`):

    BENCH_UPDATE_GOLDEN=1 pytest tests/test_golden.py tests/run/test_runner_corpora.py

(the second file holds the golden values of the text-corpus and multiple-choice runs, tests/golden/corpora.json)
and say in the commit which numbers moved and why.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from pathlib import Path

import pytest
import yaml
from helpers import mini_suite

from bench.models.zoo import build_model, load_model, train_tokenizer
from bench.models.prepare import prepare_model
from bench.models.baseline_stats import compute_baseline_stats
from bench.config.suite import parse_suite
from bench.run.trial import run_trial

pytestmark = pytest.mark.slow

GOLDEN = Path(__file__).parent / "golden" / "miniature.json"
UPDATE_ENV = "BENCH_UPDATE_GOLDEN"
RTOL, ATOL = 1e-6, 1e-9
REFRESH = f"{UPDATE_ENV}=1 pytest tests/test_golden.py"

SUITE = mini_suite("golden", "  - grad_diff\n  - npo\n  - rmu", steps=6)
# Not numbers of the model: times, sizes of memory, identities, free text.
SKIPPED = ("_s", "peak_mem_mb", "tokens")
CONFIG = ("hp.", "forget_fraction")  # settings, not measurements


def _weights_figures(model, prefix: str) -> dict:
    """A model's key figures: the sum of squares of its weights and a hash of their bytes."""
    import torch

    with torch.no_grad():
        squares = sum(float(p.double().pow(2).sum()) for p in model.parameters())
        h = hashlib.sha256()
        for name, p in sorted(model.named_parameters()):
            h.update(name.encode() + p.detach().float().numpy().tobytes())
    return {f"{prefix}.sum_of_squares": squares, f"{prefix}.sha256": h.hexdigest()[:16]}


def measure(cache: Path) -> dict:
    """Every figure the golden file holds: tokenizer, initial and prepared weights, training losses,
    memorisation, and each row's metrics (target, retain, three methods)."""
    suite = parse_suite(yaml.safe_load(SUITE), "golden.yaml")
    prepared = prepare_model("tiny-llama", suite.data, suite.prepare, suite.eval, cache, log=lambda _m: None)
    prepared = dataclasses.replace(prepared, baseline_stats=str(compute_baseline_stats(prepared, suite.eval, cache)))
    out: dict = {}
    tok_dir = next((cache / "tokenizers").iterdir())
    spec = json.loads((tok_dir / "tokenizer.json").read_text())["model"]
    out["tokenizer.sha256"] = hashlib.sha256(json.dumps([spec["vocab"], spec["merges"]]).encode()).hexdigest()[:16]
    out.update(_weights_figures(build_model("tiny-llama", train_tokenizer(["a b c"] * 4, 270), seed=0), "init"))
    for role, where in (("base", next((cache / "models").glob("tiny-llama-base-*"))),
                        ("target", Path(prepared.target_dir)), ("retain", Path(prepared.retain_dir))):
        info = json.loads((where / "prepare.json").read_text())
        out[f"{role}.final_loss"] = info["train"]["final_loss"]
        for split, em in info.get("greedy_exact_match", {}).items():
            out[f"{role}.greedy_exact_match.{split}"] = em
        out.update(_weights_figures(load_model(where), role))
    for spec in suite.baseline_trials() + suite.trials():
        row, = run_trial(spec, prepared)
        assert row["status"] == "ok", row.get("error")
        for key, value in row.items():
            if isinstance(value, float) and not key.endswith(SKIPPED) and not key.startswith(CONFIG) and not math.isnan(value):
                out[f"{spec.method}.{key}"] = value
    return out


def compare(stored: dict, now: dict) -> list[str]:
    """The figures that moved, one line each (empty when none did)."""
    lines = []
    for key in sorted(stored.keys() | now.keys()):
        if key not in now or key not in stored:
            lines.append(f"{key}: {'stored, no longer measured' if key in stored else 'measured, not stored'}")
            continue
        was, is_ = stored[key], now[key]
        if isinstance(was, str) or isinstance(is_, str):
            if was != is_:
                lines.append(f"{key}: {was} -> {is_}")
        elif not math.isclose(was, is_, rel_tol=RTOL, abs_tol=ATOL):
            rel = abs(is_ - was) / max(abs(was), ATOL)
            lines.append(f"{key}: {was!r} -> {is_!r} (relative change {rel:.2e})")
    return lines


def failure_message(moved: list[str], refresh: str = REFRESH) -> str:
    return (f"{len(moved)} golden value(s) moved beyond {RTOL:g} relative:\n  " + "\n  ".join(moved)
            + f"\nA dependency or a code change moved these numbers. If that is intended, refresh the stored values "
            f"with `{refresh}` and say in the commit which numbers moved and why.")


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    from bench.core.numerics import kernel_profile

    profile = kernel_profile()
    if not profile["pinned"]:
        pytest.skip(f"the golden values are of the pinned AVX2 kernels; this process runs {profile} "
                    "(BENCH_CPU_KERNELS=native, kernel variables of your own, or a CPU without AVX2)")
    return measure(tmp_path_factory.mktemp("golden-cache"))


def test_golden_values_are_unchanged(measured):
    if os.environ.get(UPDATE_ENV) == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(measured, indent=1, sort_keys=True) + "\n")
        pytest.skip(f"stored {len(measured)} golden values in {GOLDEN}")
    stored = json.loads(GOLDEN.read_text())
    moved = compare(stored, measured)
    assert not moved, failure_message(moved)


def test_a_one_percent_change_of_any_stored_value_fails_with_its_name(measured):
    """Each numeric stored value, moved by 1%, is the one figure reported, by name, with the refresh command."""
    stored = json.loads(GOLDEN.read_text())
    numeric = [k for k, v in stored.items() if isinstance(v, float) and abs(v) > ATOL]
    assert len(numeric) > 40  # the rows' metrics are all there
    for key in numeric:
        moved = compare({**stored, key: stored[key] * 1.01}, measured)
        assert len(moved) == 1 and moved[0].startswith(f"{key}: "), key
    message = failure_message(compare({**stored, numeric[0]: stored[numeric[0]] * 1.01}, measured))
    assert numeric[0] in message and REFRESH in message
