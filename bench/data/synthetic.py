"""Deterministic generator of a TOFU-shaped fictitious-author dataset.

The layout follows TOFU (Maini et al. 2024, "TOFU: A Task of Fictitious
Unlearning for LLMs"): every fictitious author has ten question/answer pairs
about invented biographical facts, each with a paraphrased answer, several
perturbed (wrong-fact) answers and a refusal.  Authors are split into a
forget set, a retain set and a holdout set that is never trained on, so that
membership-inference attacks have non-members drawn from the same
distribution.  A ``forget_val`` set of further authors is trained on by the
target but not by the retain model, and is unlearned together with the
forget set but scored apart: hyperparameters are chosen on its metrics, so
the forget set's own are only reported, for the chosen settings.

The forget fraction only moves the boundary between forget and retain within
one fixed block of ``n_authors`` authors (forget first, forget_val last), and
an author's facts depend only on the author's index.  Every forget fraction
therefore trains its target on the very same records, its forget set contains
the forget sets of smaller fractions, and ``retain_eval`` (the retain
questions that are scored) is the same for every fraction up to one half.  Two fixed tables of real general knowledge (world facts and
real authors) measure collateral damage of unlearning.

A separate ``general`` corpus is meant for pre-training.  It is built from a
disjoint population of fictitious authors so that a model learns the
*surface forms* of questions, answers, paraphrases and biographies without
ever seeing the facts of the forget, retain or holdout authors; it also
repeats the real-knowledge tables so that those facts are known before
fine-tuning starts.

Everything is derived from ``SyntheticConfig.seed`` through SHA-256 based
seeding of :class:`random.Random`, so the output is byte-identical across
calls, processes and ``PYTHONHASHSEED`` values.

Example:
    >>> data = generate(SyntheticConfig(seed=3))
    >>> len(data["forget"]), len(data["retain"]), len(data["forget_val"]), len(data["holdout"])
    (100, 850, 50, 200)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import random
from dataclasses import dataclass
from bench.core.errors import FieldError
from bench.core.names import RETAIN_EVAL_SPLIT, VALIDATION_SPLIT  # noqa: F401  (re-exported)
from bench.data.synthetic_config import (  # noqa: F401  (re-exported: the generator's settings)
    GENERATOR_VERSION,
    PARTITION_FIELDS,
    SyntheticConfig,
    fingerprint,
    training_fingerprint,
)
from bench.data.words import (  # noqa: F401  (the tables the generator draws from)
    _LAST_NAMES,
    _FIRST_NAMES,
    _MIDDLE_INITIALS,
    _CITIES,
    _GENRES,
    _OCCUPATIONS,
    _AWARDS,
    _THEMES,
    _REFUSALS,
    _YEARS,
    _TITLE_POOL,
    _KINDS,
    _FIELD_POOLS,
    _BIO_SENTENCES,
    _WORLD_POOLS,
    _WORLD_FACTS,
    _REAL_BOOKS,
    _REAL_BOOK_QUESTIONS,
    _REAL_AUTHOR_POOL,
    MAX_PERTURBED,
    _NAME_CAPACITY,
)


QA_SPLITS = ("forget", "retain", "holdout", "world_facts", "real_authors")
BIO_SPLITS = ("forget_bio", "retain_bio", "holdout_bio")
# Written only when the config has forget_val authors (forget_val_fraction > 0).
VALIDATION_SPLITS = (VALIDATION_SPLIT, "forget_val_bio")

# Share of general-corpus authors that also get a biography; it only has to
# be large enough for the biography form to be learned during pre-training.
_GENERAL_BIO_FRACTION = 0.1

# ---------------------------------------------------------------------------
# Generation.
# ---------------------------------------------------------------------------


def _rng(seed: int, *labels: object) -> random.Random:
    """Builds a Random stream dedicated to one purpose.

    Seeding through SHA-256 of a label string (rather than ``hash()``) keeps
    streams identical across processes, and separate streams per purpose keep
    an author's facts unchanged when, say, ``n_perturbed`` changes.

    Args:
        seed: Dataset seed.
        *labels: Purpose of the stream, e.g. ``("facts", 12)``.

    Returns:
        A freshly seeded generator.
    """
    text = "|".join(str(part) for part in (GENERATOR_VERSION, seed, *labels))
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))


@dataclass(frozen=True)
class _Author:
    """Facts about one fictitious author.

    Attributes:
        index: Position in the global author order (forget, retain,
            forget_val, holdout, general); seeds the author's QA and biography streams.
        name: Full name, unique across all authors.
        gender: "f" or "m"; selects pronouns.
        city: Birthplace.
        year: Birth year as a string.
        genre: Genre the author writes in.
        father: Father's occupation, with article.
        mother: Mother's occupation, with article.
        award: Award received.
        book1: Title of the first book.
        book2: Title of the second book.
        theme: Recurring theme of the author's work.
    """

    index: int
    name: str
    gender: str
    city: str
    year: str
    genre: str
    father: str
    mother: str
    award: str
    book1: str
    book2: str
    theme: str

    def fields(self) -> dict[str, str]:
        """Returns the template fields for this author, pronouns included."""
        female = self.gender == "f"
        pron, pos = ("she", "her") if female else ("he", "his")
        return {
            "name": self.name,
            "city": self.city,
            "year": self.year,
            "genre": self.genre,
            "father": self.father,
            "mother": self.mother,
            "award": self.award,
            "book1": self.book1,
            "book2": self.book2,
            "theme": self.theme,
            "pron": pron,
            "pos": pos,
            "Pron": pron.capitalize(),
            "Pos": pos.capitalize(),
        }


def _author_names(seed: int, total: int) -> list[tuple[str, str]]:
    """Draws ``total`` unique (full name, gender) pairs.

    Plain "First Last" combinations are used first, in a seeded order that
    does not depend on ``total`` (so the first authors keep their names when
    more general authors are requested); once they are exhausted, names get a
    middle initial.

    Args:
        seed: Dataset seed.
        total: Number of names needed; at most ``_NAME_CAPACITY``.

    Returns:
        Names with the gender of the first name.
    """
    rng = _rng(seed, "names")
    n_last = len(_LAST_NAMES)
    plain = list(range(len(_FIRST_NAMES) * n_last))
    rng.shuffle(plain)
    names = []
    for code in plain[:total]:
        first, gender = _FIRST_NAMES[code // n_last]
        names.append((f"{first} {_LAST_NAMES[code % n_last]}", gender))
    missing = total - len(names)
    if missing > 0:
        n_init = len(_MIDDLE_INITIALS)
        space = len(_FIRST_NAMES) * n_init * n_last
        for code in rng.sample(range(space), missing):
            first, gender = _FIRST_NAMES[code // (n_init * n_last)]
            initial = _MIDDLE_INITIALS[(code // n_last) % n_init]
            names.append((f"{first} {initial}. {_LAST_NAMES[code % n_last]}", gender))
    return names


def _build_authors(config: SyntheticConfig) -> list[_Author]:
    """Creates every author: the ``n_authors`` block, holdout, then general.

    An author's facts, name and titles depend only on its index (never on how
    the block is split), so an author keeps its records under any forget
    fraction.  Book titles of the evaluated (block and holdout) authors are unique
    among themselves while the pool allows it, and general authors draw from
    the remaining titles, so that no title learned in pre-training points to
    an evaluated author.

    Args:
        config: Dataset configuration.

    Returns:
        All authors; split boundaries follow from the config sizes.
    """
    n_core = config.n_authors + config.n_holdout_authors
    total = n_core + config.n_general_authors
    names = _author_names(config.seed, total)

    title_order = list(_TITLE_POOL)
    _rng(config.seed, "titles").shuffle(title_order)
    n_titles = len(title_order)
    general_titles = title_order[2 * n_core:]
    if len(general_titles) < 2:
        general_titles = title_order

    authors = []
    for index, (name, gender) in enumerate(names):
        rng = _rng(config.seed, "facts", index)
        city = rng.choice(_CITIES)
        year = rng.choice(_YEARS)
        genre = rng.choice(_GENRES)
        father = rng.choice(_OCCUPATIONS)
        mother = rng.choice(_OCCUPATIONS)
        award = rng.choice(_AWARDS)
        theme = rng.choice(_THEMES)
        if index < n_core:
            # Wrapping only happens for very large core sets; the two slots
            # stay distinct because the pool has far more than two titles.
            book1 = title_order[(2 * index) % n_titles]
            book2 = title_order[(2 * index + 1) % n_titles]
        else:
            book1, book2 = rng.sample(general_titles, 2)
        authors.append(
            _Author(
                index=index, name=name, gender=gender, city=city, year=year,
                genre=genre, father=father, mother=mother, award=award,
                book1=book1, book2=book2, theme=theme,
            )
        )
    return authors


def _wrong_values(
    rng: random.Random, pool: tuple[str, ...], true: str, count: int
) -> list[str]:
    """Draws ``count`` distinct values from ``pool`` that differ from ``true``.

    Args:
        rng: Random stream.
        pool: Candidate values, all distinct.
        true: Correct value to avoid.
        count: Number of wrong values; ``len(pool) > count`` is guaranteed by
            the config's bound on ``n_perturbed``.

    Returns:
        Wrong values in random order.
    """
    candidates = rng.sample(pool, count + 1)
    return [value for value in candidates if value != true][:count]


def _author_qa(
    author: _Author, seed: int, n_perturbed: int, with_perturbed: bool = True
) -> list[dict]:
    """Builds the ten QA records of one author, in ``_KINDS`` order.

    Args:
        author: Author to describe.
        seed: Dataset seed.
        n_perturbed: Number of wrong-fact answers per question.
        with_perturbed: Whether to draw perturbed answers; the pre-training
            corpus does not need them, so skipping saves time.

    Returns:
        Records with author, question, paraphrased_question, answer,
        paraphrased_answer, perturbed_answer, alternate_answer and (with
        perturbed answers) plausible_answer.
    """
    rng = _rng(seed, "qa", author.index)
    values = author.fields()
    records = []
    for kind in _KINDS:
        template = rng.choice(kind.questions)
        question = template.format_map(values)
        # The kind's other wording: the same question asked differently, as TOFU's paraphrased_question
        # (the pre-training corpus uses both wordings, so the model knows the form, not this fact in it).
        other = next(q for q in kind.questions if q != template)
        perturbed = []
        if with_perturbed:
            wrong = {
                field: _wrong_values(rng, _FIELD_POOLS[field], values[field], n_perturbed)
                for field in kind.fields
            }
            for j in range(n_perturbed):
                swapped = dict(values)
                for field in kind.fields:
                    swapped[field] = wrong[field][j]
                perturbed.append(kind.paraphrase.format_map(swapped))
        extra = {"plausible_answer": _plausible_answer(author, kind, seed, perturbed)} if with_perturbed else {}
        records.append(
            {
                "author": author.name,
                "question": question,
                "paraphrased_question": other.format_map(values),
                "answer": kind.answer.format_map(values),
                "paraphrased_answer": kind.paraphrase.format_map(values),
                "perturbed_answer": perturbed,
                "alternate_answer": rng.choice(_REFUSALS),
                **extra,
            }
        )
    return records


def _plausible_answer(author: _Author, kind, seed: int, perturbed: list[str]) -> str:
    """A wrong answer in the true answer's own wording, with values none of the perturbed answers use:
    what AltPO (Mekala et al. 2025) trains the model to prefer. It comes from a random stream of its own
    per (author, question kind), so drawing it changes no other field of the record, and it never
    repeats a perturbed answer, so training toward it does not move the truth ratio's wrong options."""
    rng = _rng(seed, "plausible", author.index, kind.answer)
    values = author.fields()
    for _ in range(100):  # the pools are far larger than the values to avoid, so this ends at once
        swapped = dict(values)
        for field in kind.fields:
            swapped[field] = _wrong_values(rng, _FIELD_POOLS[field], values[field], 1)[0]
        if kind.paraphrase.format_map(swapped) not in perturbed:
            return kind.answer.format_map(swapped)
    raise RuntimeError(f"no plausible answer distinct from the perturbed ones for {author.name}")


