"""Tests for the synthetic TOFU-style dataset generator."""

import collections
import dataclasses
import difflib
import hashlib
import itertools
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]

from bench.data import synthetic as ds
from bench.data import synthetic_config
from bench.data.synthetic import (
    BIO_SPLITS,
    QA_SPLITS,
    RETAIN_EVAL_SPLIT,
    VALIDATION_SPLITS,
    SyntheticConfig,
    fingerprint,
    generate,
    training_fingerprint,
)

AUTHOR_QA_SPLITS = ("forget", "retain", "forget_val", "holdout")
SHORT_QA_SPLITS = ("world_facts", "real_authors")
AUTHOR_QA_KEYS = {
    "author",
    "question",
    "paraphrased_question",
    "answer",
    "paraphrased_answer",
    "perturbed_answer",
    "alternate_answer",
    "plausible_answer",
}
SHORT_QA_KEYS = {"question", "answer", "paraphrased_answer", "perturbed_answer"}

SMALL = SyntheticConfig(n_authors=20, n_holdout_authors=5, n_general_authors=40, seed=7)


@pytest.fixture(scope="module")
def default_data():
    return generate(SyntheticConfig())


@pytest.fixture(scope="module")
def small_data():
    return generate(SMALL)


def _canonical(data):
    return json.dumps(data, sort_keys=True)


def _authors_in_order(records):
    return list(dict.fromkeys(r["author"] for r in records))


# --- determinism -----------------------------------------------------------


def test_same_config_gives_identical_json(default_data):
    assert _canonical(generate(SyntheticConfig())) == _canonical(default_data)


