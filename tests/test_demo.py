"""`bench demo paris --model smollm2-135m`: the real pretrained model forgets Paris and keeps London."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.real_model]


def test_the_real_model_forgets_paris_and_keeps_london_and_berlin():
    from bench.core.cache import default_cache
    from bench.demo import render_paris, run_paris_demo

    result = run_paris_demo(default_cache(), "smollm2-135m", threads=2)
    (france, england, germany, fluency), (p_paris, p_london, p_berlin, none) = result["before"]
    assert "Paris" in france and "London" in england and "Berlin" in germany and none is None
    (france, england, germany, fluency), (p_paris_after, p_london_after, p_berlin_after, _) = result["after"]
    assert "Paris" not in france and "London" in england and "Berlin" in germany
    assert p_paris > 0.5 and p_paris_after < 0.05 and p_london_after > 0.5 and p_berlin_after > 0.5
    assert len(fluency.split()) > 5  # the unrelated question still gets a sentence
    table = render_paris(result)
    assert table.count("\n") == 5 and "p(Paris)" in table and "Why is the sky blue?" in table
