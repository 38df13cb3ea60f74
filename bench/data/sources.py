"""Question/answer records from user data or the hub TOFU benchmark, in the harness's layout.

The harness reads records with TOFU's column names (Maini et al. 2024, "TOFU: A Task of
Fictitious Unlearning for LLMs"): `question`, `answer`, `paraphrased_answer`,
`perturbed_answer` (a list) and optionally `alternate_answer`.  Users bring data in
many shapes (JSON files, JSONL, `datasets` objects, hub ids) and under their own
column names, so :func:`load_records` turns any of them into that layout and fails
with a :class:`DataSourceError` that names the source and the offending key, rather
than a `KeyError` deep inside a metric.

Plain user data has only questions and answers, yet TOFU's truth ratio and forget
quality compare the likelihood of a paraphrased answer with that of perturbed (wrong)
answers.  :func:`derive_alternates` fills the two missing columns by a fixed,
deterministic rule:

Derivation rule:
    * ``paraphrased_answer`` missing (absent, None or blank): set to the answer
      itself, verbatim.
    * ``perturbed_answer`` missing (absent, None or an empty list): set to the
      answers of up to ``n_perturbed`` *other* records of the same split whose answer
      differs from this record's answer, comparing answers after lower-casing and
      collapsing whitespace.  Candidates are ranked closest in form first:
      (1) records whose answer is of the same *kind* come before all others, where
      the kind of the stripped answer is "number" if it parses as a number (digits
      with optional leading sign, thousands commas, decimals and a trailing %),
      else "short" if it has at most 3 words, else "sentence";
      (2) then by the smallest absolute difference in character length of the
      stripped answers; (3) ties are broken by record index, lowest first.
      Walking that ranking, an answer equal (after the same normalisation) to one
      already chosen is skipped, so a record's perturbed answers are distinct.  A
      split with only k distinct answers gives each record at most k - 1.
    * A split with fewer than 2 distinct answers cannot supply perturbations and is
      an error, unless every record already carries ``perturbed_answer``.
    * Fields a record already carries are kept untouched.

TOFU writes its perturbed answers by keeping the template of the true answer and
changing the facts; answers of other questions, matched by kind and length, are the
closest stand-in that needs no language model, so the likelihood comparison stays
about content rather than length or format.

:func:`tofu_splits` maps the hub release `locuslab/TOFU` onto the harness's split names.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import json
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

TOFU_REPO = "locuslab/TOFU"
from bench.core.names import TOFU_FORGET_SPLITS  # noqa: E402,F401  (re-exported)

# TOFU columns carried through besides question/answer; every other key is dropped.
_OPTIONAL_KEYS = ("paraphrased_answer", "perturbed_answer", "alternate_answer", "paraphrased_question")
_FILE_SUFFIXES = (".json", ".jsonl")
_SCALARS = (str, int, float, bool)

# Whole-string number: sign, digits (with or without thousands commas), decimals, percent.
_NUMBER = re.compile(r"[+-]?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+)%?")
_KINDS = ("number", "short", "sentence")


class DataSourceError(ValueError):
    """A data source that cannot be turned into records.

    The message names the source (file path, hub id, "a Python list", "a
    datasets.Dataset", ...), the key involved, and the keys found or values allowed,
    so the fix is visible without a debugger. The parts stay apart, so whoever knows
    which setting named the source can place the error without reading the message.

    Attributes:
        problem: what is wrong, naming the source.
        allowed: what the source may be, where the problem is what it is (a file's
            suffix, a JSON shape, a TOFU split); empty where the setting that named
            the source says that.
        setting: the data setting the problem is about when it is not the one that
            named the source: `question_key` or `answer_key` for a record without
            that key; empty otherwise.
    """

    def __init__(self, problem: str, *, allowed: str = "", setting: str = ""):
        self.problem, self.allowed, self.setting = problem, allowed, setting
        super().__init__(f"{problem}; allowed: {allowed}" if allowed else problem)


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


def load_records(
    source,
    *,
    question_key: str = "question",
    answer_key: str = "answer",
    split: str = "train",
    what: str = "forget",
) -> list[dict]:
    """Reads question/answer records from any supported source, in TOFU's column names.

    Args:
        source: One of: a list of dicts; a `datasets.Dataset`; a `datasets.DatasetDict`
            (`split` is taken); a path (str or Path) to a `.json` file (an array of
            objects, or an object holding exactly one non-empty list of objects), a
            `.jsonl` file, or a directory written by `save_to_disk`; otherwise a
            string that is not an existing path is a hub id, `"owner/name"` or
            `"owner/name:config"` (e.g. `"locuslab/TOFU:forget10"`), loaded with
            `datasets.load_dataset(id, config, split=split)`.  A missing path that
            looks local (a Path object, a name ending in .json/.jsonl, or starting
            with "/", "." or "~") is reported as missing instead of tried on the hub.
        question_key: Column holding the question; renamed to `question`.
        answer_key: Column holding the answer; renamed to `answer`.
        split: Split taken from a DatasetDict or a hub dataset.
        what: Role of the data ("forget", "retain", "holdout", ...), used in messages.

    Returns:
        One dict per record with `question` and `answer` (str), plus
        `paraphrased_answer` (str), `perturbed_answer` (list[str]) and
        `alternate_answer` (str) where the source has them under those names.
        Other keys are dropped.  Numbers are written as text, a single perturbed
        string becomes a one-element list, and None, blank or empty optional values
        count as absent (so :func:`derive_alternates` fills them).

    Raises:
        DataSourceError: The source is missing, unreadable, empty, or a record lacks
            the question/answer key or holds no text there.
    """
    rows, label = _read_source(source, split, what)
    return _normalise(rows, label, question_key=question_key, answer_key=answer_key, what=what)


def _read_source(source, split: str, what: str) -> tuple[list, str]:
    """Raw rows and a label naming the source for messages."""
    if isinstance(source, (list, tuple)):
        return list(source), "a Python list"
    if isinstance(source, (str, Path)):
        return _read_location(source, split, what)
    found = _dataset_rows(source, split, what, where="")
    if found is None:
        raise DataSourceError(
            f"{what} data: unsupported source of type {type(source).__name__}",
            allowed="a list of dicts, a datasets.Dataset or DatasetDict, a .json/.jsonl file, a "
            "save_to_disk directory, or a hub id 'owner/name[:config]'",
        )
    return found


def _dataset_rows(obj, split: str, what: str, where: str) -> tuple[list, str] | None:
    """Rows of a `datasets.Dataset`/`DatasetDict` (None for anything else)."""
    import datasets  # imported here: plain file and list sources do not need it

    if isinstance(obj, datasets.DatasetDict):
        if split not in obj:
            raise DataSourceError(
                f"{what} data: a datasets.DatasetDict{where} has no split {split!r}; "
                f"splits found: {sorted(obj)}"
            )
        return obj[split].to_list(), f"split {split!r} of a datasets.DatasetDict{where}"
    if isinstance(obj, datasets.Dataset):
        return obj.to_list(), f"a datasets.Dataset{where}"
    return None


def _read_location(source: str | Path, split: str, what: str) -> tuple[list, str]:
    text = str(source)
    path = Path(text).expanduser()
    if path.is_dir():
        return _read_saved(path, split, what)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".json":
            return _read_json(path, what), f"file {path}"
        if suffix == ".jsonl":
            return _read_jsonl(path, what), f"file {path}"
        raise DataSourceError(
            f"{what} data: file {path} has suffix {path.suffix!r}",
            allowed=".json, .jsonl, or a directory written by save_to_disk",
        )
    looks_local = (
        isinstance(source, Path)
        or path.suffix.lower() in _FILE_SUFFIXES
        or text.startswith(("/", ".", "~"))
    )
    if looks_local:
        raise DataSourceError(f"{what} data: no such file or directory: {path}")
    return _read_hub(text, split, what)


def _read_saved(path: Path, split: str, what: str) -> tuple[list, str]:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:  # any reason the directory is not a saved dataset
        raise DataSourceError(
            f"{what} data: directory {path} is not a datasets save_to_disk directory "
            f"({_short_reason(exc)})"
        ) from exc
    found = _dataset_rows(loaded, split, what, where=f" saved in {path}")
    if found is None:
        raise DataSourceError(f"{what} data: directory {path} holds a {type(loaded).__name__}")
    return found


def _read_hub(hub_id: str, split: str, what: str) -> tuple[list, str]:
    import datasets

    repo, _, config = hub_id.partition(":")
    label = f"hub dataset {hub_id!r}"
    try:
        loaded = datasets.load_dataset(repo, config or None, split=split)
    except Exception as exc:  # offline, not found, gated, bad config: all one error
        raise DataSourceError(
            f"{what} data: could not load {label} (split {split!r}): {_short_reason(exc)}"
        ) from exc
    return _loaded_rows(loaded, split, what, label), label


def _loaded_rows(loaded, split: str, what: str, label: str) -> list:
    """Rows of whatever a hub loader returned (Dataset, DatasetDict or list)."""
    if isinstance(loaded, (list, tuple)):
        return list(loaded)
    found = _dataset_rows(loaded, split, what, where=f" from {label}")
    if found is None:
        raise DataSourceError(f"{what} data: {label} loaded as a {type(loaded).__name__}")
    return found[0]


def _short_reason(exc: BaseException) -> str:
    """One line: exception type and the first line of its message, truncated."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    first = lines[0] if lines else "no message"
    if len(first) > 160:
        first = first[:157] + "..."
    return f"{type(exc).__name__}: {first}"


def _json_type(value) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def _read_json(path: Path, what: str) -> list:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataSourceError(f"{what} data: file {path} is not valid JSON ({exc})") from exc
    if isinstance(obj, list):
        return obj
    if not isinstance(obj, dict):
        raise DataSourceError(
            f"{what} data: file {path} holds a JSON {_json_type(obj)}",
            allowed="an array of objects, or an object holding exactly one list of objects",
        )
    lists = [k for k, v in obj.items() if isinstance(v, list) and v and all(isinstance(x, dict) for x in v)]
    if len(lists) == 1:
        return obj[lists[0]]
    if not lists:
        raise DataSourceError(
            f"{what} data: file {path} holds a JSON object with no non-empty list of objects "
            f"under any key; keys found: {sorted(obj)}"
        )
    raise DataSourceError(
        f"{what} data: file {path} holds lists of objects under several keys {lists}; "
        "expected exactly one (or a JSON array of objects)"
    )


def _read_jsonl(path: Path, what: str) -> list:
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataSourceError(
                    f"{what} data: file {path} line {number} is not valid JSON ({exc})"
                ) from exc
    return rows


# ---------------------------------------------------------------------------
# Normalisation (shared by load_records and tofu_splits)
# ---------------------------------------------------------------------------


def _normalise(rows: list, label: str, *, question_key: str, answer_key: str, what: str) -> list[dict]:
    """Raw rows -> records with TOFU's column names; see :func:`load_records`."""
    if not rows:
        raise DataSourceError(f"{what} data from {label} holds no records")
    records = []
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise DataSourceError(
                f"{what} data from {label}: record {i} is a {type(row).__name__}, not an object; "
                f"expected keys {question_key!r} and {answer_key!r}"
            )
        where = f"{what} data from {label}: record {i}"
        record = {
            "question": _required_text(row, question_key, "question_key", where),
            "answer": _required_text(row, answer_key, "answer_key", where),
        }
        for key in _OPTIONAL_KEYS:
            value = _optional_value(row.get(key), key, where)
            if value is not None:
                record[key] = value
        records.append(record)
    return records


def _keys_found(row: Mapping) -> list[str]:
    return sorted(str(k) for k in row)


def _required_text(row: Mapping, key: str, role: str, where: str) -> str:
    """The text under `key`; `role` is the setting that names the key (question_key, answer_key)."""
    if key not in row:
        raise DataSourceError(f"{where} has no key {key!r} ({role}); keys found: {_keys_found(row)}",
                              setting=role)
    value = row[key]
    if value is not None and not isinstance(value, _SCALARS):
        raise DataSourceError(
            f"{where} holds a {type(value).__name__} under {key!r} ({role}); expected text"
        )
    text = "" if value is None else str(value)
    if not text.strip():
        raise DataSourceError(f"{where} has no text under {key!r} ({role}): {value!r}")
    return text


def _optional_value(value, key: str, where: str):
    """A TOFU optional column as str / list[str], or None when absent or blank."""
    if value is None:
        return None
    if key == "perturbed_answer":
        items = [value] if isinstance(value, _SCALARS) else value
        if not isinstance(items, (list, tuple)) or not all(x is None or isinstance(x, _SCALARS) for x in items):
            raise DataSourceError(
                f"{where} holds a {type(value).__name__} under {key!r}; expected a list of text"
            )
        texts = [str(x) for x in items if x is not None and str(x).strip()]
        return texts or None
    if not isinstance(value, _SCALARS):
        raise DataSourceError(f"{where} holds a {type(value).__name__} under {key!r}; expected text")
    text = str(value)
    return text if text.strip() else None


# ---------------------------------------------------------------------------
# Deriving paraphrased and perturbed answers
# ---------------------------------------------------------------------------


def _norm(text: str) -> str:
    """Comparison form of an answer: lower-case, whitespace collapsed."""
    return " ".join(text.lower().split())


def _answer_kind(answer: str) -> str:
    """"number", "short" (at most 3 words) or "sentence", from the stripped answer."""
    text = answer.strip()
    if _NUMBER.fullmatch(text):
        return "number"
    return "short" if len(text.split()) <= 3 else "sentence"


def _missing(value) -> bool:
    """None, blank text, or a list holding no non-blank text."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple)):
        return not any(str(x).strip() for x in value if x is not None)
    return False


class _LengthIndex:
    """Record indices bucketed by answer length, read back nearest length first.

    `nearest(L)` yields indices ordered by |length - L|, then by index, without
    sorting the whole split for every record (TOFU's retain set has 3,960 answers).
    """

    def __init__(self, pairs: Iterable[tuple[int, int]]):
        self._buckets: dict[int, list[int]] = defaultdict(list)
        for length, index in pairs:
            self._buckets[length].append(index)
        for bucket in self._buckets.values():
            bucket.sort()
        self._lengths = sorted(self._buckets)

    def nearest(self, length: int) -> Iterator[int]:
        hi = bisect.bisect_left(self._lengths, length)
        lo = hi - 1
        while lo >= 0 or hi < len(self._lengths):
            d_lo = length - self._lengths[lo] if lo >= 0 else math.inf
            d_hi = self._lengths[hi] - length if hi < len(self._lengths) else math.inf
            distance = min(d_lo, d_hi)
            tied = []  # buckets at the same distance below and above: merge by index
            if d_lo == distance:
                tied.append(self._buckets[self._lengths[lo]])
                lo -= 1
            if d_hi == distance:
                tied.append(self._buckets[self._lengths[hi]])
                hi += 1
            yield from heapq.merge(*tied)


def derive_alternates(records: list[dict], n_perturbed: int = 3) -> tuple[list[dict], dict]:
    """Fills missing `paraphrased_answer` and `perturbed_answer` by a fixed rule.

    TOFU's truth ratio and forget quality (Maini et al. 2024) need, per
    question, a paraphrased answer and perturbed (wrong) answers; plain user data has
    neither.  The rule, applied to each record in turn:

    * `paraphrased_answer` missing (absent, None or blank): the answer itself, verbatim.
    * `perturbed_answer` missing (absent, None or an empty list): the answers of up to
      `n_perturbed` other records of this split whose answers differ from this one
      (compared lower-cased with whitespace collapsed), closest in form first:
      (1) same kind before any other kind, where kind of the stripped answer is
      "number" (it parses as a number: optional leading sign, thousands commas,
      decimals, trailing %), else "short" (at most 3 words), else "sentence";
      (2) then smallest absolute difference in character length of the stripped
      answers; (3) ties by record index, lowest first.  An answer equal (after the
      same normalisation) to one already chosen is skipped, so the texts are
      distinct; with k distinct answers in the split a record gets at most k - 1.
    * Fields a record already carries are kept untouched.

    Args:
        records: One split's records (each with an `answer`), e.g. from
            :func:`load_records`.  Not modified.
        n_perturbed: Perturbed answers wanted per record (TOFU's forget sets carry 5,
            its real-author and world-fact sets 3).

    Returns:
        (records, info): copies of the records with both fields present, and
        {"paraphrased_answer": n derived, "perturbed_answer": n derived, "records": n}.

    Raises:
        DataSourceError: Some record needs perturbed answers but the split has fewer
            than 2 distinct answers, or a record has no answer text.
        ValueError: n_perturbed < 1.
    """
    if n_perturbed < 1:
        raise ValueError(f"n_perturbed must be at least 1, got {n_perturbed}")
    out = [{k: list(v) if isinstance(v, list) else v for k, v in r.items()} for r in records]
    for i, r in enumerate(out):
        answer = r.get("answer")
        if not isinstance(answer, str) or not answer.strip():
            raise DataSourceError(
                f"records given to derive_alternates: record {i} has no text under 'answer'; "
                f"keys found: {_keys_found(r)}"
            )
    info = {"paraphrased_answer": 0, "perturbed_answer": 0, "records": len(out)}
    for r in out:
        if _missing(r.get("paraphrased_answer")):
            r["paraphrased_answer"] = r["answer"]
            info["paraphrased_answer"] += 1

    need = [i for i, r in enumerate(out) if _missing(r.get("perturbed_answer"))]
    if not need:
        return out, info
    answers = [r["answer"] for r in out]
    norms = [_norm(a) for a in answers]
    if len(set(norms)) < 2:
        raise DataSourceError(
            f"cannot derive perturbed answers for {len(need)} of {len(out)} records: the split "
            "needs at least 2 records with different answers (found "
            f"{len(set(norms))} distinct), or records carrying 'perturbed_answer'"
        )
    kinds = [_answer_kind(a) for a in answers]
    lengths = [len(a.strip()) for a in answers]
    same_kind = {k: _LengthIndex((lengths[j], j) for j in range(len(out)) if kinds[j] == k) for k in _KINDS}
    other_kind = {k: _LengthIndex((lengths[j], j) for j in range(len(out)) if kinds[j] != k) for k in _KINDS}
    for i in need:
        ranked = itertools.chain(same_kind[kinds[i]].nearest(lengths[i]), other_kind[kinds[i]].nearest(lengths[i]))
        seen, chosen = {norms[i]}, []
        for j in ranked:
            if norms[j] in seen:  # this record, an equal answer, or one already chosen
                continue
            seen.add(norms[j])
            chosen.append(answers[j])
            if len(chosen) == n_perturbed:
                break
        out[i]["perturbed_answer"] = chosen
        info["perturbed_answer"] += 1
    return out, info


def with_plausible_answers(records: list[dict]) -> list[dict]:
    """Records with a `plausible_answer` (a wrong answer that reads like a right one, which AltPO trains
    the model to prefer) where they lack one: the answer of another record, closest in form, chosen by
    `derive_alternates`' rule for perturbed answers. The synthetic generator writes its own; for other
    data this is the nearest thing that needs no model to generate it."""
    if all(not _missing(r.get("plausible_answer")) for r in records):
        return records
    derived, _ = derive_alternates([{"answer": r["answer"]} for r in records], n_perturbed=1)
    return [r if not _missing(r.get("plausible_answer")) else {**r, "plausible_answer": d["perturbed_answer"][0]}
            for r, d in zip(records, derived)]


# ---------------------------------------------------------------------------
# The hub TOFU benchmark
# ---------------------------------------------------------------------------

# Columns of the locuslab/TOFU configs read here (TOFU's own loaders, locuslab/tofu
# data_module.py and config/eval_everything.yaml, read the same names):
#   <forgetNN>_perturbed, retain_perturbed: question, answer, paraphrased_answer (str),
#       perturbed_answer (list of str), paraphrased_question (the paraphrase attack asks it); other
#       extra columns are dropped.
#   retainNN, holdoutNN: question, answer.
#   real_authors_perturbed, world_facts_perturbed: question, answer, perturbed_answer
#       (3 wrong options, locuslab/tofu data/*_perturbed.json); the earlier non-perturbed
#       configs gave the choices as option1..option4 columns instead, one of which is the
#       answer, so those columns are mapped to perturbed_answer when the list is absent.
#       No paraphrase: TOFU scores these with the answer itself as the base answer
#       (base_answer_key "answer"), so paraphrased_answer is set to the answer, as the
#       synthetic generator does for its real-knowledge tables.
_TOFU_OPTION_COLUMNS = ("option1", "option2", "option3", "option4")
_TOFU_REQUIRED = {
    "forget": ("paraphrased_answer", "perturbed_answer"),
    "retain": (),
    "retain_eval": ("paraphrased_answer", "perturbed_answer"),
    "holdout": (),
    "real_authors": ("perturbed_answer",),
    "world_facts": ("perturbed_answer",),
}


def _tofu_configs(forget: str) -> dict[str, str]:
    """Harness split name -> locuslab/TOFU config for one forget split."""
    pct = forget[len("forget"):]  # "01", "05", "10"
    return {
        "forget": f"{forget}_perturbed",
        "retain": f"retain{100 - int(pct):02d}",  # the unlearning retain examples
        "retain_eval": "retain_perturbed",
        "holdout": f"holdout{pct}",
        "real_authors": "real_authors_perturbed",
        "world_facts": "world_facts_perturbed",
    }


def _options_as_perturbed(row: Mapping) -> Mapping:
    """option1..option4 -> perturbed_answer (the options other than the answer)."""
    if not _missing(row.get("perturbed_answer")) or not any(c in row for c in _TOFU_OPTION_COLUMNS):
        return row
    answer = _norm(str(row.get("answer", "")))
    options = [str(row[c]) for c in _TOFU_OPTION_COLUMNS if row.get(c) is not None]
    return {**row, "perturbed_answer": [o for o in options if _norm(o) != answer]}


def tofu_splits(forget: str = "forget10", loader: Callable | None = None) -> dict[str, list[dict]]:
    """The hub TOFU benchmark (Maini et al. 2024) in the harness's split layout.

    Args:
        forget: TOFU forget split, one of TOFU_FORGET_SPLITS.
        loader: Called as `loader(repo, config, split="train")` and returning a
            `datasets.Dataset` (or DatasetDict / list of dicts); defaults to
            `datasets.load_dataset`.  Tests pass a fake.

    Returns:
        Split name -> records:
        `forget` from `<forget>_perturbed`; `retain` from `retain<100 - pct>`
        (retain99/95/90, question and answer only: the examples unlearning methods
        train on); `retain_eval` from `retain_perturbed` (evaluation retain set with
        paraphrase and perturbations); `holdout` from `holdout<pct>`; `real_authors`
        and `world_facts` from their `_perturbed` configs.

    Raises:
        DataSourceError: Unknown forget split, a loader failure (naming
            `locuslab/TOFU:<config>`), or a config lacking an expected column.
    """
    if forget not in TOFU_FORGET_SPLITS:
        raise DataSourceError(
            f"unknown forget split {forget!r} for hub dataset {TOFU_REPO!r}",
            allowed=", ".join(TOFU_FORGET_SPLITS),
        )
    if loader is None:
        import datasets

        loader = datasets.load_dataset
    splits = {}
    for name, config in _tofu_configs(forget).items():
        label = f"hub dataset '{TOFU_REPO}:{config}'"
        try:
            loaded = loader(TOFU_REPO, config, split="train")
        except Exception as exc:  # offline, renamed config, ...: all one error
            raise DataSourceError(f"{name} data: could not load {label}: {_short_reason(exc)}") from exc
        rows = _loaded_rows(loaded, "train", name, label)
        if name in ("real_authors", "world_facts"):
            rows = [_options_as_perturbed(r) if isinstance(r, Mapping) else r for r in rows]
        records = _normalise(rows, label, question_key="question", answer_key="answer", what=name)
        for i, record in enumerate(records):
            for key in _TOFU_REQUIRED[name]:
                if key not in record:
                    raise DataSourceError(
                        f"{name} data from {label}: record {i} has no {key!r}; "
                        f"keys found: {_keys_found(rows[i])}"
                    )
            if name in ("real_authors", "world_facts"):
                record.setdefault("paraphrased_answer", record["answer"])
        splits[name] = records
    return splits
