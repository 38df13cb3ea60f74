"""Tests for bench/data_sources.py: loading user data, deriving alternates, hub TOFU splits.

No test touches the network: hub access goes through a monkeypatched
`datasets.load_dataset` or a fake loader.
"""

import json

import datasets
import pytest

from bench.data import sources as data_sources
from bench.data.sources import (
    TOFU_FORGET_SPLITS,
    TOFU_REPO,
    DataSourceError,
    derive_alternates,
    load_records,
    tofu_splits,
)

ROWS = [
    {"question": "Where is the Eiffel Tower?", "answer": "Paris"},
    {"question": "When did the Berlin Wall fall?", "answer": "1989"},
]


@pytest.fixture
def no_hub(monkeypatch):
    """Records every call to datasets.load_dataset and fails it, as offline would."""
    calls = []

    def fail(*args, **kwargs):
        calls.append((args, kwargs))
        raise ConnectionError("Couldn't reach 'owner/name' on the Hub (LocalEntryNotFoundError)\nsecond line")

    monkeypatch.setattr(datasets, "load_dataset", fail)
    return calls


# ---------------------------------------------------------------------------
# load_records: sources
# ---------------------------------------------------------------------------


def test_json_array(tmp_path):
    path = tmp_path / "forget.json"
    path.write_text(json.dumps(ROWS))
    assert load_records(path) == ROWS
    assert load_records(str(path)) == ROWS


def test_json_object_holding_one_list(tmp_path):
    path = tmp_path / "forget.json"
    path.write_text(json.dumps({"version": 2, "tags": ["a"], "data": ROWS}))
    assert load_records(path) == ROWS


@pytest.mark.parametrize(
    "content, message",
    [
        ({"version": 2, "tags": ["a"]}, "keys found: ['tags', 'version']"),
        ({"train": ROWS, "test": ROWS}, "several keys ['train', 'test']"),
        ("just text", "holds a JSON string"),
    ],
)
def test_json_without_exactly_one_list_of_objects(tmp_path, content, message):
    path = tmp_path / "forget.json"
    path.write_text(json.dumps(content))
    with pytest.raises(DataSourceError, match=str(path)) as err:
        load_records(path)
    assert message in str(err.value)


def test_jsonl(tmp_path):
    path = tmp_path / "retain.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n\n")
    assert load_records(path, what="retain") == ROWS


def test_jsonl_bad_line_names_file_and_line(tmp_path):
    path = tmp_path / "retain.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n{not json\n")
    with pytest.raises(DataSourceError, match="line 2"):
        load_records(path)


def test_python_list_coerces_values_and_drops_other_keys():
    rows = [
        {
            "question": "Year?",
            "answer": 1989,
            "paraphrased_answer": None,  # None counts as absent
            "perturbed_answer": "1990",  # a single string becomes a one-element list
            "alternate_answer": "It was 1989.",
            "id": 7,
        }
    ]
    assert load_records(rows) == [
        {"question": "Year?", "answer": "1989", "perturbed_answer": ["1990"], "alternate_answer": "It was 1989."}
    ]


def test_dataset():
    assert load_records(datasets.Dataset.from_list(ROWS)) == ROWS


def test_dataset_dict_takes_split_and_lists_splits_when_absent():
    dd = datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(ROWS[:1]), "validation": datasets.Dataset.from_list(ROWS[1:])}
    )
    assert load_records(dd, split="validation") == ROWS[1:]
    with pytest.raises(DataSourceError, match=r"a datasets.DatasetDict has no split 'test'; splits found: \['train', 'validation'\]"):
        load_records(dd, split="test")


def test_save_to_disk_directories(tmp_path):
    datasets.Dataset.from_list(ROWS).save_to_disk(str(tmp_path / "ds"))
    datasets.DatasetDict({"holdout": datasets.Dataset.from_list(ROWS[:1])}).save_to_disk(str(tmp_path / "dd"))
    assert load_records(tmp_path / "ds") == ROWS
    assert load_records(str(tmp_path / "dd"), split="holdout", what="holdout") == ROWS[:1]


def test_custom_keys():
    rows = [{"input": "Capital of Peru?", "output": "Lima", "paraphrased_answer": "It is Lima."}]
    assert load_records(rows, question_key="input", answer_key="output") == [
        {"question": "Capital of Peru?", "answer": "Lima", "paraphrased_answer": "It is Lima."}
    ]


def test_missing_key_names_record_source_and_keys_found(tmp_path):
    path = tmp_path / "forget.json"
    path.write_text(json.dumps([{"prompt": "Q?", "answer": "A"}]))
    with pytest.raises(DataSourceError) as err:
        load_records(path, what="forget")
    message = str(err.value)
    for part in ("forget data", str(path), "record 0", "'question'", "keys found: ['answer', 'prompt']"):
        assert part in message


@pytest.mark.parametrize(
    "rows, message",
    [
        ([], "a Python list holds no records"),
        ([ROWS[0], "oops"], "record 1 is a str"),
        ([{"question": "Q?", "answer": None}], "record 0 has no text under 'answer'"),
        ([{"question": "  ", "answer": "A"}], "record 0 has no text under 'question'"),
    ],
)
def test_bad_records(rows, message):
    with pytest.raises(DataSourceError, match="retain data") as err:
        load_records(rows, what="retain")
    assert message in str(err.value)