def test_identical_across_processes_and_hash_seeds(small_data):
    script = (
        "import hashlib, json, sys\n"
        f"sys.path.insert(0, {str(REPO_ROOT)!r})\n"
        "from bench.data.synthetic import SyntheticConfig, generate\n"
        f"cfg = SyntheticConfig(**{dataclasses.asdict(SMALL)!r})\n"
        "text = json.dumps(generate(cfg), sort_keys=True)\n"
        "print(hashlib.sha256(text.encode()).hexdigest())\n"
    )
    expected = hashlib.sha256(_canonical(small_data).encode()).hexdigest()
    for hash_seed in ("1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        out = subprocess.run(
            [sys.executable, "-c", script],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert out.stdout.strip() == expected


def test_different_seed_gives_different_authors(small_data):
    other = generate(dataclasses.replace(SMALL, seed=SMALL.seed + 1))
    assert _canonical(other) != _canonical(small_data)
    names = set(_authors_in_order(small_data["forget"] + small_data["retain"]))
    other_names = set(_authors_in_order(other["forget"] + other["retain"]))
    assert names != other_names


def test_evaluated_authors_do_not_depend_on_general_corpus_size(small_data):
    bigger = generate(dataclasses.replace(SMALL, n_general_authors=200))
    for split in AUTHOR_QA_SPLITS + BIO_SPLITS:
        assert bigger[split] == small_data[split]


# --- sizes and splits --------------------------------------------------------


def test_default_split_sizes(default_data):
    """100 authors: 10 forget (0.1), 5 forget_val (0.05), the other 85 retain."""
    expected_keys = set(QA_SPLITS) | set(BIO_SPLITS) | set(VALIDATION_SPLITS) | {RETAIN_EVAL_SPLIT, "general"}
    assert set(default_data) == expected_keys
    assert len(default_data["forget"]) == 100
    assert len(default_data["retain"]) == 850
    assert len(default_data["forget_val"]) == 50
    assert len(default_data["holdout"]) == 200
    assert len(default_data["forget_bio"]) == 10
    assert len(default_data["retain_bio"]) == 85
    assert len(default_data["forget_val_bio"]) == 5
    assert len(default_data["holdout_bio"]) == 20
    assert len(default_data["world_facts"]) >= 50
    assert len(default_data["real_authors"]) >= 40


def test_general_corpus_size(default_data):
    cfg = SyntheticConfig()
    n_facts = len(default_data["world_facts"]) + len(default_data["real_authors"])
    expected = (
        cfg.n_general_authors * 20
        + round(cfg.n_general_authors * 0.1)
        + n_facts * cfg.general_fact_repeats
    )
    assert len(default_data["general"]) == expected
    n_bios = sum(1 for r in default_data["general"] if r["question"] == "")
    assert n_bios == round(cfg.n_general_authors * 0.1)


def test_forget_count_rounds_and_is_at_least_one():
    data = generate(
        SyntheticConfig(n_authors=10, forget_fraction=0.01, n_holdout_authors=0,
                        n_general_authors=0)
    )
    assert len(data["forget_bio"]) == 1
    assert len(data["retain_bio"]) == 9  # round(10 * 0.05) = 0 forget_val authors
    assert data["holdout"] == [] and data["holdout_bio"] == []
    data = generate(
        SyntheticConfig(n_authors=40, forget_fraction=0.25, n_holdout_authors=3,
                        n_general_authors=0)
    )
    assert len(data["forget_bio"]) == 10
    assert len(data["retain_bio"]) == 28  # 40 - 10 forget - round(40 * 0.05) = 2 forget_val
    assert len(data["holdout_bio"]) == 3


def test_qa_ordered_by_author_then_kind(small_data):
    for split in AUTHOR_QA_SPLITS:
        records = small_data[split]
        bio_authors = [r["author"] for r in small_data[f"{split}_bio"]]
        assert _authors_in_order(records) == bio_authors
        for start in range(0, len(records), 10):
            block = records[start:start + 10]
            assert len({r["author"] for r in block}) == 1
            # Kind order is fixed: the first answer is the birthplace, the
            # last one combines birthplace and year.
            assert " was born in " in block[0]["answer"]
            assert "first book" in block[6]["answer"]
            assert "second book" in block[7]["answer"]
            assert re.search(r" was born in .+ in \d{4}\.$", block[9]["answer"])


def test_splits_are_disjoint_by_author(default_data):
    cfg = SyntheticConfig()
    groups = {s: set(_authors_in_order(default_data[s])) for s in AUTHOR_QA_SPLITS}
    assert len(groups["forget"]) == 10
    assert len(groups["retain"]) == 85
    assert len(groups["forget_val"]) == 5
    assert len(groups["holdout"]) == 20
    for first, second in itertools.combinations(AUTHOR_QA_SPLITS, 2):
        assert not groups[first] & groups[second], (first, second)

    authors = ds._build_authors(cfg)
    all_names = [a.name for a in authors]
    assert len(all_names) == len(set(all_names))
    general_names = set(all_names[cfg.n_authors + cfg.n_holdout_authors:])
    assert len(general_names) == cfg.n_general_authors
    for names in groups.values():
        assert not names & general_names

    # No evaluated author may leak into the pre-training corpus at all.
    blob = "\n".join(r["question"] + "\t" + r["answer"] for r in default_data["general"])
    for names in groups.values():
        for name in names:
            assert name not in blob


def test_names_stay_unique_beyond_plain_combinations():
    plain = len(ds._FIRST_NAMES) * len(ds._LAST_NAMES)
    names = [name for name, _ in ds._author_names(3, plain + 500)]
    assert len(names) == len(set(names))
    with_initial = [n for n in names if re.fullmatch(r"\S+ [A-Z]\. \S+", n)]
    assert len(with_initial) == 500
    assert all(re.fullmatch(r"\S+ \S+", n) for n in names[:plain])


# --- record contents ---------------------------------------------------------


def test_author_qa_records_have_required_keys(default_data):
    for split in AUTHOR_QA_SPLITS:
        for record in default_data[split]:
            assert set(record) == AUTHOR_QA_KEYS
            for key in AUTHOR_QA_KEYS - {"perturbed_answer"}:
                assert isinstance(record[key], str) and record[key]
            assert record["alternate_answer"] in ds._REFUSALS


def test_paraphrased_question_asks_the_same_in_the_other_wording(default_data):
    """The kind's two wordings: the record's question is one, its paraphrase the other, both naming
    the author; a paraphrase is another author's question wording, with the name swapped."""
    for split in AUTHOR_QA_SPLITS:
        questions = {r["question"].replace(r["author"], "{name}") for r in default_data[split]}
        for record in default_data[split]:
            assert record["paraphrased_question"] != record["question"]
            assert record["author"] in record["paraphrased_question"]
        paraphrases = {r["paraphrased_question"].replace(r["author"], "{name}") for r in default_data[split]}
        assert paraphrases & questions  # the same wordings, used the other way round for some authors


def test_short_qa_records_have_required_keys(default_data):
    for split in SHORT_QA_SPLITS:
        for record in default_data[split]:
            assert set(record) == SHORT_QA_KEYS
            assert record["paraphrased_answer"] == record["answer"]


def test_all_splits_json_round_trip(small_data):
    assert json.loads(json.dumps(small_data)) == small_data


@pytest.mark.parametrize("n_perturbed", [3, 5])
def test_perturbed_answers_are_distinct_and_wrong(n_perturbed):
    data = generate(dataclasses.replace(SMALL, n_perturbed=n_perturbed))
    for split in AUTHOR_QA_SPLITS + SHORT_QA_SPLITS:
        for record in data[split]:
            perturbed = record["perturbed_answer"]
            assert len(perturbed) == n_perturbed
            assert len(set(perturbed)) == n_perturbed
            assert record["answer"] not in perturbed


def test_perturbed_answers_reuse_paraphrase_template(small_data):
    """Perturbations share the paraphrase's sentence form, so the truth ratio compares facts, not wording."""
    cfg = SMALL
    authors = {a.name: a for a in ds._build_authors(cfg)}
    for record in small_data["forget"] + small_data["retain"]:
        for wrong in record["perturbed_answer"]:
            assert record["author"] in wrong and wrong != record["paraphrased_answer"]
            like_paraphrase = difflib.SequenceMatcher(None, wrong, record["paraphrased_answer"]).ratio()
            like_answer = difflib.SequenceMatcher(None, wrong, record["answer"]).ratio()
            assert like_paraphrase > like_answer
    # The combined where-and-when question must change both facts.
    for start in range(0, len(small_data["retain"]), 10):
        record = small_data["retain"][start + 9]
        author = authors[record["author"]]
        for wrong in record["perturbed_answer"]:
            assert author.city not in wrong
            assert author.year not in wrong


def test_paraphrase_differs_from_answer(default_data):
    for split in AUTHOR_QA_SPLITS:
        for record in default_data[split]:
            assert record["paraphrased_answer"] != record["answer"]
            assert record["author"] in record["paraphrased_answer"]
            assert record["author"] in record["answer"]
            assert record["author"] in record["question"]


def test_answers_state_the_author_facts(small_data):
    authors = {a.name: a for a in ds._build_authors(SMALL)}
    for record in small_data["holdout"]:
        author = authors[record["author"]]
        facts = {author.city, author.year, author.genre, author.father,
                 author.mother, author.award, author.book1, author.book2,
                 author.theme}
        assert any(fact in record["answer"] for fact in facts)
        assert any(fact in record["paraphrased_answer"] for fact in facts)


def test_short_answers_are_short_entities(default_data):
    for split in SHORT_QA_SPLITS:
        for record in default_data[split]:
            for answer in [record["answer"], *record["perturbed_answer"]]:
                assert 1 <= len(answer.split()) <= 3, answer


def test_world_facts_contain_known_examples(default_data):
    facts = {r["question"]: r["answer"] for r in default_data["world_facts"]}
    assert facts["What is the capital of France?"] == "Paris"
    capitals = [q for q in facts if q.startswith("What is the capital of")]
    assert len(capitals) >= 50
    # Besides capitals the table must cover other kinds of facts.
    assert set(facts.values()) - set(ds._WORLD_POOLS["capital"])
    real = {r["question"]: r["answer"] for r in default_data["real_authors"]}
    assert real["Who wrote 'Pride and Prejudice'?"] == "Jane Austen"


def test_capital_perturbations_come_from_capital_column(default_data):
    capitals = set(ds._WORLD_POOLS["capital"])
    for record in default_data["world_facts"]:
        if record["question"].startswith("What is the capital of"):
            assert set(record["perturbed_answer"]) <= capitals
    real_authors = {r["answer"] for r in default_data["real_authors"]}
    for record in default_data["real_authors"]:
        assert set(record["perturbed_answer"]) <= real_authors


# --- general corpus ----------------------------------------------------------


def test_general_corpus_has_answer_and_paraphrase_wordings():
    cfg = dataclasses.replace(SMALL, n_general_authors=30)
    data = generate(cfg)
    pairs = collections.Counter((r["question"], r["answer"]) for r in data["general"])
    general_authors = ds._build_authors(cfg)[cfg.n_authors + cfg.n_holdout_authors:]
    assert len(general_authors) == 30
    for author in general_authors:
        records = ds._author_qa(author, cfg.seed, cfg.n_perturbed, with_perturbed=False)
        assert len(records) == 10
        for record in records:
            assert pairs[(record["question"], record["answer"])] == 1
            assert pairs[(record["question"], record["paraphrased_answer"])] == 1
    bios = [r["answer"] for r in data["general"] if r["question"] == ""]
    assert len(bios) == 3
    assert all(any(a.name in bio for a in general_authors) for bio in bios)


def test_general_corpus_repeats_real_facts(small_data):
    pairs = collections.Counter((r["question"], r["answer"]) for r in small_data["general"])
    for split in SHORT_QA_SPLITS:
        for record in small_data[split]:
            key = (record["question"], record["answer"])
            assert pairs[key] == SMALL.general_fact_repeats


def test_general_fact_repeats_is_respected():
    cfg = dataclasses.replace(SMALL, general_fact_repeats=2, n_general_authors=0)
    data = generate(cfg)
    n_facts = len(data["world_facts"]) + len(data["real_authors"])
    assert len(data["general"]) == 2 * n_facts
    cfg = dataclasses.replace(cfg, general_fact_repeats=0)
    assert generate(cfg)["general"] == []


def test_general_corpus_is_shuffled(small_data):
    questions = [r["question"] for r in small_data["general"]]
    # Unshuffled, the world facts would form one contiguous run at the end.
    world = {r["question"] for r in small_data["world_facts"]}
    positions = [i for i, q in enumerate(questions) if q in world]
    assert positions[-1] - positions[0] + 1 > len(positions)
    assert set(small_data["general"][0]) == {"question", "answer"}


# --- biographies ---------------------------------------------------------------


def test_bios_state_author_facts(default_data):
    authors = {a.name: a for a in ds._build_authors(SyntheticConfig())}
    for split in BIO_SPLITS:
        for record in default_data[split]:
            assert set(record) == {"author", "text"}
            author = authors[record["author"]]
            text = record["text"]
            for fact in (author.name, author.city, author.year, author.genre,
                         author.father, author.mother, author.award,
                         author.book1, author.book2, author.theme):
                assert fact in text, (fact, text)
            n_sentences = len(re.findall(r"[.!?]\"?(?:\s|$)", text))
            assert 5 <= n_sentences <= 8
            assert 70 <= len(text.split()) <= 150


def test_bio_authors_match_qa_authors(default_data):
    for split in AUTHOR_QA_SPLITS:
        qa_authors = _authors_in_order(default_data[split])
        assert [r["author"] for r in default_data[f"{split}_bio"]] == qa_authors


# --- configuration -------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [
        ("n_authors", 1),
        ("n_authors", 2.5),
        ("forget_fraction", 0.0),
        ("forget_fraction", 1.0),
        ("forget_fraction", float("nan")),
        ("forget_fraction", 0.999),
        ("forget_val_fraction", -0.1),
        ("forget_val_fraction", 1.0),
        ("forget_val_fraction", float("inf")),
        ("forget_val_fraction", "0.1"),
        ("forget_val_fraction", 0.95),  # 10 forget + 95 forget_val > 100 authors
        ("n_holdout_authors", -1),
        ("n_general_authors", -5),
        ("n_general_authors", 10**7),
        ("n_perturbed", 2),
        ("n_perturbed", ds.MAX_PERTURBED + 1),
        ("general_fact_repeats", -1),
        ("seed", "0"),
        ("seed", True),
    ],
)
def test_bad_config_raises_naming_field(field, value):
    with pytest.raises(ValueError, match=field):
        SyntheticConfig(**{field: value})


