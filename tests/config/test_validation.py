"""`bench validate` on bad suites: exit code 2, no traceback, and a message naming the file, the key
path, the bad value and what is allowed (with "Did you mean" for near misses)."""

import json

import pytest

from bench.config import availability
from bench.cli import main

BASE = """\
name: mini
data: {n_authors: 10, forget_fraction: 0.2, n_holdout_authors: 2, n_general_authors: 40}
models: [tiny-llama]
unlearn: {steps: 3, batch_size: 4}
seeds: [0]
methods:
  - name: grad_diff
    grid: {lr: [1e-4, 3e-4]}
"""
DATA_LINE = "data: {n_authors: 10, forget_fraction: 0.2, n_holdout_authors: 2, n_general_authors: 40}"
ALLOWED_MODELS = "allowed: a non-empty list of model names"
ALLOWED_METHODS = "allowed: a non-empty list of methods"


def edit(old: str, new: str) -> str:
    """BASE with one piece of text replaced (which must be there)."""
    assert old in BASE, old
    return BASE.replace(old, new)


def without(line: str) -> str:
    return edit(line + "\n", "")


BASE_METHODS = BASE[BASE.index("methods:"):]

# id -> (suite text, substrings the message must contain besides the file name)
CASES = {
    # YAML itself
    "yaml-syntax": (edit("models: [tiny-llama]", "models: [tiny-llama"),
                    ["line 4, column 8", "not valid YAML", "expected ',' or ']'"]),
    "yaml-tab": (edit("  - name", "\t- name"), ["line 7, column 1", "not valid YAML", "'\\t'"]),
    "yaml-duplicate-key": (BASE + "unlearn: {steps: 5}\n",
                           ["line 9, column 1", "duplicate key 'unlearn'", "first at line 4",
                            "allowed: each key once"]),
    "yaml-duplicate-nested-key": (edit("{steps: 3, batch_size: 4}", "{steps: 3, steps: 4}"),
                                  ["line 4, column 21", "duplicate key 'steps'", "first at line 4, column 11"]),
    "empty-file": ("", ["the suite is empty", "allowed: a mapping with keys", "models and methods are required"]),
    "not-a-mapping": ("- tiny-llama\n- grad_diff\n", ["a suite is a mapping, got list", "allowed: a mapping"]),
    # unknown keys, at every level
    "unknown-top-level-key": (edit("seeds: [0]", "seed: [0]"),
                              [": seed: unknown key 'seed'", "allowed: name, data, models", "Did you mean seeds?"]),
    "unknown-unlearn-key": (edit("{steps: 3,", "{setps: 3,"),
                            ["unlearn.setps: unknown key 'setps'", "allowed: steps, lr", "Did you mean steps?"]),
    "unknown-data-key": (edit("{n_authors: 10,", "{n_autors: 10,"),
                         ["data.n_autors: unknown key", "allowed: n_authors", "Did you mean n_authors"]),
    "unknown-prepare-key": (BASE + "prepare: {finetune_step: 10}\n",
                            ["prepare.finetune_step: unknown key", "allowed: vocab_size",
                             "Did you mean finetune_steps"]),
    "unknown-eval-key": (BASE + "eval: {mink: 0.5}\n", ["eval.mink: unknown key", "allowed: batch_size",
                                                        "Did you mean mink_k"]),
    "unknown-resources-key": (BASE + "resources: {gpus: 1}\n",
                              ["resources.gpus: unknown key", "allowed: cpu, gpu", "Did you mean gpu"]),
    "unknown-method-entry-key": (edit("    grid:", "    gird:"),
                                 ["methods[0].gird: unknown key", "allowed: name, args, grid", "Did you mean grid?"]),
    # missing required keys
    "missing-models": (without("models: [tiny-llama]"), ["models: missing required key", ALLOWED_MODELS, "tiny-llama"]),
    "missing-methods": (BASE.replace(BASE_METHODS, ""),
                        ["methods: missing required key", ALLOWED_METHODS, "grad_diff"]),
    "missing-method-name": (edit("  - name: grad_diff\n    grid:", "  - grid:"),
                            ["methods[0].name: missing required key", "allowed: a method name (altpo"]),
    # unknown names
    "unknown-method": (edit("name: grad_diff", "name: grad_dif"),
                       ["methods[0].name: unknown method 'grad_dif'", "allowed: altpo", "Did you mean grad_diff"]),
    "unknown-metric": (BASE + "metrics: [mia, perplexty]\n",
                       ["metrics[1]: unknown metric 'perplexty'", "allowed: ", "Did you mean perplexity?"]),
    "unknown-hyperparameter": (edit("{lr: [1e-4, 3e-4]}", "{lrr: [1e-4]}"),
                               ["methods[0].grid.lrr: method 'grad_diff' has no hyperparameter 'lrr'",
                                "allowed: gamma, alpha, retain_loss", "Did you mean lr?"]),
    "alias-hyperparameter": (edit("{lr: [1e-4, 3e-4]}", "{learning_rate: [1e-4]}"),
                             ["methods[0].grid.learning_rate: method 'grad_diff' has no hyperparameter",
                              "training settings: steps, lr", "Did you mean lr?"]),
    "unknown-method-arg": (edit("    grid:", "    args: {beta: 0.1}\n    grid:"),
                           ["methods[0].args.beta: method 'grad_diff' has no hyperparameter 'beta'",
                            "allowed: gamma, alpha, retain_loss"]),
    "unknown-choice": (edit("batch_size: 4}", "batch_size: 4, schedule: cosin}"),
                       ["unlearn.schedule: unknown value 'cosin'", "allowed: constant, cosine",
                        "Did you mean cosine?"]),
    "unknown-data-kind": (edit("{n_authors: 10,", "{kind: file, n_authors: 10,"),
                          ["data.kind: unknown value 'file'", "allowed: synthetic_authors, files",
                           "Did you mean files?"]),
    "bad-method-arg-value": (edit("    grid:", "    args: {retain_loss: mse}\n    grid:"),
                             ["methods[0].args.retain_loss: unknown value 'mse'", "allowed: nll, kl"]),
    # wrong types
    "string-for-number": (edit("batch_size: 4", "batch_size: four"),
                          ["unlearn.batch_size: 'four' is not an integer", "allowed: an integer >= 1"]),
    "fraction-for-integer": (edit("{steps: 3,", "{steps: 2.5,"),
                             ["unlearn.steps: 2.5 is not an integer", "allowed: an integer >= 1"]),
    "string-for-bool": (edit("batch_size: 4", "batch_size: 4, keep_last_finite: sometimes"),
                        ["unlearn.keep_last_finite: 'sometimes' is not true or false", "allowed: true, false"]),
    "seeds-not-a-list": (edit("seeds: [0]", "seeds: 3"),
                         ["seeds: expected a non-empty list, got 3", "allowed: a non-empty list of distinct integers"]),
    "seed-not-an-integer": (edit("seeds: [0]", "seeds: [0, x]"),
                            ["seeds[1]: 'x' is not an integer", "allowed: an integer"]),
    "method-not-a-name": (BASE.replace(BASE_METHODS, "methods: [42]\n"),
                          ["methods[0]: 42 is not a method", "allowed: a method name (altpo"]),
    "method-name-not-a-string": (edit("name: grad_diff", "name: [grad_diff]"),
                                 ["methods[0].name: unknown method", "allowed: altpo", "Did you mean grad_diff"]),
    "data-not-a-mapping": (edit(DATA_LINE, "data: [1, 2]"),
                           ["data: expected a mapping, got [1, 2]", "allowed: a mapping with keys n_authors"]),
    "args-not-a-mapping": (edit("    grid:", "    args: 3\n    grid:"),
                           ["methods[0].args: expected a mapping, got 3", "allowed: a mapping of hyperparameter"]),
    "grid-axis-not-a-list": (edit("{lr: [1e-4, 3e-4]}", "{lr: 0.1}"),
                             ["methods[0].grid.lr: a grid axis is a non-empty list, got 0.1",
                              "allowed: a list of values"]),
    "model-null": (edit("[tiny-llama]", "[null]"), ["models[0]: None is not a model name", ALLOWED_MODELS]),
    "models-not-a-list": (edit("[tiny-llama]", "tiny-llama"),
                          ["models: expected a non-empty list, got 'tiny-llama'", ALLOWED_MODELS]),
    "probes-not-a-list": (BASE + 'probes: "x"\n', ["probes: expected a list of non-empty prompt strings", "got 'x'",
                                                  "allowed: a list of non-empty prompt strings"]),
    "metric-not-a-string": (BASE + "metrics: [3]\n", ["metrics[0]: unknown metric '3'", "allowed: "]),
    "name-not-a-string": (edit("name: mini", "name: {a: 1}"), ["name: {'a': 1} is not a name", "allowed: a non-empty"]),
    # out of range
    "negative-lr": (edit("{steps: 3,", "{steps: 3, lr: -0.001,"),
                    ["unlearn.lr: -0.001 is out of range", "allowed: a number > 0"]),
    "zero-lr": (edit("{steps: 3,", "{steps: 3, lr: 0,"), ["unlearn.lr: 0.0 is out of range", "allowed: a number > 0"]),
    "negative-lr-in-grid": (edit("[1e-4, 3e-4]", "[1e-4, -3e-4]"),
                            ["methods[0].grid.lr[1]: -0.0003 is out of range", "allowed: a number > 0"]),
    "negative-lr-in-args": (edit("grid: {lr: [1e-4, 3e-4]}", "args: {lr: -1}"),
                            ["methods[0].args.lr: -1.0 is out of range", "allowed: a number > 0"]),
    "zero-steps": (edit("{steps: 3,", "{steps: 0,"), ["unlearn.steps: 0 is out of range", "allowed: an integer >= 1"]),
    "zero-steps-in-grid": (edit("{lr: [1e-4, 3e-4]}", "{steps: [5, 0]}"),
                           ["methods[0].grid.steps[1]: 0 is out of range", "allowed: an integer >= 1"]),
    "zero-batch-size": (edit("batch_size: 4", "batch_size: 0"),
                        ["unlearn.batch_size: 0 is out of range", "allowed: an integer >= 1"]),
    "forget-fraction-above-1": (edit("forget_fraction: 0.2", "forget_fraction: 1.5"),
                                ["data.forget_fraction: 1.5 is out of range", "allowed: a number in (0, 1)"]),
    "forget-fraction-0": (edit("forget_fraction: 0.2", "forget_fraction: 0"),
                          ["data.forget_fraction: 0.0 is out of range", "allowed: a number in (0, 1)"]),
    "mink-k-0": (BASE + "eval: {mink_k: 0}\n", ["eval.mink_k: 0.0 is out of range", "allowed: a number in (0, 1]"]),
    "mink-k-above-1": (BASE + "eval: {mink_k: 1.5}\n",
                       ["eval.mink_k: 1.5 is out of range", "allowed: a number in (0, 1]"]),
    "unknown-extraction-strength": (BASE + "eval: {extraction_strength: open-unlearning}\n",
                                    ["eval.extraction_strength: unknown value 'open-unlearning'",
                                     "allowed: harness, open_unlearning", "Did you mean open_unlearning?"]),
    "extraction-strength-not-a-string": (BASE + "eval: {extraction_strength: 1}\n",
                                         ["eval.extraction_strength: 1 is not a string",
                                          "allowed: harness, open_unlearning"]),
    "negative-prepare-steps": (BASE + "prepare: {finetune_steps: -1}\n",
                               ["prepare.finetune_steps: -1 is out of range", "allowed: an integer >= 0"]),
    "zero-cpu": (BASE + "resources: {cpu: 0}\n", ["resources.cpu: 0.0 is out of range", "allowed: a number > 0"]),
    "negative-gpu": (BASE + "resources: {gpu: -1}\n",
                     ["resources.gpu: -1.0 is out of range", "allowed: a number >= 0"]),
    "too-few-authors": (edit("n_authors: 10", "n_authors: 1"),
                        ["data.n_authors: 1 is out of range", "allowed: an integer >= 2"]),
    # empty grid and duplicates
    "empty-grid-axis": (edit("[1e-4, 3e-4]", "[]"),
                        ["methods[0].grid.lr: a grid axis is a non-empty list, got []", "allowed: a list of values"]),
    "repeated-grid-value": (edit("[1e-4, 3e-4]", "[1e-3, 0.001]"),
                            ["methods[0].grid.lr[1]: 0.001 repeats methods[0].grid.lr[0]", "allowed: distinct values"]),
    "repeated-method-entry": (BASE + "  - name: grad_diff\n    grid: {lr: [3e-4]}\n",
                              ["methods[1]: expands to the same trials as methods[0]", "lr=0.0003",
                               "allowed: method entries that differ"]),
    "repeated-model": (edit("[tiny-llama]", "[tiny-llama, tiny-gpt2, tiny-llama]"),
                       ["models[2]: 'tiny-llama' repeats models[0]", "allowed: distinct model names"]),
    "repeated-seed": (edit("seeds: [0]", "seeds: [0, 1, 0]"),
                      ["seeds[2]: 0 repeats seeds[0]", "allowed: distinct integers"]),
    "unknown-prompt-format": (BASE + "prepare: {prompt: jinja}\n",
                              ["prepare.prompt: unknown value 'jinja'", "allowed: auto, plain, chat"]),
    "chat-prompt-for-a-zoo-model": (BASE + "prepare: {prompt: chat}\n",
                                    ["prepare.prompt: 'chat' needs a tokenizer with a chat template",
                                     "zoo models' (tiny-llama) have none", "allowed: auto or plain with zoo models"]),
    "args-and-grid-overlap": (edit("    grid:", "    args: {lr: 1e-4}\n    grid:"),
                              ["methods[0].grid.lr: 'lr' is given in both args and grid",
                               "allowed: each hyperparameter"]),
}


