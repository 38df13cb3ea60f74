"""Endless, seeded streams of training batches.

Batches are homogeneous in kind (question/answer or long raw text) so short answers are not padded
to the length of a biography; within a kind the order is a fresh seeded permutation every epoch.
"""

from __future__ import annotations

import random
from typing import Iterator, Sequence

from .encoding import Encoded, collate


def batch_stream(
    groups: Sequence[Sequence[Encoded]], batch_size: int, pad_id: int, seed: int
) -> Iterator[dict]:
    """Yields collated batches forever, drawn from each group in proportion to its size.

    Args:
        groups: lists of encoded examples; a batch never mixes two groups.
        batch_size: examples per batch (the last batch of an epoch may be smaller).
        pad_id: token id used for right padding.
        seed: seeds the permutations, so the same seed gives the same batches.
    """
    groups = [list(g) for g in groups if len(g)]
    if not groups:
        raise ValueError("batch_stream needs at least one non-empty group of examples")
    rng = random.Random(seed)
    while True:
        epoch = []
        for group in groups:
            order = list(range(len(group)))
            rng.shuffle(order)
            epoch += [[group[i] for i in order[s : s + batch_size]] for s in range(0, len(order), batch_size)]
        rng.shuffle(epoch)
        for examples in epoch:
            yield collate(examples, pad_id)


def zip_streams(**streams: Iterator[dict]) -> Iterator[dict]:
    """Combines named streams into one: each step yields {"forget": batch, "retain": batch, ...}."""
    while True:
        yield {name: next(stream) for name, stream in streams.items()}