def test_max_perturbed_is_accepted():
    cfg = SyntheticConfig(n_perturbed=ds.MAX_PERTURBED, n_general_authors=0)
    data = generate(cfg)
    assert all(len(r["perturbed_answer"]) == ds.MAX_PERTURBED for r in data["world_facts"])


def test_fingerprint_is_stable_and_sensitive(monkeypatch):
    base = fingerprint(SyntheticConfig())
    assert re.fullmatch(r"[0-9a-f]{64}", base)
    assert fingerprint(SyntheticConfig()) == base
    assert fingerprint(SyntheticConfig(seed=1)) != base
    assert fingerprint(SyntheticConfig(n_perturbed=4)) != base
    monkeypatch.setattr(synthetic_config, "GENERATOR_VERSION", ds.GENERATOR_VERSION + 1)
    assert fingerprint(SyntheticConfig()) != base


# --- forget_val, retain_eval and forget fractions --------------------------------

# 40 authors: forget 2 (0.05) or 4 (0.1), forget_val 4 (0.1) at indices 36-39, retain eval from index 20.
BLOCK = SyntheticConfig(n_authors=40, forget_fraction=0.05, forget_val_fraction=0.1,
                        n_holdout_authors=3, n_general_authors=0, general_fact_repeats=0, seed=5)