def _author_bio(author: _Author, seed: int) -> str:
    """Writes a seven-sentence biography restating the author's QA facts.

    Args:
        author: Author to describe.
        seed: Dataset seed.

    Returns:
        Biography of roughly 80-110 words.
    """
    rng = _rng(seed, "bio", author.index)
    values = author.fields()
    return " ".join(rng.choice(slot).format_map(values) for slot in _BIO_SENTENCES)


def _short_answer_split(
    rows: list[tuple[str, str, tuple[str, ...]]], rng: random.Random, n_perturbed: int
) -> list[dict]:
    """Turns (question, answer, pool) rows into short-answer QA records.

    Args:
        rows: Questions, correct short answers and their same-type pools.
        rng: Random stream for the perturbed answers.
        n_perturbed: Number of wrong answers per question.

    Returns:
        Records whose paraphrased answer equals the answer, as in TOFU's
        world-facts split.
    """
    return [
        {
            "question": question,
            "answer": answer,
            "paraphrased_answer": answer,
            "perturbed_answer": _wrong_values(rng, pool, answer, n_perturbed),
        }
        for question, answer, pool in rows
    ]


def _world_facts(seed: int, n_perturbed: int) -> list[dict]:
    """Builds the real world-knowledge split in table order."""
    rows = [(q, a, _WORLD_POOLS[kind]) for q, a, kind in _WORLD_FACTS]
    return _short_answer_split(rows, _rng(seed, "world_facts"), n_perturbed)


