"""Attacks on unlearned models: does the forgotten knowledge come back?

One module per attack family, each registering its attacks in `ATTACKS`: weight quantization
(`quantize`), relearning on a few forget questions (`relearn`, and its retain control
`relearn_retain`), and prompt attacks (`paraphrase`, `prefix`). See `attacks.base` for the interface.
"""

from bench.core.registry import load_plugins

from . import prompts, quantize, relearn  # noqa: F401  (registration happens on import)
from .base import ATTACKS, AttackContext, AttackResult, AttackSpec, MissingKeyError, run_attack
from .prompts import DEFAULT_PREFIXES, paraphrased_questions, prefixed_questions
from .quantize import quantize_model, quantize_rtn
from .relearn import relearn_with_stats, split_for_relearning

load_plugins()  # a user's own attacks, after the built-in ones

__all__ = [
    "ATTACKS", "AttackContext", "AttackResult", "AttackSpec", "MissingKeyError", "run_attack",
    "DEFAULT_PREFIXES", "paraphrased_questions", "prefixed_questions",
    "quantize_model", "quantize_rtn",
    "relearn_with_stats", "split_for_relearning",
]
