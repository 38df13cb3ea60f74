"""The memory plan: the estimate's parts by hand, exact parameter counts, and refusal before anything starts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from helpers import mini_suite

from bench.config.suite import parse_suite
from bench.models import memory
from bench.models.memory import GIB, PUBLISHED, DoesNotFit, Shape, check_fits, estimate, model_shape, readme_table

SHAPE = Shape(params=1000, trained=100, largest_layer=200, hidden=8, layers=2, vocab=50)


def _estimate(**changes):
    settings = dict(precision="fp32", mixed_precision="no", sharding="ddp", workers=2, reference=True, keep_copy=True,
                    sequences=3, seq_len=10, checkpointing=False)
    return estimate(SHAPE, **{**settings, **changes})


def test_replicated_fp32_parts_by_hand():
    e = _estimate()
    assert (e.weights, e.gradients, e.optimizer, e.kept_copy, e.reference, e.gathered) == (4000, 400, 800, 400, 4000, 0)
    # 34·s·b·h bytes a layer in 16-bit, doubled in fp32: 68·10·3·8 = 16320, two layers; logits 8·10·3·50 = 12000
    assert e.activations == 2 * 16320 + 12000
    assert e.total == 4000 + 400 + 800 + 400 + 4000 + 2 * 16320 + 12000


def test_fsdp_divides_the_states_by_the_workers_and_gathers_two_layers():
    e = _estimate(sharding="fsdp", workers=4, precision="bf16")
    assert (e.weights, e.gradients, e.optimizer, e.kept_copy, e.reference) == (500, 50, 100, 50, 500)
    assert e.gathered == 2 * 200 * 2
    assert e.activations == 2 * (34 * 10 * 3 * 8) + 12000  # bf16 activations, fp32 logits


def test_checkpointing_keeps_layer_inputs_and_one_layer():
    e = _estimate(checkpointing=True, mixed_precision="bf16")
    assert e.activations == 2 * 10 * 3 * 8 * 2 + 34 * 10 * 3 * 8 + 12000


def test_no_reference_and_no_copy_hold_nothing_for_them():
    e = _estimate(reference=False, keep_copy=False)
    assert e.reference == 0 and e.kept_copy == 0


def test_parameter_counts_are_exact():
    import torch

    from bench.models.zoo import ZOO
    from transformers import AutoModelForCausalLM

    shape = model_shape("tiny-llama", "npo", {}, 400)
    class Vocab:  # noqa: D401 - the zoo's config builder reads these
        bos_token_id, eos_token_id, pad_token_id = 1, 2, 0
        def __len__(self):
            return 400
    built = AutoModelForCausalLM.from_config(ZOO["tiny-llama"].build(Vocab()))
    assert shape.params == sum(p.numel() for p in built.parameters()) == shape.trained
    assert model_shape("meta-llama/Llama-2-7b-hf", "grad_diff", {}, 0).params == 6_738_415_616  # Llama-2-7B's published count
    rmu = model_shape("meta-llama/Llama-3.2-1B", "rmu", {}, 0)
    assert rmu.trained == 3 * 2048 * 8192  # three MLP down-projections: RMU trains only those


def _cpu_suite(model: str, tmp_path: Path):
    text = mini_suite("big", "  - npo").replace("models: [tiny-llama]", f"models: [{model}]")
    return parse_suite(yaml.safe_load(text), str(tmp_path / "big.yaml"))


def test_a_configuration_that_cannot_fit_is_refused_with_its_estimate(tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "device_memory", lambda resources: (24 * GIB, "this host's 24.0 GiB"))
    suite = _cpu_suite("meta-llama/Llama-2-7b-hf", tmp_path)
    with pytest.raises(DoesNotFit) as err:
        check_fits(suite)
    message = str(err.value)
    assert "big.yaml: resources: model meta-llama/Llama-2-7b-hf, method npo" in message
    total = float(re.search(r"needs an estimated ([\d.]+) GiB per device", message).group(1))
    assert total > 24 and "weights 25.10" in message and "reference 25.10" in message
    assert "this host's 24.0 GiB" in message and "fsdp" in message


def test_bench_run_refuses_before_preparing_anything(tmp_path, monkeypatch, capsys):
    """A local directory with a 7B configuration and no weights: `bench run` stops at the plan, builds nothing."""
    import json

    from bench.cli import main

    model_dir = tmp_path / "llama7b"
    model_dir.mkdir()
    config = {k: v for k, v in PUBLISHED["meta-llama/Llama-2-7b-hf"].items()}
    (model_dir / "config.json").write_text(json.dumps({**config, "architectures": ["LlamaForCausalLM"]}))
    text = mini_suite("big", "  - npo").replace("models: [tiny-llama]", f"models: [{model_dir}]")
    text = text.replace("prepare: {", "prepare: {target: as_is, retain_model: none, ")
    (tmp_path / "big.yaml").write_text(text)
    monkeypatch.setattr(memory, "device_memory", lambda resources: (24 * GIB, "this host's 24.0 GiB"))
    code = main(["run", str(tmp_path / "big.yaml"), "--storage", str(tmp_path / "store")])
    assert code == 2
    assert "needs an estimated" in capsys.readouterr().err
    assert not (tmp_path / "store").exists()


def test_the_readme_table_is_the_estimators():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert readme_table() in readme, "refresh the README's memory table from bench.models.memory.readme_table()"