def run_validate(path, capsys, *extra) -> str:
    """`bench validate` in-process; asserts exit code 2 and no traceback, returns the output."""
    code = main(["validate", str(path), *extra])
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert code == 2, output
    assert "Traceback" not in output
    return output


def assert_mentions(output: str, *fragments: str) -> None:
    missing = [f for f in fragments if f not in output]
    assert not missing, f"{missing} not in: {output}"


def test_the_base_suite_is_valid(tmp_path, capsys):
    path = tmp_path / "mini.yaml"
    path.write_text(BASE)
    assert main(["validate", str(path), "--skip-sources"]) == 0
    assert "ok (2 trials" in capsys.readouterr().out


@pytest.mark.parametrize("text,expected", CASES.values(), ids=CASES.keys())
def test_bad_suite(tmp_path, capsys, text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    output = run_validate(path, capsys, "--skip-sources")
    assert_mentions(output, f"error: {path}: ", *expected)
    assert output.count("\n") == 1, "one line per error"


# ------------------------------------------------------------------------------------- sources


@pytest.fixture
def offline(monkeypatch):
    """No hub: only the local cache counts."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    availability.hub_reachable.cache_clear()
    yield
    availability.hub_reachable.cache_clear()


def _files_suite(tmp_path, forget: str) -> str:
    (tmp_path / "retain.json").write_text(json.dumps([{"question": "Why?", "answer": "So."}]))
    retain = tmp_path / "retain.json"
    return edit("{n_authors: 10,", f"{{kind: files, forget: {forget}, retain: {retain}, n_authors: 10,")


def _source_cases(tmp_path):
    (tmp_path / "qa.json").write_text(json.dumps([{"q": "Who?", "a": "Her."}]))
    return {
        "missing-data-file": (_files_suite(tmp_path, str(tmp_path / "nope.json")),
                              ["data.forget: forget data: no such file or directory", "nope.json",
                               "allowed: a .json or .jsonl file"]),
        "data-file-missing-keys": (_files_suite(tmp_path, str(tmp_path / "qa.json")),
                                   ["data.question_key: ", "no key 'question'", "keys found: ['a', 'q']",
                                    "allowed: one of the keys found"]),
        "hub-id-while-offline": (edit("[tiny-llama]", "[nobody-xyz/not-a-model]"),
                                 ["models[0]: 'nobody-xyz/not-a-model' is not a zoo model",
                                  "not in the local Hugging Face cache", "HF_HUB_OFFLINE is set",
                                  "allowed: a zoo model (tiny-llama, tiny-gpt2)"]),
        "misspelt-zoo-model": (edit("[tiny-llama]", "[tiny-lama]"),
                               ["models[0]: 'tiny-lama' is not a zoo model", "allowed: a zoo model",
                                "Did you mean tiny-llama?"]),
    }


SOURCE_CASES = ["missing-data-file", "data-file-missing-keys", "hub-id-while-offline", "misspelt-zoo-model"]


@pytest.mark.parametrize("case", SOURCE_CASES)
def test_bad_source(tmp_path, capsys, offline, case):
    text, expected = _source_cases(tmp_path)[case]
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    output = run_validate(path, capsys)
    assert_mentions(output, f"error: {path}: ", *expected)
    assert output.count("\n") == 1, "one line per error"


def test_missing_suite_file(tmp_path, capsys):
    output = run_validate(tmp_path / "absent.yaml", capsys, "--skip-sources")
    assert_mentions(output, str(tmp_path / "absent.yaml"), "no such suite file")


def test_a_yaml_merge_key_is_not_a_duplicate(tmp_path, capsys):
    """`<<: {...}` then overriding one of its keys is deliberate, not a repeated key."""
    path = tmp_path / "merge.yaml"
    path.write_text(edit("unlearn: {steps: 3, batch_size: 4}", "unlearn: {<<: {steps: 3, batch_size: 4}, steps: 4}"))
    assert main(["validate", str(path), "--skip-sources"]) == 0, capsys.readouterr().err
