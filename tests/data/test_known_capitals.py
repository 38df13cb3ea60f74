"""The known-capitals data (RWKU's shape): disjoint splits, keywords that name the answer, wrong options
that do not, and a data key that follows the records."""

from bench.config.schema import DataConfig
from bench.data.kinds import data_kind
from bench.data.known_capitals import FORGET, HOLDOUT, NEIGHBOURS, RETAIN, known_capitals_splits


def test_every_country_is_in_one_split_only():
    countries = [c for c, _ in FORGET + RETAIN + NEIGHBOURS + HOLDOUT]
    assert len(countries) == len(set(countries))
    splits = known_capitals_splits(0)
    assert [len(splits[s]) for s in ("forget", "retain", "retain_eval", "holdout")] == [10, 16, 16, 8]


def test_capital_questions_carry_their_keyword_and_wrong_options_never_name_it():
    splits = known_capitals_splits(0)
    for split in ("forget", "retain", "retain_eval", "holdout"):
        for r in splits[split]:
            assert r["keyword"] in r["answer"] and r["keyword"] in r["paraphrased_answer"]
            assert len(r["perturbed_answer"]) == 3
            assert all(r["keyword"] not in wrong for wrong in r["perturbed_answer"])


def test_general_knowledge_has_wrong_options_and_general_text_is_raw_text():
    splits = known_capitals_splits(0)
    for r in splits["world_facts"]:
        assert len(r["perturbed_answer"]) == 3 and r["answer"] not in r["perturbed_answer"]
    assert splits["general_text"] and all(r["question"] == "" for r in splits["general_text"])


def test_the_kind_ignores_the_generators_general_splits_and_keys_by_seed():
    kind = data_kind(DataConfig(kind="known_capitals"))
    splits, derived = kind.splits(DataConfig(kind="known_capitals"))
    assert "real_authors" not in splits and derived == {}
    assert kind.data_key(DataConfig(kind="known_capitals", seed=0)) != kind.data_key(DataConfig(kind="known_capitals", seed=1))
    assert kind.data_key(DataConfig(kind="known_capitals", seed=0)) == kind.data_key(DataConfig(kind="known_capitals", seed=0))