@pytest.fixture(scope="module")
def by_fraction():
    return {f: generate(dataclasses.replace(BLOCK, forget_fraction=f)) for f in (0.05, 0.1)}


def test_forget_val_sizes_and_authors_are_the_block_tail(by_fraction):
    data = by_fraction[0.05]
    assert BLOCK.n_forget_val == 4
    assert len(data["forget_val"]) == 40 and len(data["forget_val_bio"]) == 4
    assert len(data["retain"]) == 10 * (40 - 2 - 4)
    names = [a.name for a in ds._build_authors(BLOCK)]
    assert _authors_in_order(data["forget_val"]) == names[36:40]
    assert [r["author"] for r in data["forget_val_bio"]] == names[36:40]


def test_forget_val_is_disjoint_from_the_other_author_splits(by_fraction):
    for data in by_fraction.values():
        val = set(_authors_in_order(data["forget_val"]))
        for split in ("forget", "retain", "holdout"):
            assert not val & set(_authors_in_order(data[split])), split


def test_author_facts_do_not_depend_on_the_fraction():
    assert ds._build_authors(BLOCK) == ds._build_authors(dataclasses.replace(BLOCK, forget_fraction=0.3))


def test_forget_sets_nest_across_fractions(by_fraction):
    small, large = by_fraction[0.05]["forget"], by_fraction[0.1]["forget"]
    assert len(small) == 20 and len(large) == 40  # 2 and 4 authors
    assert large[:len(small)] == small


