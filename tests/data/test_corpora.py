"""The MUSE- and WMDP-shaped data: the synthetic news corpus and hazard items, and the loaders of the
published layouts, read from small local snapshots (tests/fixtures/published)."""

import shutil
from collections import Counter
from pathlib import Path

import pytest

from bench.core.errors import SourceUnavailable
from bench.data.hazard import N_CHOICES, hazard_splits
from bench.data.kinds import data_kind
from bench.data.news import news_splits
from bench.data.published import muse_splits, read_rows, wmdp_splits
from bench.data.sources import DataSourceError

FIXTURES = Path(__file__).parents[1] / "fixtures" / "published"
MUSE = FIXTURES / "muse_news"
WMDP = {"forget": f"{FIXTURES / 'wmdp'}:wmdp-bio", "retain": f"{FIXTURES / 'mmlu'}:all",
        "forget_corpus": f"{FIXTURES / 'wmdp-corpora'}:bio-forget-corpus",
        "retain_corpus": f"{FIXTURES / 'wmdp-corpora'}:bio-retain-corpus"}


def test_news_corpus_is_deterministic_and_its_articles_are_raw_text():
    splits = news_splits(0)
    assert splits == news_splits(0) and splits != news_splits(1)
    assert {k: len(v) for k, v in splits.items()} == {"forget": 40, "forget_qa": 120, "retain": 60,
                                                      "retain_qa": 180, "holdout": 40, "forget_verbmem": 40}
    assert all(r["question"] == "" for s in ("forget", "retain", "holdout") for r in splits[s])
    assert [r["text"] for r in splits["forget_verbmem"]] == [r["answer"] for r in splits["forget"]]


def test_news_answers_are_in_their_articles_and_questions_are_unambiguous():
    splits = news_splits(0)
    texts = {s: " ".join(r["answer"] for r in splits[s]) for s in ("forget", "retain")}
    for split in ("forget", "retain"):
        for qa in splits[f"{split}_qa"]:
            assert qa["answer"].split()[-1] in texts[split]
    questions = [qa["question"] for s in ("forget_qa", "retain_qa") for qa in splits[s]]
    assert len(set(questions)) == len(questions)
    articles = [r["answer"] for s in ("forget", "retain", "holdout") for r in splits[s]]
    assert len(set(articles)) == len(articles)


def test_hazard_items_have_one_true_choice_stated_in_the_corpus():
    splits = hazard_splits(0)
    assert splits == hazard_splits(0)
    for corpus, items in (("forget", "forget_mc"), ("retain", "general_mc")):
        text = " ".join(r["answer"] for r in splits[corpus])
        assert len(splits[corpus]) == len(splits[items])  # a sentence per fact
        for item in splits[items]:
            assert len(item["choices"]) == N_CHOICES == len(set(item["choices"]))
            assert f"{item['question']} {item['choices'][item['answer']]}." in text
            wrong = [c for i, c in enumerate(item["choices"]) if i != item["answer"]]
            assert not any(f"{item['question']} {c}." in text for c in wrong)


def test_hazard_answers_are_spread_over_the_positions():
    """A model that always picks one position scores about chance, not more."""
    positions = Counter(item["answer"] for item in hazard_splits(0)["forget_mc"])
    assert set(positions) == set(range(N_CHOICES)) and max(positions.values()) < 0.4 * sum(positions.values())


def test_muse_loader_reads_the_hub_snapshot_layout():
    splits = muse_splits(str(MUSE))
    assert [len(splits[s]) for s in ("forget", "retain", "holdout", "forget_qa", "retain_qa", "forget_verbmem")] == \
        [2, 2, 1, 2, 1, 1]
    assert splits["forget"][0]["question"] == "" and splits["forget"][0]["answer"].startswith("Harbour officials")
    assert splits["forget_verbmem"][0] == {"prompt": "Harbour officials in Lowmere reopened the east quay",
                                           "continuation": "on Monday after a storm damaged its wall in March."}
    assert splits["forget_qa"][1] == {"question": "Who is the new head teacher in Stonebridge?", "answer": "Ida Marsh"}


def test_muse_loader_takes_retain2_qa_where_a_revision_names_it(tmp_path):
    copy = tmp_path / "muse"
    shutil.copytree(MUSE, copy)
    old = copy / "knowmem" / "retain_qa-00000-of-00001.parquet"
    old.rename(old.with_name("retain2_qa-00000-of-00001.parquet"))
    assert muse_splits(str(copy))["retain_qa"][0]["answer"] == "forty minutes"


def test_wmdp_loader_reads_questions_choices_and_corpora():
    splits = wmdp_splits(WMDP)
    assert splits["forget_mc"][0] == {"question": "Which vector carries the made-up Korvath virus?",
                                      "choices": ["ticks", "bats", "fleas", "snails"], "answer": 0}
    assert splits["general_mc"][1]["answer"] == 2 and len(splits["general_mc"][1]["choices"]) == 4
    assert splits["forget"] == [{"question": "", "answer": "The Korvath virus is carried by ticks."}]


def test_a_missing_split_names_the_folder_and_what_is_there():
    with pytest.raises(DataSourceError, match=r"no split 'retain3'.*found: \['forget-00000"):
        read_rows(str(MUSE), "raw", "retain3", "retain")


def test_wmdp_errors_name_the_setting_that_failed(tmp_path):
    bad = {**WMDP, "retain_corpus": f"{tmp_path}:nothing"}
    with pytest.raises(DataSourceError) as err:
        wmdp_splits(bad)
    assert err.value.setting == "retain_corpus"


def test_a_wrong_answer_index_is_refused(tmp_path):
    (tmp_path / "q.jsonl").write_text('{"question": "q", "choices": ["a", "b"], "answer": 5}\n')
    with pytest.raises(DataSourceError, match="not an index of its 2 choices"):
        wmdp_splits({**WMDP, "forget": str(tmp_path / "q.jsonl")})


def test_kinds_check_their_sources_at_the_setting():
    from bench.config.schema import DataConfig

    data = DataConfig(kind="wmdp", **{**WMDP, "retain_corpus": "/no/such/folder:x"})
    with pytest.raises(SourceUnavailable) as err:
        data_kind(data).check_sources(data)
    assert err.value.key == "retain_corpus"
    data_kind(DataConfig(kind="muse", forget=str(MUSE))).check_sources(DataConfig(kind="muse", forget=str(MUSE)))


@pytest.mark.parametrize("kind", ["synthetic_news", "synthetic_hazard"])
def test_corpora_run_their_metrics_and_the_model_attacks_by_default(kind):
    """Raw text has no question for TOFU's metrics or for the prompt attacks to reword."""
    from bench.config.suite import parse_suite

    suite = parse_suite({"data": {"kind": kind}, "models": ["tiny-llama"], "methods": ["npo"]}, "s.yaml")
    assert suite.eval.metrics == data_kind(suite.data).metric_families and "tofu" not in suite.eval.metrics
    assert {a["name"] for a in suite.attacks} == {"relearn", "relearn_retain", "quantize"}
    tofu = parse_suite({"models": ["tiny-llama"], "methods": ["npo"]}, "s.yaml")
    assert tofu.eval.metrics == () and {a["name"] for a in tofu.attacks} >= {"paraphrase", "prefix"}
