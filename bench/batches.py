"""Endless, seeded streams of training batches.

Batches are homogeneous in kind (question/answer or long raw text) so short answers are not padded
to the length of a biography; each group is walked in a fresh seeded permutation every epoch, and
each step draws its group by weight.
"""

from __future__ import annotations

import random
from typing import Iterator, Sequence

from .encoding import Encoded, collate


def batch_stream(
    groups: Sequence[Sequence[Encoded]], batch_size: int, pad_id: int, seed: int,
    weights: Sequence[float] | None = None,
) -> Iterator[dict]:
    """Yields collated batches forever; each batch comes from one group.

    Args:
        groups: lists of encoded examples; a batch never mixes two groups.
        batch_size: examples per batch (the last batch of a group's epoch may be smaller).
        pad_id: token id used for right padding.
        seed: seeds the group choice and the permutations, so the same seed gives the same batches.
        weights: the share of batches drawn from each group (default: proportional to group size,
            i.e. every example equally often).
    """
    pairs = [(list(g), w) for g, w in zip(groups, weights or [len(g) for g in groups]) if len(g) and w > 0]
    if not pairs:
        raise ValueError("batch_stream needs at least one non-empty group of examples with a positive weight")
    rng = random.Random(seed)
    cycles = [_epochs(group, batch_size, rng) for group, _ in pairs]
    batch_weights = [w for _, w in pairs]
    while True:
        group = rng.choices(range(len(pairs)), weights=batch_weights)[0]
        yield collate(next(cycles[group]), pad_id)


def _epochs(group: list[Encoded], batch_size: int, rng: random.Random) -> Iterator[list[Encoded]]:
    """A group's batches, epoch after epoch, in a fresh seeded order each epoch."""
    while True:
        order = list(range(len(group)))
        rng.shuffle(order)
        for s in range(0, len(order), batch_size):
            yield [group[i] for i in order[s : s + batch_size]]


def zip_streams(**streams: Iterator[dict]) -> Iterator[dict]:
    """Combines named streams into one: each step yields {"forget": batch, "retain": batch, ...}."""
    while True:
        yield {name: next(stream) for name, stream in streams.items()}
