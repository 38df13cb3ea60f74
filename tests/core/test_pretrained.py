"""Where a pretrained name's weights come from, and the error when they are nowhere (no model loaded)."""

from __future__ import annotations

import pytest

import bench.core.pretrained as pretrained
from bench.core.errors import SourceUnavailable
from bench.core.names import PRETRAINED


def test_without_hub_or_package_the_error_names_the_one_install_command(monkeypatch):
    monkeypatch.setattr(pretrained, "_hub_has", lambda hub_id: False)
    monkeypatch.setattr(pretrained, "gguf_path", lambda name: None)
    with pytest.raises(SourceUnavailable) as err:
        pretrained.locate("smollm2-135m")
    assert PRETRAINED["smollm2-135m"]["install"] in str(err.value)


def test_the_hub_comes_first_where_it_has_the_model(monkeypatch):
    monkeypatch.setattr(pretrained, "_hub_has", lambda hub_id: hub_id == PRETRAINED["smollm2-135m"]["hub_id"])
    located = pretrained.locate("smollm2-135m")
    assert located.hub_id == "HuggingFaceTB/SmolLM2-135M-Instruct" and located.gguf is None


def test_the_package_file_stands_in_when_the_hub_has_nothing(monkeypatch, tmp_path):
    weights = tmp_path / "model.gguf"
    weights.write_bytes(b"GGUF weights")
    monkeypatch.setattr(pretrained, "_hub_has", lambda hub_id: False)
    monkeypatch.setattr(pretrained, "gguf_path", lambda name: weights)
    located = pretrained.locate("smollm2-135m")
    assert located.gguf == weights and located.hub_id is None
