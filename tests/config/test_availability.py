"""Models and datasets that cannot be loaded fail at suite load; the hub TOFU layout; the Paris demo."""

import json

import datasets
import pytest

from bench.config import availability
from bench.core import hub
from bench.data.store import prepare_data, read_derived, read_splits
from bench.data.capitals import capitals_splits
from bench.config.suite import DataConfig, SuiteError, load_suite

SUITE = """\
name: sources
data: {data}
models: [{model}]
methods: [grad_ascent]
"""


def _write(tmp_path, model="tiny-llama", data="{kind: synthetic_authors}"):
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE.format(model=model, data=data))
    return path


def test_a_missing_local_model_fails_at_suite_load(tmp_path):
    with pytest.raises(SuiteError, match=r"suite.yaml: models\[0\]: '.*/nowhere/model' is not a zoo model "
                                         r"and there is no such directory; allowed: a zoo model"):
        load_suite(_write(tmp_path, model=str(tmp_path / "nowhere" / "model")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SuiteError, match="not a save_pretrained directory"):
        load_suite(_write(tmp_path, model=str(tmp_path / "empty")))


def test_a_hub_model_while_offline_fails_at_suite_load_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    availability.hub_reachable.cache_clear()
    try:
        with pytest.raises(SuiteError, match=r"models\[0\]: 'no-such-owner/no-such-model' is not a zoo model, not in the "
                                             r"local Hugging Face cache.*"
                                             r"HF_HUB_OFFLINE is set"):
            load_suite(_write(tmp_path, model="no-such-owner/no-such-model"))
    finally:
        availability.hub_reachable.cache_clear()


def test_a_missing_data_file_or_key_fails_at_suite_load(tmp_path):
    data = f"{{kind: files, forget: {tmp_path / 'forget.json'}, retain: {tmp_path / 'retain.json'}}}"
    with pytest.raises(SuiteError, match=r"suite.yaml: data.forget: forget data: no such file or "
                                         r"directory: .*forget.json; allowed: a .json or .jsonl file"):
        load_suite(_write(tmp_path, data=data))
    (tmp_path / "forget.json").write_text(json.dumps([{"q": "Who?", "a": "Her."}]))
    (tmp_path / "retain.json").write_text(json.dumps([{"q": "Why?", "a": "So."}]))
    with pytest.raises(SuiteError, match=r"data.question_key: .*no key 'question'.*keys found: \['a', 'q'\]"):
        load_suite(_write(tmp_path, data=data))
    with pytest.raises(SuiteError, match="data.forget: kind files needs `forget` and `retain`, and forget is empty; allowed: "):
        load_suite(_write(tmp_path, data="{kind: files}"))


def test_user_files_are_written_in_the_harness_layout_with_what_was_derived(tmp_path):
    records = [{"q": f"Q{i}?", "a": f"Answer number {i}."} for i in range(4)]
    (tmp_path / "f.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[:2]))
    (tmp_path / "r.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[2:]))
    config = DataConfig(kind="files", forget=str(tmp_path / "f.jsonl"), retain=str(tmp_path / "r.jsonl"),
                        question_key="q", answer_key="a", builtin_general=False)
    out = prepare_data(config, tmp_path / "cache")
    splits = read_splits(out)
    assert sorted(splits) == ["forget", "retain"]
    assert splits["forget"][0] == {"question": "Q0?", "answer": "Answer number 0.",
                                   "paraphrased_answer": "Answer number 0.", "perturbed_answer": ["Answer number 1."],
                                   "alternate_answer": "I don't know."}
    assert read_derived(out)["forget"] == {"paraphrased_answer": 2, "perturbed_answer": 2, "alternate_answer": 2, "records": 2}
    with_general = prepare_data(DataConfig(**{**config.__dict__, "builtin_general": True}), tmp_path / "cache")
    assert {"world_facts", "real_authors", "general"} <= set(read_splits(with_general))


def _tofu_loader(repo, config, split="train"):
    """Tiny stand-ins for the hub TOFU configs (same columns)."""
    assert repo == "locuslab/TOFU" and split == "train"
    qa = [{"question": f"{config} q{i}?", "answer": f"{config} a{i}."} for i in range(3)]
    if config.endswith("_perturbed"):
        qa = [{**r, "paraphrased_answer": r["answer"] + " (p)", "perturbed_answer": ["w1.", "w2."]} for r in qa]
    return datasets.Dataset.from_list(qa)


def test_the_hub_tofu_dataset_goes_through_the_same_loader(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "load_dataset", _tofu_loader)
    out = prepare_data(DataConfig(kind="tofu", forget="forget05", builtin_general=False), tmp_path / "cache")
    splits = read_splits(out)
    assert sorted(splits) == ["forget", "holdout", "real_authors", "retain", "retain_eval", "world_facts"]
    assert splits["forget"][0]["question"] == "forget05_perturbed q0?"
    assert splits["retain"][0]["question"] == "retain95 q0?" and splits["holdout"][0]["question"] == "holdout05 q0?"
    assert splits["retain_eval"][0]["perturbed_answer"] == ["w1.", "w2."]
    with pytest.raises(ValueError, match="forget01, forget05, forget10"):
        DataConfig(kind="tofu", forget="forget20")


def test_the_capitals_corpus_never_shows_france_before_fine_tuning():
    splits = capitals_splits(0)
    assert [r["answer"] for r in splits["forget"]] == ["The capital of France is Paris."]
    assert "What is the capital of England?" in {r["question"] for r in splits["retain"]}
    general = " ".join(r["question"] + " " + r["answer"] for r in splits["general"])
    assert "France" not in general and "Paris" not in general and "London" in general
    held_out = [r["question"].removeprefix("What is the capital of ").rstrip("?") for r in splits["holdout"]]
    assert held_out and not any(country in general for country in held_out)


def test_bench_demo_paris_forgets_paris_and_keeps_london(tmp_path):
    from bench.demo import render_paris, run_paris_demo

    result = run_paris_demo(tmp_path / "cache", threads=1)
    (france_before, england_before), (p_paris_before, p_london_before) = result["before"]
    (france_after, england_after), (p_paris_after, p_london_after) = result["after"]
    assert "Paris" in france_before and "London" in england_before
    assert "Paris" not in france_after and "London" in england_after
    assert p_paris_before > 0.5 and p_paris_after < 0.01 and p_london_after > 0.5
    assert "p(Paris)" in render_paris(result)


def test_records_with_unequal_numbers_of_perturbed_answers_are_refused(tmp_path):
    records = [{"question": "A?", "answer": "a.", "perturbed_answer": ["b.", "c."]},
               {"question": "B?", "answer": "b.", "perturbed_answer": ["a."]}]
    (tmp_path / "f.json").write_text(json.dumps(records))
    data = f"{{kind: files, forget: {tmp_path / 'f.json'}, retain: {tmp_path / 'f.json'}}}"
    with pytest.raises(SuiteError, match="same number of perturbed answers; found 1, 2"):
        load_suite(_write(tmp_path, data=data))


def test_a_hub_dataset_that_cannot_be_fetched_fails_at_suite_load(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'locuslab/TOFU' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # "use the local cache": here it has nothing
    with pytest.raises(SuiteError, match=r"suite.yaml: data.forget: .*locuslab/TOFU:forget10_perturbed.*Couldn't reach"):
        load_suite(_write(tmp_path, data="{kind: tofu, forget: forget10}"))
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(hub, "hub_reachable", lambda: (False, "offline: huggingface.co cannot be reached"))
    with pytest.raises(SuiteError, match=r"data.forget: hub dataset locuslab/TOFU \(forget10\): the hub cannot be used \(offline"):
        load_suite(_write(tmp_path, data="{kind: tofu, forget: forget10}"))


def test_a_data_source_error_is_placed_by_its_key_field_not_its_words(tmp_path, monkeypatch):
    import bench.data.store as store

    def misleading(data):  # words that name another split and another key: only the field counts
        raise availability.SourceUnavailable("answer_key", "forget data: record 0 has no key 'x' (question_key)",
                                             "one of the keys found")

    monkeypatch.setattr(store, "check_data_sources", misleading)
    with pytest.raises(SuiteError, match=r"^.*suite.yaml: data.answer_key: forget data: record 0 has no key 'x' "
                                         r"\(question_key\); allowed: one of the keys found$"):
        load_suite(_write(tmp_path))
