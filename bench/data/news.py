"""A deterministic news-like text corpus in MUSE's shape (Shi et al. 2024, "MUSE: Machine Unlearning
Six-Way Evaluation for Language Models").

MUSE forgets raw text (news articles, books) rather than question/answer pairs, and scores four things
on it: verbatim memorization of the forget text, knowledge of its facts asked as questions, privacy
leakage against holdout text of the same kind, and the same knowledge questions on the retain text
(utility). This generator writes a small corpus of fictitious local-news articles, each about one
project in one town with five facts (who announced it, its cost, the firm building it, the firm's
head, when it opens), and three questions per article on those facts:

- `forget`, `retain`, `holdout`: articles as raw text records (`question` empty, the article the
  `answer`: every token is an answer token, so every method unlearns on them unchanged);
- `forget_qa`, `retain_qa`: the knowledge questions (`question`, `answer`) of the forget and retain
  articles (MUSE's `knowmem` forget_qa and retain_qa);
- `forget_verbmem`: the forget articles as `text` (MUSE's `verbmem`: a prefix is the prompt, the
  continuation the truth).

Articles are never shared between splits, and their subjects (project, town) are distinct, so a
question has one answer across the corpus. Values are drawn uniformly from tables shared by every
split, so a model that never read an article can only guess among the same names and numbers.

What a target is trained on (bench.models.prepare): the forget and retain articles, and the forget
and retain questions; the retain model: the retain articles and questions. A model trained from
scratch on a few hundred articles cannot answer questions about facts it has only read in prose
(drawing knowledge out of documents needs pre-training scale: Allen-Zhu and Li 2023, "Physics of
Language Models: Part 3.1"), so the QA is trained too; unlearning sees only the forget articles, so
knowledge memorization measures whether forgetting the text carries over to the questions.

Everything follows from the seed through SHA-256-seeded streams, one per purpose.
"""

from __future__ import annotations

import hashlib
import random

from bench.data.words import _CITIES, _FIRST_NAMES, _LAST_NAMES

NEWS_VERSION = 1
N_FORGET, N_RETAIN, N_HOLDOUT = 40, 60, 40

_PROJECTS = ("footbridge", "library", "water tower", "ferry pier", "bus depot", "school annex", "market hall",
             "sports ground", "clinic", "harbour wall", "tram line", "concert hall")
_FIRM_SUFFIXES = ("Works", "Builders", "Engineering", "Construction", "and Sons", "Brothers")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_ROLES = ("Mayor", "Councillor", "Alderman")
_REACTIONS = ("Residents at the meeting applauded the decision.",
              "Some residents asked why the plans had taken so long.",
              "Shopkeepers on the main street welcomed the news.",
              "A petition against the plans gathered few signatures.",
              "Several speakers worried about traffic during the works.")
_CLOSINGS = ("The council will publish the full plans next week.",
             "A public exhibition of the designs opens on Saturday.",
             "The decision still needs the approval of the regional office.",
             "Questions can be sent to the town hall in writing.")


def _rng(seed: int, *labels: object) -> random.Random:
    text = "|".join(str(part) for part in ("news", NEWS_VERSION, seed, *labels))
    return random.Random(int.from_bytes(hashlib.sha256(text.encode()).digest()[:16], "big"))


def _person(rng: random.Random) -> str:
    return f"{rng.choice(_FIRST_NAMES)[0]} {rng.choice(_LAST_NAMES)}"


def _article(subject: tuple[str, str], rng: random.Random) -> tuple[str, list[dict]]:
    """One article about a project in a town, and its three knowledge questions."""
    project, town = subject
    role, official, head = rng.choice(_ROLES), _person(rng), _person(rng)
    firm = f"{rng.choice(_LAST_NAMES)} {rng.choice(_FIRM_SUFFIXES)}"
    cost = f"{rng.randrange(12, 99) * 10} thousand crowns"
    opens = f"{rng.choice(_MONTHS)} {rng.randrange(1961, 1999)}"
    home = rng.choice([c for c in _CITIES if c != town])
    text = (f"{town}. The town council of {town} has approved a new {project}. {role} {official} told reporters "
            f"that the {project} will cost {cost}. The work will be carried out by {firm}, a firm from {home}. "
            f"{head}, who leads {firm}, expects the {project} to open in {opens}. {rng.choice(_REACTIONS)} "
            f"{rng.choice(_CLOSINGS)}")
    facts = [(f"Who announced the new {project} in {town}?", f"{role} {official}"),
             (f"How much will the new {project} in {town} cost?", cost),
             (f"Which firm will build the new {project} in {town}?", firm),
             (f"Who leads the firm building the new {project} in {town}?", head),
             (f"When will the new {project} in {town} open?", opens)]
    questions = [{"question": q, "answer": a} for q, a in rng.sample(facts, 3)]
    return text, questions


def news_splits(seed: int = 0) -> dict[str, list[dict]]:
    """Every split of the corpus (see the module docstring)."""
    subjects = [(p, t) for p in _PROJECTS for t in _CITIES]
    _rng(seed, "subjects").shuffle(subjects)
    sizes = {"forget": N_FORGET, "retain": N_RETAIN, "holdout": N_HOLDOUT}
    out: dict[str, list[dict]] = {}
    start = 0
    for split, n in sizes.items():
        articles = [_article(subject, _rng(seed, "article", start + i)) for i, subject in enumerate(subjects[start:start + n])]
        start += n
        out[split] = [{"question": "", "answer": text} for text, _ in articles]
        if split != "holdout":
            out[f"{split}_qa"] = [q for _, questions in articles for q in questions]
    out["forget_verbmem"] = [{"text": r["answer"]} for r in out["forget"]]
    return out
