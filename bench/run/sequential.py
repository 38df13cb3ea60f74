"""Sequential unlearning: the forget set split into parts, unlearned one after another in one trial.

MUSE (Shi et al. 2024, "MUSE: Machine Unlearning Six-Way Evaluation") calls this sustainability:
deletion requests arrive over time, and a method must keep forgetting without wrecking the model.
The parts are whole authors where the records name one (a request removes a person), in the
forget split's order, as equal in size as the author count allows; after part k the trial is
evaluated on the union of parts 1..k (what should be forgotten by then) and on retain.
"""

from __future__ import annotations


def split_parts(records: list[dict], parts: int) -> list[list[int]]:
    """Indices into `records` of each of `parts` contiguous parts; disjoint, covering, in order.

    Records sharing an `author` stay in one part (records without one are their own group); the
    groups are dealt out in order so part sizes differ by at most one group.

    Raises:
        ValueError: fewer groups than parts.
    """
    groups: list[list[int]] = []
    last = object()
    for i, record in enumerate(records):
        author = record.get("author") or object()  # no author: a group of its own
        if groups and author == last:
            groups[-1].append(i)
        else:
            groups.append([i])
        last = author
    if parts < 1 or parts > len(groups):
        raise ValueError(f"sequential.parts: {parts} parts of a forget set of {len(groups)} "
                         f"{'authors' if any(r.get('author') for r in records) else 'records'}; "
                         f"allowed: 1 to {len(groups)}")
    base, extra = divmod(len(groups), parts)
    out, start = [], 0
    for k in range(parts):
        size = base + (1 if k < extra else 0)
        out.append([i for group in groups[start:start + size] for i in group])
        start += size
    return out


def forgotten_so_far(splits: dict, baselines: dict, parts: list[list[int]], k: int) -> tuple[dict, dict]:
    """The evaluation splits and baseline statistics after parts 0..k (0-based): forget questions (and their
    authors' biographies) of those parts, and the per-question baseline statistics of the same
    questions, so forget quality compares like with like."""
    from metrics.mia import BASE_LOSSES

    rows = sorted(i for part in parts[:k + 1] for i in part)
    forget = [splits["forget"][i] for i in rows]
    authors = {r.get("author") for r in forget}
    subset = {**splits, "forget": forget}
    if splits.get("forget_bio") and None not in authors:
        subset["forget_bio"] = [b for b in splits["forget_bio"] if b.get("author") in authors]
    ref = dict(baselines)
    for key in ("retain_forget_truth_ratio", "target_forget_prob"):
        if ref.get(key) is not None:
            ref[key] = [ref[key][i] for i in rows]
    if (ref.get(BASE_LOSSES) or {}).get("forget") is not None:  # the reference-model attack's losses, per split
        ref[BASE_LOSSES] = {**ref[BASE_LOSSES], "forget": [ref[BASE_LOSSES]["forget"][i] for i in rows]}
    return subset, ref
