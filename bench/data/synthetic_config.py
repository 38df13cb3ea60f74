"""The synthetic generator's settings (sizes, fractions, seed) and the fingerprints that key its
cached output: what `bench.data.synthetic.generate` is called with."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass

from bench.core.errors import FieldError
from bench.data.words import _NAME_CAPACITY, MAX_PERTURBED

GENERATOR_VERSION = 4  # 3: author QA records gain `paraphrased_question`; 4: forget_val and retain_eval


# ---------------------------------------------------------------------------
# Configuration.
# ---------------------------------------------------------------------------


def _check_int(field: str, value: object, low: int, high: int | None = None) -> None:
    """Raises ValueError unless ``value`` is an int within ``[low, high]``.

    Args:
        field: Config field name, quoted in the error message.
        value: Value to check.
        low: Smallest allowed value.
        high: Largest allowed value, or None for no upper bound.

    Raises:
        ValueError: If the value is not an int (bools are rejected) or is out
            of range.
    """
    allowed = f"an integer >= {low}" if high is None else (
        f"an integer in [{low}, {high}]"
    )
    # Messages start with the field's name, so a suite error can name the key (data.n_authors).
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(field, f"{allowed}", problem=f"{value!r} is not an integer")
    if value < low or (high is not None and value > high):
        raise FieldError(field, f"{allowed}", problem=f"{value!r} is out of range")


@dataclass(frozen=True)
class SyntheticConfig:
    """Size and seed of a synthetic dataset.

    Attributes:
        n_authors: Number of authors a target model is trained on: forget,
            retain and forget_val authors together.
        forget_fraction: Share of ``n_authors`` that is forgotten; the forget
            set has ``round(n_authors * forget_fraction)`` authors, at least
            one, and at least one author must remain for the retain set.
        forget_val_fraction: Share of ``n_authors`` in the ``forget_val``
            split: ``round(n_authors * forget_val_fraction)`` authors, 0 for
            none.  They are trained on by the target, left out of the
            retain model and unlearned like forget authors, but scored
            apart, so hyperparameters can be selected on their metrics
            instead of on the forget set's.
        n_holdout_authors: Authors that are never trained on; they serve as
            non-members for membership inference.
        n_general_authors: Further authors whose QA pairs and some
            biographies form the pre-training corpus, teaching the answer
            forms without the facts of the evaluated authors.
        n_perturbed: Number of wrong-fact answers per question, between 3
            and ``MAX_PERTURBED``.
        general_fact_repeats: Copies of each world-fact and real-author QA
            pair in the pre-training corpus.
        seed: Seed from which all content is derived.

    Raises:
        ValueError: On construction, if any field is out of range; the
            message names the field and the allowed range.
    """

    n_authors: int = 100
    forget_fraction: float = 0.1
    forget_val_fraction: float = 0.05
    n_holdout_authors: int = 20
    n_general_authors: int = 3000
    n_perturbed: int = 3
    general_fact_repeats: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        _check_int("n_authors", self.n_authors, 2)
        fraction = self.forget_fraction
        if (
            isinstance(fraction, bool)
            or not isinstance(fraction, (int, float))
            or not math.isfinite(fraction)
            or not 0.0 < fraction < 1.0
        ):
            raise FieldError("forget_fraction", "a number in (0, 1)", problem=f"{fraction!r} is out of range")
        if self.n_forget >= self.n_authors:
            raise FieldError("forget_fraction", "a number with round(n_authors * forget_fraction) < n_authors",
                             problem=f"{fraction!r} leaves no retain author of n_authors={self.n_authors}")
        _check_forget_val(self)
        _check_int("n_holdout_authors", self.n_holdout_authors, 0)
        _check_int("n_general_authors", self.n_general_authors, 0)
        _check_int("n_perturbed", self.n_perturbed, 3, MAX_PERTURBED)
        _check_int("general_fact_repeats", self.general_fact_repeats, 0)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise FieldError("seed", "any integer", problem=f"{self.seed!r} is not an integer")
        total = self.n_authors + self.n_holdout_authors + self.n_general_authors
        if total > _NAME_CAPACITY:
            raise FieldError("n_general_authors", f"a total of at most {_NAME_CAPACITY}, so that every author name is unique",
                             problem=f"{self.n_general_authors!r} is too large "
                                     f"(n_authors + n_holdout_authors + n_general_authors = {total})")

    @property
    def n_forget(self) -> int:
        """Number of forget authors: ``round(n_authors * forget_fraction)``, >= 1."""
        return max(1, round(self.n_authors * self.forget_fraction))

    @property
    def n_forget_val(self) -> int:
        """Number of forget_val authors: ``round(n_authors * forget_val_fraction)``, may be 0."""
        return round(self.n_authors * self.forget_val_fraction)


def _check_forget_val(config: SyntheticConfig) -> None:
    """Raises ValueError unless ``forget_val_fraction`` is in [0, 1) and leaves a retain author.

    Called after ``n_authors`` and ``forget_fraction`` are checked, so the
    error names the field that tipped the split over.
    """
    fraction = config.forget_val_fraction
    if (
        isinstance(fraction, bool)
        or not isinstance(fraction, (int, float))
        or not math.isfinite(fraction)
        or not 0.0 <= fraction < 1.0
    ):
        raise FieldError("forget_val_fraction", "a number in [0, 1)", problem=f"{fraction!r} is out of range")
    if config.n_forget + config.n_forget_val >= config.n_authors:
        raise FieldError("forget_val_fraction",
                         "a number with round(n_authors * forget_fraction) + round(n_authors * forget_val_fraction) "
                         "< n_authors",
                         problem=f"{fraction!r} with forget_fraction {config.forget_fraction!r} leaves no retain author "
                                 f"of n_authors={config.n_authors} ({config.n_forget} forget + {config.n_forget_val} "
                                 "forget_val)")


def fingerprint(config: SyntheticConfig) -> str:
    """Returns a stable identifier of the data a config generates.

    The generator version is part of the hash so that cached datasets are
    invalidated whenever the generator's output changes.

    Args:
        config: Configuration to identify.

    Returns:
        SHA-256 hex digest of the canonical JSON of the config and
        ``GENERATOR_VERSION``.
    """
    return _digest(dataclasses.asdict(config))


# How the block of n_authors is split into forget, retain and forget_val.
PARTITION_FIELDS = ("forget_fraction", "forget_val_fraction")


def training_fingerprint(config: SyntheticConfig) -> str:
    """Identifies the records of the whole ``n_authors`` block, however it is split.

    A model trained on forget + retain + forget_val (the target) sees the
    same records in the same order whatever ``PARTITION_FIELDS`` say, so it
    can be shared by every forget fraction; this is its cache identity.

    Args:
        config: Configuration to identify.

    Returns:
        SHA-256 hex digest like ``fingerprint``'s, of the config without
        ``PARTITION_FIELDS`` (never equal to a ``fingerprint``).
    """
    fields = dataclasses.asdict(config)
    return _digest({k: v for k, v in fields.items() if k not in PARTITION_FIELDS})


def _digest(fields: dict) -> str:
    """SHA-256 of the canonical JSON of config fields and ``GENERATOR_VERSION``."""
    payload = {"config": fields, "generator_version": GENERATOR_VERSION}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


