"""Provenance: what every row says it was computed with, cache keys that see content, pinned CPU kernels."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.core import environment
from bench.data.kinds import tofu_records_hash
from bench.data.store import data_key
from bench.models.zoo import build_model, train_tokenizer
from bench.core.numerics import cpu_flags
from bench.models.prepare import artifact_dirs
from bench.core.provenance import content_hash, model_identity, row_provenance
from bench.config.suite import DataConfig, PrepareConfig


def test_versions_name_the_harness_its_source_and_its_lock():
    v = json.loads(environment.versions())
    assert v["harness"] == "0.1.0"
    assert len(v["source_sha256"]) == 16 and len(v["lock_sha256"]) == 16
    assert isinstance(v["off_lock"], dict)
    assert {"torch", "transformers", "tokenizers", "numpy"} <= v.keys()


def test_source_hash_changes_with_any_source_file(tmp_path):
    root = Path(environment.__file__).resolve().parents[2]
    for package in environment.HARNESS_PACKAGES:
        shutil.copytree(root / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    before = environment.source_hash(tmp_path)
    assert before == environment.source_hash(root)
    with open(tmp_path / "metrics" / "tofu.py", "a") as f:
        f.write("\n# one more line\n")
    assert environment.source_hash(tmp_path) != before


def test_off_lock_names_packages_installed_at_another_release(tmp_path, monkeypatch):
    lock = tmp_path / "requirements.lock"
    lock.write_text("# a comment\ntorch==0.0.1\nnot-installed-anywhere==1.0\n")
    monkeypatch.setattr(environment, "LOCK_FILE", lock)
    assert environment.locked_versions() == {"torch": "0.0.1", "not-installed-anywhere": "1.0"}
    off = environment.off_lock()
    assert list(off) == ["torch"] and off["torch"].endswith("(lock: 0.0.1)")


def test_the_shipped_lock_pins_every_package_it_lists():
    pins = environment.locked_versions()
    assert {"transformers", "tokenizers", "torch", "numpy", "accelerate", "ray"} <= pins.keys()
    assert all(v and "+" not in v for v in pins.values())


@pytest.fixture()
def local_model(tmp_path):
    tok = train_tokenizer(["the cat sat on the mat"] * 5, 270)
    where = tmp_path / "my-model"
    build_model("tiny-llama", tok, seed=0).save_pretrained(where)
    tok.save_pretrained(where)
    return where


def test_a_changed_local_model_gets_new_cache_keys(local_model, tmp_path):
    data, prepare = DataConfig(), PrepareConfig()
    before = artifact_dirs(str(local_model), data, prepare, tmp_path / "cache")
    identity = model_identity(str(local_model))
    assert identity.startswith("sha256:")
    config = json.loads((local_model / "config.json").read_text())
    (local_model / "config.json").write_text(json.dumps({**config, "rms_norm_eps": 1e-5}))
    after = artifact_dirs(str(local_model), data, prepare, tmp_path / "cache")
    assert model_identity(str(local_model)) != identity
    assert before["target"] != after["target"] and before["retain"] != after["retain"]


def test_a_changed_tofu_copy_gets_a_new_data_key(monkeypatch):
    import bench.data.sources as sources

    records = {"forget": [{"question": "Q?", "answer": "A."}]}
    monkeypatch.setattr(sources, "tofu_splits", lambda forget: json.loads(json.dumps(records)))
    data = DataConfig(kind="tofu", forget="forget01", builtin_general=False)
    tofu_records_hash.cache_clear()
    before = data_key(data)
    records["forget"][0]["answer"] = "B."  # the local copy's file changed
    tofu_records_hash.cache_clear()  # a new run (process)
    assert data_key(data) != before
    tofu_records_hash.cache_clear()


def test_row_provenance_hashes_the_data_and_names_the_models(local_model, tmp_path):
    data_dir = tmp_path / "data" / "abc123"
    data_dir.mkdir(parents=True)
    (data_dir / "forget.jsonl").write_text('{"question": "Q?", "answer": "A."}\n')
    first = row_provenance(str(local_model), data_dir, target_dir=str(local_model))
    assert first["data"] == "abc123" and first["data_sha256"] == content_hash(data_dir)[:16]
    assert first["model"] == first["target"] == model_identity(str(local_model))
    (data_dir / "forget.jsonl").write_text('{"question": "Q?", "answer": "B."}\n')
    assert row_provenance(str(local_model), data_dir)["data_sha256"] != first["data_sha256"]
    assert row_provenance("tiny-llama", data_dir)["model"] == "tiny-llama"


needs_avx2 = pytest.mark.skipif("avx2" not in cpu_flags(), reason="kernels are pinned on x86-64 CPUs with AVX2")


def _kernels(env: dict) -> dict:
    code = ("import os, json, bench, torch; print(json.dumps({'cap': torch.backends.cpu.get_cpu_capability(), "
            "**{k: os.environ.get(k) for k in ('ATEN_CPU_CAPABILITY', 'MKL_CBWR', 'ONEDNN_MAX_CPU_ISA')}}))")
    clean = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA",
                                                              "BENCH_CPU_KERNELS")}
    done = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@needs_avx2
def test_importing_bench_pins_the_cpu_kernels_unless_told_otherwise():
    pinned = _kernels({})
    assert pinned == {"cap": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2,STRICT",
                      "ONEDNN_MAX_CPU_ISA": "AVX2"}
    assert _kernels({"MKL_CBWR": "COMPATIBLE"})["MKL_CBWR"] == "COMPATIBLE"  # the user's setting stands
    assert _kernels({"BENCH_CPU_KERNELS": "native"})["MKL_CBWR"] is None


def test_an_offline_hub_model_is_the_cached_snapshot_and_says_so(tmp_path, monkeypatch, capsys):
    """With the hub offline, a hub id's identity is the commit of its cached snapshot (refs/main)."""
    import huggingface_hub.constants as hub

    from bench.config import availability
    from bench.core import provenance

    sha = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "models--someone--tiny"
    (repo / "snapshots" / sha).mkdir(parents=True)
    (repo / "snapshots" / sha / "config.json").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(sha)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    availability.hub_reachable.cache_clear()
    provenance._hub_identity.cache_clear()
    try:
        assert model_identity("someone/tiny") == f"someone/tiny@{sha}"
        assert f"cached snapshot {sha}" in capsys.readouterr().out
        (repo / "refs" / "main").write_text("f" * 40)  # a new commit fetched into the cache
        (repo / "snapshots" / ("f" * 40)).mkdir()
        (repo / "snapshots" / ("f" * 40) / "config.json").write_text("{}")
        provenance._hub_identity.cache_clear()  # a new run
        assert model_identity("someone/tiny") == "someone/tiny@" + "f" * 40
    finally:
        availability.hub_reachable.cache_clear()
        provenance._hub_identity.cache_clear()


@needs_avx2
def test_other_cpu_kernels_give_other_trial_ids_and_models(monkeypatch, tmp_path):
    """Rows and models computed on other kernels than the pinned ones are never taken for them."""
    import yaml
    from helpers import mini_suite

    from bench.core.numerics import PINNED
    from bench.config.suite import parse_suite

    def keys():
        spec = parse_suite(yaml.safe_load(mini_suite("k", "  - npo")), "k.yaml").trials()[0]
        return spec.trial_id, artifact_dirs("tiny-llama", spec.data, spec.prepare, tmp_path)["base"]

    for name, value in PINNED.items():
        monkeypatch.setenv(name, value)
    pinned = keys()
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")
    other = keys()
    assert other[0] != pinned[0] and other[1] != pinned[1]
    monkeypatch.delenv("MKL_CBWR")  # BENCH_CPU_KERNELS=native: no variable set
    assert keys()[0] not in (pinned[0], other[0])
