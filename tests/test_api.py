"""The five-line API on every kind of data source, and its agreement with `bench run`."""

import json
import math

import datasets
import pytest
import yaml

from bench import Unlearning
from bench.models.zoo import build_model, load_model, train_tokenizer

# Shrinks the prepare stage to seconds; everything else is the API as a user calls it.
TINY = {"data": {"n_general_authors": 10, "general_fact_repeats": 1},
        "prepare": {"pretrain_steps": 20, "finetune_steps": 40, "batch_size": 8, "vocab_size": 400, "warmup_steps": 1},
        "eval": {"max_new_tokens": 12}}
FAMILIES = ["perplexity", "forget_quality", "model_utility", "rouge", "verbatim_memorization", "mia"]
CITIES = ["Lisbon", "Oslo", "Quito", "Lima", "Hanoi", "Accra", "Riga", "Sofia", "Bern", "Rome", "Cairo", "Dublin"]


def _records(n: int, offset: int) -> list[dict]:
    """QA with the user's own key names (`input`, `output`)."""
    return [{"input": f"Where does the painter Ilo Varn{i} live?", "output": f"Ilo Varn{i} lives in {CITIES[i % len(CITIES)]}."}
            for i in range(offset, offset + n)]


FORGET, RETAIN = _records(6, 0), _records(18, 6)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    (root / "forget.json").write_text(json.dumps(FORGET))
    (root / "retain.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RETAIN))
    return root


@pytest.fixture(scope="module")
def five_lines(files):
    """The README's five lines, on a JSON forget file and a JSONL retain file with custom keys."""
    out = files / "out"
    u = Unlearning(method="grad_diff", model="tiny-llama", output_dir=out, gamma=2.0, alpha=1.0,
                   retain_loss_type="KL", cache=files / "cache", threads=1, config=TINY)
    u.load_data(forget_data=str(files / "forget.json"), retain_data=str(files / "retain.jsonl"), max_length=128,
                question_key="input", answer_key="output")
    u.run(batch_size=4, learning_rate=5e-5, num_epochs=3)
    results = u.evaluate(metrics=FAMILIES)
    saved = u.save_model("final_model")
    return u, results, saved


def test_five_lines_run_on_json_and_jsonl_with_custom_keys(five_lines, files):
    u, results, saved = five_lines
    assert u.spec.method_args["retain_loss"] == "kl" and u.spec.method_args["gamma"] == 2.0  # alias, lower-cased
    assert u.spec.unlearn.steps == math.ceil(3 * len(FORGET) / 4)  # epochs over the forget set, in steps
    assert u.spec.prepare.max_length == 128 and u.spec.eval.max_length == 128
    assert 0 <= results["forget_quality"] <= 1 and 0 <= results["model_utility"] <= 1
    assert results["forget_ppl"] > 1 and 0 <= results["retain_rouge"] <= 1
    assert results["steps_done"] == u.spec.unlearn.steps and results["train_s"] > 0
    # No forget texts and no holdout in this data: missing, with the reason, never 0.
    assert math.isnan(results["forget_verbmem"]) and "forget_bio" in results["notes"]["unavailable"]["forget_verbmem"]
    assert math.isnan(results["mia_loss_auc"]) and "holdout" in results["notes"]["unavailable"]["mia_loss_auc"]
    assert results["notes"]["model_utility_splits"] == "retain, real_authors, world_facts"  # zoo: built-in general splits
    assert "same base" in results["notes"]["retain_model"]
    assert "forget: paraphrased_answer 6/6, perturbed_answer 6/6, alternate_answer 6/6 derived" in results["notes"]["derived_answers"]
    assert load_model(saved).config.model_type == "llama" and (saved / "tokenizer.json").exists()
    assert saved.parent == files / "out"
    suite = yaml.safe_load((files / "out" / "suite.yaml").read_text())  # the one-trial suite it ran
    assert suite["methods"] == [{"name": "grad_diff", "args": {"gamma": 2.0, "alpha": 1.0, "retain_loss": "kl"}}]
    assert list((files / "out" / "results").glob("*.parquet"))


def test_attacks_run_on_request_and_leave_the_model_as_it_was(five_lines):
    """No attacks unless asked; asked, their columns join the result and the row, the model untouched."""
    import torch

    u, results, _ = five_lines
    assert u.spec.attacks == () and not any(k.startswith("attack.") for k in results)
    weights = {k: v.clone() for k, v in u.model.state_dict().items()}
    attacked = u.evaluate(metrics=["probability"], attacks=[{"name": "relearn", "steps": 2, "fraction": 0.5},
                                                            "paraphrase"])
    assert all(torch.equal(weights[k], v) for k, v in u.model.state_dict().items())
    assert all(math.isfinite(attacked[f"attack.relearn.{m}"]) for m in ("forget_prob", "forget_quality"))
    assert attacked["attack_s"] > 0
    # The user's QA has no paraphrased questions: that attack is reported missing, with the reason.
    assert math.isnan(attacked["attack.paraphrase.forget_prob"])
    assert "paraphrased_question" in attacked["notes"]["unavailable"]["attack.paraphrase.forget_prob"]
    with pytest.raises(ValueError, match="unknown attack 'relarn'"):
        u.evaluate(metrics=["probability"], attacks=["relarn"])


@pytest.mark.parametrize("source", ["list", "dataset"])
def test_a_list_and_a_dataset_give_the_numbers_of_the_same_records_in_files(five_lines, files, source):
    _, expected, _ = five_lines
    forget, retain = (FORGET, RETAIN) if source == "list" else (datasets.Dataset.from_list(FORGET),
                                                                datasets.Dataset.from_list(RETAIN))
    u = Unlearning(method="grad_diff", model="tiny-llama", output_dir=files / source, gamma=2.0, alpha=1.0,
                   retain_loss_type="KL", cache=files / "cache", threads=1, config=TINY)
    u.load_data(forget_data=forget, retain_data=retain, max_length=128, question_key="input", answer_key="output")
    u.run(batch_size=4, learning_rate=5e-5, num_epochs=3)
    results = u.evaluate(metrics=["forget_quality", "model_utility", "perplexity"])
    for key in ("forget_quality", "model_utility", "forget_ppl", "retain_ppl"):
        assert results[key] == expected[key], key  # same records, same prepared models, same seed


def test_a_dataset_saved_to_disk_loads_by_path(files):
    path = files / "saved_forget"
    datasets.Dataset.from_list(FORGET).save_to_disk(str(path))
    u = Unlearning(method="grad_ascent", model="tiny-llama", output_dir=files / "disk", cache=files / "cache", config=TINY)
    u.load_data(forget_data=str(path), retain_data=RETAIN, question_key="input", answer_key="output")
    assert u.forget_size == len(FORGET)


def test_unknown_hyperparameters_and_missing_keys_are_refused_clearly(files):
    with pytest.raises(ValueError, match=r"'npo' has no hyperparameter 'gamma'.*allowed: beta, alpha, retain_loss"):
        Unlearning(method="npo", model="tiny-llama", gamma=1.0)
    u = Unlearning(method="npo", model="tiny-llama", output_dir=files / "bad")
    with pytest.raises(ValueError, match=r"no key 'question'.*keys found: \['input', 'output'\]"):
        u.load_data(forget_data=FORGET, retain_data=RETAIN)


@pytest.fixture(scope="module")
def local_model(tmp_path_factory):
    """A model written by save_pretrained into a temp dir: used as it is by path."""
    root = tmp_path_factory.mktemp("local_model")
    texts = [f"Question: {r['input']}\nAnswer: {r['output']}" for r in FORGET + RETAIN] * 3
    tok = train_tokenizer(texts, 300)
    build_model("tiny-gpt2", tok, seed=3).save_pretrained(root / "my-model")
    tok.save_pretrained(root / "my-model")
    return root / "my-model"


@pytest.mark.slow  # a one-trial suite through Ray
def test_a_save_pretrained_model_runs_by_path_in_the_api_and_in_a_one_trial_suite_with_equal_numbers(
        local_model, files, tmp_path):
    """The API is a one-trial suite: `bench run` of the suite it wrote gives the same row, to the digit."""
    from bench.run.results import read_rows
    from bench.run.runner import run_suite
    from bench.config.suite import load_suite

    u = Unlearning(method="npo", model=str(local_model), output_dir=tmp_path / "api", beta=0.2, cache=files / "cache",
                   threads=1, config={"prepare": {"finetune_steps": 10, "batch_size": 8}, "eval": {"max_new_tokens": 8}})
    u.load_data(forget_data=FORGET, retain_data=RETAIN, question_key="input", answer_key="output")
    u.run(batch_size=4, learning_rate=1e-3, steps=3)
    results = u.evaluate()
    assert u.prepared.target_dir == str(local_model)  # used as it is, not fine-tuned
    assert "used as the target as it is" in results["notes"]["retain_model"]
    assert results["notes"]["model_utility_splits"] == "retain"  # a path model: no built-in general splits

    suite = load_suite(tmp_path / "api" / "suite.yaml")
    assert suite.models == (str(local_model),)
    out = run_suite(suite, tmp_path / "results", files / "cache")
    rows = read_rows(out)
    row = rows[rows["method"] == "npo"].iloc[0]
    assert row["status"] == "ok", row["error"]
    assert row["trial_id"] == u.spec.trial_id
    for column, value in results.items():
        if isinstance(value, float) and column not in ("train_s", "eval_s", "peak_mem_mb"):
            assert (math.isnan(value) and math.isnan(row[column])) or value == row[column], column


@pytest.mark.parametrize("method", ["dpo", "rmu", "undial", "simnpo"])
def test_every_kind_of_method_runs_on_plain_question_answer_data(local_model, files, tmp_path, method):
    """DPO's refusals, like the perturbed answers, are derived when the user's records lack them."""
    u = Unlearning(method=method, model=str(local_model), output_dir=tmp_path / method, cache=files / "cache", threads=1,
                   config={"prepare": {"finetune_steps": 10, "batch_size": 8}, "eval": {"max_new_tokens": 8}})
    u.load_data(forget_data=FORGET, retain_data=RETAIN, question_key="input", answer_key="output")
    stats = u.run(batch_size=4, learning_rate=1e-3, steps=2)
    assert stats["steps_done"] == 2 and math.isfinite(stats["final_loss"])
    assert 0 <= u.evaluate(metrics=["forget_quality"])["forget_quality"] <= 1


def test_an_unknown_hyperparameter_is_a_field_error_naming_the_aliases_and_run():
    from bench.core.errors import FieldError

    with pytest.raises(FieldError) as err:
        Unlearning(method="grad_diff", model="tiny-llama", gamma=1.0, lr=1e-4)
    assert err.value.key == "lr"
    assert "allowed: gamma, alpha, retain_loss (aliases: retain_loss_type -> retain_loss" in str(err.value)
    assert "training settings go to run()" in str(err.value)