@pytest.mark.parametrize("name", ["missing.json", "sub/missing.jsonl"])
def test_missing_json_file_says_no_such_file(tmp_path, no_hub, name):
    with pytest.raises(DataSourceError, match="no such file"):
        load_records(str(tmp_path / name))
    with pytest.raises(DataSourceError, match="no such file"):
        load_records(name)  # relative, not an existing path, still not a hub id
    with pytest.raises(DataSourceError, match="no such file"):
        load_records(tmp_path / "absent")  # a Path object is always local
    assert no_hub == []


def test_hub_failure_names_id_in_one_line(no_hub):
    with pytest.raises(DataSourceError) as err:
        load_records("owner/name:cfg", split="test")
    message = str(err.value)
    assert "'owner/name:cfg'" in message and "ConnectionError" in message and "\n" not in message
    assert no_hub == [(("owner/name", "cfg"), {"split": "test"})]


def test_hub_id_loads_with_config(monkeypatch):
    calls = []

    def load(repo, config, split):
        calls.append((repo, config, split))
        return datasets.Dataset.from_list(ROWS)

    monkeypatch.setattr(datasets, "load_dataset", load)
    assert load_records("locuslab/TOFU:forget10") == ROWS
    assert load_records("owner/plain") == ROWS
    assert calls == [("locuslab/TOFU", "forget10", "train"), ("owner/plain", None, "train")]


# ---------------------------------------------------------------------------
# derive_alternates
# ---------------------------------------------------------------------------


def _split(answers):
    return [{"question": f"Q{i}?", "answer": a} for i, a in enumerate(answers)]


@pytest.mark.parametrize(
    "answer, kind",
    [
        ("1989", "number"), ("21,000", "number"), (" -3.5 ", "number"), ("+7", "number"),
        ("45%", "number"), ("1,2", "short"), ("21,000 km", "short"), ("Nepal and Tibet", "short"),
        ("one two three four", "sentence"),
    ],
)
def test_answer_kind(answer, kind):
    assert data_sources._answer_kind(answer) == kind


HAND_SPLIT = _split(["1961", "1989", "21,000", "Paris", "Rome", "The author was born in Lima.", "1961", "45%"]) + [
    {"question": "Capital of Spain?", "answer": "Madrid", "paraphrased_answer": "It is Madrid.", "perturbed_answer": ["Lisbon"]}
]


def test_derive_alternates_by_hand():
    """Record 0, "1961" (number, 4 chars). Other answers not equal to "1961" (record 6 is):
    numbers 1989 (4 chars, diff 0), 45% (3, diff 1), 21,000 (6, diff 2) come before
    any short answer, so Rome (4 chars, diff 0) is passed over.
    Record 3, "Paris" (short, 5): short Rome (4) and Madrid (6) tie at diff 1 ->
    index 4 before 8; shorts exhausted, then other kinds by diff: 1961, 1989 (4) and
    21,000 (6) all at diff 1 -> lowest index, record 0, "1961".
    """
    before = json.loads(json.dumps(HAND_SPLIT))
    out, info = derive_alternates(HAND_SPLIT, n_perturbed=3)
    assert HAND_SPLIT == before  # input not mutated
    assert out[0]["perturbed_answer"] == ["1989", "45%", "21,000"]
    assert out[6]["perturbed_answer"] == ["1989", "45%", "21,000"]
    assert out[3]["perturbed_answer"] == ["Rome", "Madrid", "1961"]
    assert out[5]["perturbed_answer"] == ["21,000", "Madrid", "Paris"]  # lone sentence: others by diff
    assert all(r["paraphrased_answer"] == r["answer"] for r in out[:8])
    assert out[8] == HAND_SPLIT[8]  # carried fields kept
    assert info == {"paraphrased_answer": 8, "perturbed_answer": 8, "records": 9}


def test_derive_alternates_needs_two_distinct_answers():
    with pytest.raises(DataSourceError, match="at least 2 records with different answers"):
        derive_alternates(_split(["Yes", " yes ", "YES"]))
    carried = [dict(r, perturbed_answer=["No"]) for r in _split(["Yes", "yes"])]
    out, info = derive_alternates(carried)  # nothing to derive: no error
    assert [r["perturbed_answer"] for r in out] == [["No"], ["No"]]
    assert info == {"paraphrased_answer": 2, "perturbed_answer": 0, "records": 2}


def test_derive_alternates_gives_fewer_when_few_distinct_answers():
    out, _ = derive_alternates(_split(["Red", "Blue", "red"]), n_perturbed=3)
    assert [r["perturbed_answer"] for r in out] == [["Blue"], ["Red"], ["Blue"]]


