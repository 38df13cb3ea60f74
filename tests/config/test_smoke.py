"""`bench run --smoke` turns every shipped suite into a valid miniature of itself."""

from pathlib import Path

import pytest

from bench.config.smoke import SMOKE_STEPS, smoke_suite
from bench.config.suite import load_suite

SUITES = sorted((Path(__file__).resolve().parents[2] / "suites").glob("*.yaml"))


@pytest.mark.parametrize("path", SUITES, ids=[p.stem for p in SUITES])
def test_every_shipped_suite_has_a_valid_smoke_version(path):
    suite = load_suite(path, check_sources=False)  # the real-model suites name hub models
    smoke = smoke_suite(suite)
    trials = smoke.trials()
    assert trials and len(trials) <= len(suite.trials())
    assert {t.unlearn.steps for t in trials} == {SMOKE_STEPS}
    assert all(step <= SMOKE_STEPS for t in trials for step in t.unlearn.checkpoints())


def test_the_default_suite_keeps_a_checkpoint_in_its_smoke_version():
    """tofu_small evaluates half way (eval_at: [50]); 50 is past the smoke run's last step."""
    smoke = smoke_suite(load_suite(SUITES[0].with_name("tofu_small.yaml"), check_sources=False))
    assert smoke.unlearn.eval_at == (1,)
