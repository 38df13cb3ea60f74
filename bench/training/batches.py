"""Endless, seeded streams of training batches.

Batches are homogeneous in kind (question/answer or long raw text) so short answers are not padded
to the length of a biography; each group is walked in a fresh seeded permutation every epoch, and
each step draws its group by weight.
"""

from __future__ import annotations

import random
from typing import Iterator, Sequence

import torch

from bench.core.encoding import Encoded, collate


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
    kept = [(list(g), w) for g, w in zip(groups, weights or [len(g) for g in groups]) if len(g) and w > 0]
    if not kept:
        raise ValueError("batch_stream needs at least one non-empty group of examples with a positive weight")
    for group, idx in _index_batches([len(g) for g, _ in kept], [w for _, w in kept], batch_size, seed):
        yield collate([kept[group][0][i] for i in idx], pad_id)


def aligned_stream(views: dict[str, Sequence[Encoded]], batch_size: int, pad_id: int, seed: int) -> Iterator[dict]:
    """Yields {view: batch} forever, every view taking the same example indices.

    For example the forget questions with their true answers and with their refusals: a DPO step
    needs both answers of the same questions. With one view this draws exactly the batches
    `batch_stream([view], ...)` draws with the same seed. Each batch also carries `index`, its
    examples' positions in the view, so a method can remember per-example quantities.
    """
    sizes = {len(v) for v in views.values()}
    if len(sizes) != 1 or not sizes.pop():
        raise ValueError(f"aligned views must be non-empty and of equal length, got {[len(v) for v in views.values()]}")
    n = len(next(iter(views.values())))
    for _, idx in _index_batches([n], [n], batch_size, seed):
        index = torch.tensor(idx)
        yield {name: {**collate([view[i] for i in idx], pad_id), "index": index} for name, view in views.items()}


def _index_batches(sizes: list[int], weights: list[float], batch_size: int, seed: int) -> Iterator[tuple[int, list[int]]]:
    """(group, example indices) forever: the group drawn by weight, its indices walked epoch by epoch."""
    rng = random.Random(seed)
    cycles = [_epochs(n, batch_size, rng) for n in sizes]
    while True:
        group = rng.choices(range(len(sizes)), weights=weights)[0]
        yield group, next(cycles[group])


def _epochs(n: int, batch_size: int, rng: random.Random) -> Iterator[list[int]]:
    """Index batches of a group of n examples, epoch after epoch, in a fresh seeded order each epoch."""
    while True:
        order = list(range(n))
        rng.shuffle(order)
        for s in range(0, n, batch_size):
            yield order[s : s + batch_size]


def merge_streams(*streams: Iterator[dict]) -> Iterator[dict]:
    """Combines streams of named batches into one: each step yields {"forget": ..., "retain": ..., ...}."""
    while True:
        merged: dict = {}
        for stream in streams:
            merged.update(next(stream))
        yield merged