def test_trained_block_is_identical_across_fractions(by_fraction):
    """forget + retain + forget_val is authors 0..39 in order, whatever the fraction: one target serves all."""
    def block(data, suffix=""):
        return [r for s in ("forget", "retain", "forget_val") for r in data[s + suffix]]

    assert block(by_fraction[0.05]) == block(by_fraction[0.1])
    assert block(by_fraction[0.05], "_bio") == block(by_fraction[0.1], "_bio")
    assert len(block(by_fraction[0.05])) == 400


def test_retain_eval_is_the_same_for_both_fractions_and_never_forgotten(by_fraction):
    """Authors 20..35: index >= max(n_forget, 40 // 2) and before the 4 forget_val authors."""
    evals = {f: data[RETAIN_EVAL_SPLIT] for f, data in by_fraction.items()}
    assert evals[0.05] == evals[0.1]
    names = [a.name for a in ds._build_authors(BLOCK)]
    assert _authors_in_order(evals[0.05]) == names[20:36]
    for f, data in by_fraction.items():
        assert not set(_authors_in_order(evals[f])) & set(_authors_in_order(data["forget"]))
        assert all(r in data["retain"] for r in evals[f])


def test_retain_eval_is_all_retain_when_the_second_half_is_not_retain():
    """24 forget_val authors of 40 take indices 16..39: no retain author at index >= 20 is left."""
    data = generate(dataclasses.replace(BLOCK, forget_val_fraction=0.6))
    assert data[RETAIN_EVAL_SPLIT] == data["retain"] and len(data["retain"]) == 10 * (40 - 2 - 24)


def test_forget_val_fraction_zero_writes_no_forget_val():
    data = generate(dataclasses.replace(BLOCK, forget_val_fraction=0))
    assert not set(VALIDATION_SPLITS) & set(data)
    assert len(data["retain"]) == 10 * 38


def test_forget_val_fraction_errors_name_the_field():
    with pytest.raises(ValueError, match=re.escape(
            "forget_val_fraction: 1.5 is out of range; allowed: a number in [0, 1)")):
        SyntheticConfig(forget_val_fraction=1.5)
    with pytest.raises(ValueError, match=r"^forget_val_fraction: 0\.5 with forget_fraction 0\.5 leaves no retain"):
        SyntheticConfig(forget_fraction=0.5, forget_val_fraction=0.5)


def test_training_fingerprint_ignores_only_the_split_of_the_block():
    base = training_fingerprint(BLOCK)
    assert training_fingerprint(dataclasses.replace(BLOCK, forget_fraction=0.1)) == base
    assert training_fingerprint(dataclasses.replace(BLOCK, forget_val_fraction=0.2)) == base
    assert training_fingerprint(dataclasses.replace(BLOCK, seed=6)) != base
    assert training_fingerprint(dataclasses.replace(BLOCK, n_authors=41)) != base
    assert fingerprint(dataclasses.replace(BLOCK, forget_fraction=0.1)) != fingerprint(BLOCK) != base


def test_plausible_answers_are_wrong_and_new(default_data):
    """AltPO's preferred answer: a wrong fact in the true answer's own sentence, never the true answer and
    never one of the perturbed answers the truth ratio scores, drawn without moving any other field."""
    for record in default_data["forget"] + default_data["retain"]:
        plausible = record["plausible_answer"]
        assert plausible != record["answer"] and plausible not in record["perturbed_answer"]
    first = default_data["forget"][0]
    # same sentence, other values: the answer's words around the swapped values are kept
    assert first["answer"].split()[:2] == first["plausible_answer"].split()[:2]
