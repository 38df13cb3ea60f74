"""The runner's progress line (no Ray: the line is a plain function of a row)."""

from bench.run.runner import _describe


def test_progress_line_shows_the_headline_metrics():
    row = {"status": "ok", "forget_quality": 0.0123, "model_utility": 0.75, "train_s": 4.0, "eval_s": 3.0}
    assert _describe(row) == "forget quality 1.23e-02, utility 0.750 (4.0 s + 3.0 s eval)"


def test_progress_line_of_a_suite_that_leaves_the_headline_metrics_out():
    """A suite whose `metrics:` has neither forget quality nor model utility (e.g. only MIA) reports
    rows without those columns; the line shows the cost instead of raising in Tune's callback."""
    row = {"status": "ok", "mia_mink_pp_auc": 0.6, "train_s": 4.0, "eval_s": 3.0}
    assert _describe(row) == "(4.0 s + 3.0 s eval)"
    diverged = {**row, "status": "diverged", "error": "loss 1e9 at step 3", "model_utility": 0.1}
    assert _describe(diverged) == "DIVERGED (loss 1e9 at step 3): utility 0.100 (4.0 s + 3.0 s eval)"


def test_without_a_retain_model_the_line_shows_forget_accuracy_not_nan():
    """No retain model: forget quality is NaN in every row; the line leaves it out and shows forget accuracy."""
    row = {"status": "ok", "forget_quality": float("nan"), "forget_keyword_acc": 0.3, "model_utility": 0.5,
           "train_s": 4.0, "eval_s": 3.0}
    assert _describe(row) == "forget accuracy 0.30, utility 0.500 (4.0 s + 3.0 s eval)"
