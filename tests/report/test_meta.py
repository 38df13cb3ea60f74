"""The meta-evaluation's formulas on numbers small enough to check by hand."""

import math

import numpy as np
import pandas as pd
import pytest

from bench.report.meta import (
    META_METRICS, faithfulness, harmonic_mean, knowledge_values, meta_evaluate, meta_table, quantization_robustness,
    relearning_robustness,
)


def test_faithfulness_is_the_auroc_of_knowing_over_unknowing_models():
    """Knowing models score 0.9 and 0.6, unknowing 0.7 and 0.1: of the 4 (knowing, unknowing) pairs, 3 are
    ordered right (0.9 > 0.7, 0.9 > 0.1, 0.6 > 0.1), so the AUROC is 3/4; the bootstrap interval holds it."""
    auc, low, high = faithfulness(np.array([0.9, 0.6, 0.7, 0.1]), np.array([True, True, False, False]), resamples=200)
    assert auc == pytest.approx(0.75)
    assert 0.0 <= low <= auc <= high <= 1.0


def test_a_metric_that_falls_with_knowledge_is_turned_around():
    """Perplexity is low for a model that knows: its knowledge value is minus its log (the mean NLL), and
    forget quality is read as log10 of the p-value, minus again (a target's tiny p-value is knowledge)."""
    rows = pd.DataFrame({"forget_ppl": [1.5, 20.0], "forget_quality": [1e-6, 0.5], "forget_prob": [0.9, 0.1]})
    assert knowledge_values(rows, "forget_ppl") == pytest.approx([-math.log(1.5), -math.log(20.0)])
    assert knowledge_values(rows, "forget_quality") == pytest.approx([6.0, -math.log10(0.5)])
    assert knowledge_values(rows, "forget_prob").tolist() == [0.9, 0.1]


def test_quantization_robustness_penalises_only_a_rise_toward_knowledge():
    """On the knowledge scale, quantization taking an unlearned model from 0.1 to 0.4 brings back 0.3 of the
    knowing-unknowing gap: Q = 0.7. A fall costs nothing (Q = 1), and a rise past the whole gap floors at 0."""
    assert quantization_robustness(0.1, 0.4) == pytest.approx(0.7)
    assert quantization_robustness(0.4, 0.1) == 1.0
    assert quantization_robustness(-0.5, 1.2) == 0.0


def test_relearning_robustness_is_judged_against_the_retain_model():
    """Relearning lifts the unlearned model by 0.6 and the retain model by 0.2: the excess 0.4 gives R = 0.6.
    A lift no larger than the retain model's is what any model would show: R = 1."""
    assert relearning_robustness(0.0, 0.6, 0.0, 0.2) == pytest.approx(0.6)
    assert relearning_robustness(0.1, 0.2, 0.0, 0.3) == 1.0


def test_harmonic_mean():
    """HM(0.5, 1) = 2 * 0.5 / 1.5 = 2/3; a zero gives 0; a NaN gives NaN."""
    assert harmonic_mean(0.5, 1.0) == pytest.approx(2 / 3)
    assert harmonic_mean(0.0, 1.0) == 0.0
    assert math.isnan(harmonic_mean(float("nan"), 1.0))


def _rows() -> pd.DataFrame:
    """Pools: two targets (prob 0.9, 0.8; ROUGE 0.5, 0.1) and two retain models (prob 0.2, 0.1; ROUGE 0.3, 0.2).
    One unlearned model and the retain model attacked with seed 0."""
    pool = [("target", True, 0.9, 0.5), ("target", True, 0.8, 0.1), ("retain", False, 0.2, 0.3), ("retain", False, 0.1, 0.2)]
    rows = [{"stage": "pool", "role": r, "holds_knowledge": h, "seed": i, "trial_id": None, "forget_prob": p,
             "forget_rouge": g} for i, (r, h, p, g) in enumerate(pool)]
    for stage, p in (("before", 0.15), ("quantized", 0.50), ("relearned", 0.85)):
        rows.append({"stage": stage, "role": "unlearned", "seed": 0, "trial_id": "t", "forget_prob": p, "forget_rouge": 0.2})
    for stage, p in (("before", 0.15), ("quantized", 0.15), ("relearned", 0.50)):
        rows.append({"stage": stage, "role": "retain", "seed": 0, "trial_id": None, "forget_prob": p, "forget_rouge": 0.2})
    return pd.DataFrame(rows)


def test_meta_evaluate_by_hand():
    """Probability: every target above every retain model, faithfulness 1. Its scale: absent mean 0.15,
    present mean 0.85, gap 0.7. Quantization lifts the unlearned model by 0.35 / 0.7 = 0.5: Q = 0.5.
    Relearning lifts it by 0.7 / 0.7 = 1.0 and the retain model by 0.35 / 0.7 = 0.5: R = 1 - 0.5 = 0.5.
    Robustness HM(0.5, 0.5) = 0.5; overall HM(1, 0.5) = 2/3.
    ROUGE: pairs (0.5 > 0.3, 0.5 > 0.2, 0.1 < 0.3, 0.1 < 0.2): 2 of 4 ordered, faithfulness 0.5."""
    verdicts, sizes = meta_evaluate(_rows(), resamples=100)
    by = {v.column: v for v in verdicts}
    prob = by["forget_prob"]
    assert prob.faithfulness[0] == 1.0
    assert prob.quantization[0] == pytest.approx(0.5) and prob.relearning[0] == pytest.approx(0.5)
    assert prob.robustness[0] == pytest.approx(0.5) and prob.overall == pytest.approx(2 / 3)
    assert by["forget_rouge"].faithfulness[0] == pytest.approx(0.5)
    assert [v.column for v in verdicts][0] == "forget_prob"  # ranked by overall
    assert sizes == {"present": 2, "absent": 2, "absent_roles": {"retain": 2}, "unlearned": 1, "retain_seeds": 1}
    table = meta_table(verdicts)
    assert "Probability" in table and "0.722" in table  # ROUGE's published faithfulness beside ours


def test_meta_metrics_directions_agree_with_the_metric_declarations():
    """A forget-side metric declared "lower is better" (for unlearning) is one that rises with knowledge;
    forget quality, truth ratio and perplexity are declared the other way."""
    from metrics import metric_outputs

    outputs = metric_outputs()
    for column, (_label, rises) in META_METRICS.items():
        if column in outputs:
            assert rises == (not outputs[column].higher_is_better), column
