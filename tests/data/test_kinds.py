"""Data kinds in their registry: a kind registered anywhere is a kind every part knows; source errors
carry the `data:` setting they are about, as fields, never as words to be parsed."""

import json

import pytest

from bench.config.schema import DataConfig
from bench.config.suite import SuiteError, parse_suite
from bench.core.errors import FieldError, SourceUnavailable
from bench.data import store
from bench.data.kinds import KINDS, DataKind, data_kind
from bench.data.sources import DataSourceError, load_records

SMALL = {"n_authors": 10, "forget_fraction": 0.2, "n_holdout_authors": 2, "n_general_authors": 40}
RECORDS = {"forget": [{"question": "Who wrote Q?", "answer": "Ann."}, {"question": "Who drew R?", "answer": "Bo."}],
           "retain": [{"question": "Who sang S?", "answer": "Cy."}, {"question": "Who built T?", "answer": "Di."}]}


class Inline(DataKind):
    """Records held in the code: the smallest kind there is."""

    records_given = RECORDS

    def records(self, data):
        return json.loads(json.dumps(self.records_given)), {}


@pytest.fixture
def inline(monkeypatch):
    """`inline` registered for one test (the registry is put back afterwards)."""
    monkeypatch.setattr(KINDS, "_entries", dict(KINDS._entries))
    KINDS.register("inline")(Inline)
    return KINDS.get("inline")


def test_the_built_in_kinds_are_registered_with_the_default_first():
    assert KINDS.names_in_order() == ["synthetic_authors", "files", "tofu", "capitals", "known_capitals",
                                      "synthetic_news", "synthetic_hazard", "muse", "wmdp"]
    assert data_kind(DataConfig(**SMALL)).name == "synthetic_authors"


def test_a_kind_registered_here_is_a_kind_of_the_schema_the_suite_and_the_store(inline, tmp_path):
    data = DataConfig(kind="inline", **SMALL)
    suite = parse_suite({"data": {"kind": "inline", **SMALL}, "models": ["tiny-llama"], "methods": ["grad_ascent"]},
                        "s.yaml")
    assert suite.data == data
    splits = store.read_splits(store.prepare_data(data, tmp_path))
    assert splits["forget"] == RECORDS["forget"] and {"general", "world_facts", "real_authors"} <= set(splits)
    with pytest.raises(FieldError, match=r"allowed: synthetic_authors, files, tofu, capitals, known_capitals, synthetic_news, synthetic_hazard, muse, wmdp, inline"):
        DataConfig(kind="nowhere", **SMALL)


def test_a_new_kinds_data_key_follows_its_records_by_default(inline, monkeypatch):
    data = DataConfig(kind="inline", **SMALL)
    before = store.data_key(data)
    assert store.training_data_key(data) == before
    monkeypatch.setattr(Inline, "records_given", {**RECORDS, "forget": RECORDS["forget"][:1]})
    assert store.data_key(data) != before


def test_a_kinds_own_config_check_reaches_the_suite_at_its_key(inline, monkeypatch):
    def needs_a_forget_source(self, data):
        if not data.forget:
            raise FieldError("forget", "a name", problem="kind inline needs `forget`")

    monkeypatch.setattr(Inline, "check_config", needs_a_forget_source)
    with pytest.raises(SuiteError, match=r"^s.yaml: data.forget: kind inline needs `forget`; allowed: a name$"):
        parse_suite({"data": {"kind": "inline"}, "models": ["tiny-llama"], "methods": ["grad_ascent"]}, "s.yaml")


def test_a_list_of_forget_fractions_needs_a_kind_that_makes_fractions(inline):
    with pytest.raises(SuiteError, match=r"data.forget_fraction: a list of forget fractions needs kind "
                                         r"synthetic_authors, not 'inline'"):
        parse_suite({"data": {"kind": "inline", "forget_fraction": [0.1, 0.2]}, "models": ["tiny-llama"],
                     "methods": ["grad_ascent"]}, "s.yaml")


def test_a_missing_record_key_names_the_setting_as_a_field(tmp_path):
    (tmp_path / "qa.json").write_text(json.dumps([{"q": "Who?", "a": "Her."}]))
    with pytest.raises(DataSourceError) as err:
        load_records(str(tmp_path / "qa.json"), question_key="q", answer_key="answer")
    assert err.value.setting == "answer_key" and "keys found: ['a', 'q']" in err.value.problem


def _files(tmp_path, **settings) -> DataConfig:
    (tmp_path / "qa.json").write_text(json.dumps([{"q": "Who?", "a": "Her."}, {"q": "Why?", "a": "So."}]))
    sources = {"forget": str(tmp_path / "qa.json"), "retain": str(tmp_path / "qa.json")}
    return DataConfig(kind="files", **{**sources, **settings}, **SMALL)


@pytest.mark.parametrize("settings, key, allowed", [
    ({}, "question_key", "one of the keys found"),  # the records have `q`, not `question`
    ({"question_key": "q", "answer_key": "text"}, "answer_key", "one of the keys found"),
    ({"question_key": "q", "answer_key": "a", "retain": "missing.json"}, "retain", "a .json or .jsonl file"),
    ({"question_key": "q", "answer_key": "a", "holdout": "held.txt"}, "holdout", ".json, .jsonl"),
])
def test_files_source_errors_carry_the_setting_they_are_about(tmp_path, settings, key, allowed):
    if settings.get("holdout"):
        (tmp_path / "held.txt").write_text("")
        settings = {**settings, "holdout": str(tmp_path / "held.txt")}
    data = _files(tmp_path, **settings)
    with pytest.raises(SourceUnavailable) as err:
        store.check_data_sources(data)
    assert err.value.key == key and err.value.value == getattr(data, key)
    assert err.value.allowed.startswith(allowed)