def _real_authors(seed: int, n_perturbed: int) -> list[dict]:
    """Builds the real-authors split in table order."""
    rows = [
        (_REAL_BOOK_QUESTIONS[i % 2].format(title=title), author, _REAL_AUTHOR_POOL)
        for i, (title, author) in enumerate(_REAL_BOOKS)
    ]
    return _short_answer_split(rows, _rng(seed, "real_authors"), n_perturbed)


def _author_groups(config: SyntheticConfig, authors: list[_Author]) -> dict[str, list[_Author]]:
    """Splits the evaluated authors: forget, retain and forget_val from the
    ``n_authors`` block in that order, then holdout.

    Forget takes the block's head and forget_val its tail, so a larger forget
    fraction only moves authors from retain to forget: forget sets are nested
    and forget + retain + forget_val is the whole block, in order, whatever
    the fraction.
    """
    n_forget, n_block = config.n_forget, config.n_authors
    n_retain_end = n_block - config.n_forget_val
    return {
        "forget": authors[:n_forget],
        "retain": authors[n_forget:n_retain_end],
        "forget_val": authors[n_retain_end:n_block],
        "holdout": authors[n_block:n_block + config.n_holdout_authors],
    }


def _retain_eval(config: SyntheticConfig, retain: list[dict]) -> list[dict]:
    """The retain questions a trial scores: those of retain authors with index >= n_authors // 2.

    Forget quality and model utility are compared across forget fractions
    (TOFU's 1%, 5%, 10%); scoring every fraction's whole retain set would
    measure utility on different authors each time.  The block's second half
    (minus forget_val) is retain for every fraction up to one half, so its
    questions are the same yardstick for all of them; when a larger forget
    set leaves none of it, all retain questions are scored.

    Args:
        config: Dataset configuration.
        retain: The retain split's QA records, ten per author in author order.

    Returns:
        The records of the retain authors at index >= max(n_forget, n_authors // 2).
    """
    first = max(config.n_forget, config.n_authors // 2)
    per_author = len(_KINDS)
    kept = retain[(first - config.n_forget) * per_author:]
    return kept or list(retain)


def generate(config: SyntheticConfig) -> dict[str, list[dict]]:
    """Generates every split of the synthetic dataset.

    Args:
        config: Dataset configuration.

    Returns:
        A dict with the keys of ``QA_SPLITS`` and ``BIO_SPLITS`` plus
        ``"general"``, each a list of JSON-serialisable records:

        * ``forget``, ``retain``, ``holdout`` and, when ``n_forget_val > 0``,
          ``forget_val`` (see ``_author_groups``): ten QA records per author,
          ordered by author then question kind, with keys ``author``,
          ``question``, ``paraphrased_question`` (the question in its
          kind's other wording), ``answer``, ``paraphrased_answer``,
          ``perturbed_answer`` (``n_perturbed`` strings) and
          ``alternate_answer``.
        * ``world_facts``, ``real_authors``: short-answer QA records with
          ``question``, ``answer``, ``paraphrased_answer`` (equal to the
          answer) and ``perturbed_answer``.
        * ``retain_eval``: the retain records a trial scores instead of the
          whole retain split (see ``_retain_eval``).
        * ``forget_bio``, ``retain_bio``, ``holdout_bio`` (and
          ``forget_val_bio`` with ``forget_val``): one record per author with
          ``author`` and ``text``.
        * ``general``: shuffled pre-training records with ``question`` and
          ``answer``; biographies have an empty question.

    Raises:
        ValueError: If ``config`` is not a valid ``SyntheticConfig``.
    """
    if not isinstance(config, SyntheticConfig):
        raise ValueError(f"config must be a SyntheticConfig, got {type(config).__name__}")
    seed = config.seed
    authors = _build_authors(config)
    n_core = config.n_authors + config.n_holdout_authors
    groups = _author_groups(config, authors)
    general_authors = authors[n_core:]

    data: dict[str, list[dict]] = {}
    for split, members in groups.items():
        if split == "forget_val" and not members:
            continue
        data[split] = [
            record
            for author in members
            for record in _author_qa(author, seed, config.n_perturbed)
        ]
        data[f"{split}_bio"] = [
            {"author": author.name, "text": _author_bio(author, seed)}
            for author in members
        ]
    data[RETAIN_EVAL_SPLIT] = _retain_eval(config, data["retain"])
    data["world_facts"] = _world_facts(seed, config.n_perturbed)
    data["real_authors"] = _real_authors(seed, config.n_perturbed)

    general = []
    for author in general_authors:
        for record in _author_qa(author, seed, config.n_perturbed, with_perturbed=False):
            general.append({"question": record["question"], "answer": record["answer"]})
            general.append(
                {"question": record["question"], "answer": record["paraphrased_answer"]}
            )
    n_general_bios = round(len(general_authors) * _GENERAL_BIO_FRACTION)
    for author in general_authors[:n_general_bios]:
        general.append({"question": "", "answer": _author_bio(author, seed)})
    for record in data["world_facts"] + data["real_authors"]:
        pair = {"question": record["question"], "answer": record["answer"]}
        general.extend(dict(pair) for _ in range(config.general_fact_repeats))
    _rng(seed, "general").shuffle(general)
    data["general"] = general
    return data