def _reference_perturbed(records, n):
    """The documented rule written directly: sort every other record by the rule's key."""
    norm = lambda s: " ".join(s.lower().split())
    kind = lambda s: data_sources._answer_kind(s)
    result = []
    for i, r in enumerate(records):
        a = r["answer"]
        order = sorted(
            (j for j in range(len(records)) if j != i),
            key=lambda j: (kind(records[j]["answer"]) != kind(a), abs(len(records[j]["answer"].strip()) - len(a.strip())), j),
        )
        seen, chosen = {norm(a)}, []
        for j in order:
            if norm(records[j]["answer"]) not in seen and len(chosen) < n:
                seen.add(norm(records[j]["answer"]))
                chosen.append(records[j]["answer"])
        result.append(chosen)
    return result


def test_derive_alternates_matches_the_rule_written_directly():
    words = ["12", "1,200", "-3.5", "7%", "Blue", "blue ", "Red fox", "New York City", "Ada", "1989",
             "The book was published in Lima.", "She wrote three novels about the sea.", "Yes"]
    answers = [words[(7 * i) % len(words)] for i in range(40)]
    records = _split(answers)
    out, _ = derive_alternates(records, n_perturbed=4)
    assert [r["perturbed_answer"] for r in out] == _reference_perturbed(records, 4)


# ---------------------------------------------------------------------------
# tofu_splits
# ---------------------------------------------------------------------------

_PERTURBED = [{"question": "Q?", "answer": "A", "paraphrased_answer": "P", "perturbed_answer": ["W1", "W2"], "paraphrased_question": "PQ?"}]
_QA = [{"question": "Q?", "answer": "A"}]
_FAKE_TOFU = {
    **{f"{f}_perturbed": _PERTURBED for f in TOFU_FORGET_SPLITS},
    "retain_perturbed": _PERTURBED,
    **{name: _QA for name in ("retain99", "retain95", "retain90", "holdout01", "holdout05", "holdout10")},
    # as in locuslab/tofu data/real_authors_perturbed.json
    "real_authors_perturbed": [{"question": "Who wrote '1984'?", "answer": "George Orwell", "perturbed_answer": ["Aldous Huxley", "Ray Bradbury", "Thomas More"]}],
    # the option-column shape of TOFU's earlier multiple-choice configs
    "world_facts_perturbed": [{"question": "Capital of Australia?", "option1": "Sydney", "option2": "Canberra", "option3": "Melbourne", "option4": "Perth", "answer": "Canberra"}],
}


def _fake_loader(calls, tables=_FAKE_TOFU):
    def loader(repo, config, split="train"):
        calls.append((repo, config, split))
        return datasets.Dataset.from_list(tables[config])

    return loader


def test_tofu_splits_forget01():
    calls = []
    splits = tofu_splits("forget01", loader=_fake_loader(calls))
    assert calls == [
        (TOFU_REPO, c, "train")
        for c in ("forget01_perturbed", "retain99", "retain_perturbed", "holdout01", "real_authors_perturbed", "world_facts_perturbed")
    ]
    assert list(splits) == ["forget", "retain", "retain_eval", "holdout", "real_authors", "world_facts"]
    full = {"question", "answer", "paraphrased_answer", "perturbed_answer"}
    assert {name: set(recs[0]) for name, recs in splits.items()} == {
        "forget": full | {"paraphrased_question"}, "retain": {"question", "answer"}, "retain_eval": full | {"paraphrased_question"},
        "holdout": {"question", "answer"}, "real_authors": full, "world_facts": full,
    }
    assert splits["forget"][0]["perturbed_answer"] == ["W1", "W2"]
    assert splits["real_authors"][0]["paraphrased_answer"] == "George Orwell"
    assert splits["world_facts"][0]["perturbed_answer"] == ["Sydney", "Melbourne", "Perth"]
    assert splits["world_facts"][0]["paraphrased_answer"] == "Canberra"


@pytest.mark.parametrize("forget, retain, holdout", [("forget05", "retain95", "holdout05"), ("forget10", "retain90", "holdout10")])
def test_tofu_splits_pairs_retain_and_holdout(forget, retain, holdout):
    calls = []
    tofu_splits(forget, loader=_fake_loader(calls))
    assert [c[1] for c in calls][:4] == [f"{forget}_perturbed", retain, "retain_perturbed", holdout]


def test_tofu_splits_errors():
    with pytest.raises(DataSourceError, match="allowed: forget01, forget05, forget10"):
        tofu_splits("forget20", loader=_fake_loader([]))

    def offline(repo, config, split="train"):
        if config == "holdout01":
            raise ConnectionError("offline\ndetails")
        return datasets.Dataset.from_list(_FAKE_TOFU[config])

    with pytest.raises(DataSourceError, match="'locuslab/TOFU:holdout01'.*ConnectionError: offline$"):
        tofu_splits("forget01", loader=offline)

    no_perturbed = dict(_FAKE_TOFU, forget01_perturbed=[{"question": "Q?", "answer": "A", "paraphrased_answer": "P"}])
    with pytest.raises(DataSourceError, match=r"forget01_perturbed'.*no 'perturbed_answer'; keys found: \['answer', 'paraphrased_answer', 'question'\]"):
        tofu_splits("forget01", loader=_fake_loader([], no_perturbed))
