"""The smoke version of a suite (`bench run --smoke`): the same trials in miniature, to check that a
suite runs end to end in minutes before its real run."""

from __future__ import annotations

import dataclasses

from bench.config.suite import MethodEntry, Suite

SMOKE_STEPS = 3  # unlearning steps of every smoke trial


def _smoke_unlearn_settings(values: dict) -> dict:
    """A method's args or grid with its step budget and checkpoints shrunk like the suite's."""
    out = dict(values)
    if "steps" in out:
        out["steps"] = [SMOKE_STEPS] if isinstance(out["steps"], (list, tuple)) else SMOKE_STEPS
    for key in ("eval_at", "eval_every"):
        if key in out:
            out[key] = [] if key == "eval_at" else 0
    return out


def smoke_suite(suite: Suite) -> Suite:
    """Tiny data, a few steps, the first seed and the first value of every grid axis. Checkpoints
    (`eval_at`, `eval_every`) become one at step 1 where the suite has any, so the checkpoint path
    runs too; sequential requests keep at most as many parts as the smoke data has forget authors."""
    methods = tuple(MethodEntry(m.name, _smoke_unlearn_settings(m.args),
                                _smoke_unlearn_settings({k: v[:1] for k, v in m.grid.items()})) for m in suite.methods)
    checkpoints = bool(suite.unlearn.eval_at or suite.unlearn.eval_every)
    unlearn = dataclasses.replace(suite.unlearn, steps=SMOKE_STEPS, eval_at=(1,) if checkpoints else (), eval_every=0)
    data = dataclasses.replace(suite.data, n_authors=10, n_holdout_authors=4, n_general_authors=60)
    return dataclasses.replace(
        suite, name=f"{suite.name}_smoke", seeds=suite.seeds[:1], methods=methods, data=data,
        prepare=dataclasses.replace(suite.prepare, pretrain_steps=20, finetune_steps=20, vocab_size=512),
        unlearn=unlearn, eval=dataclasses.replace(suite.eval, max_new_tokens=16),
        sequential_parts=min(suite.sequential_parts, data.n_forget),
    )
