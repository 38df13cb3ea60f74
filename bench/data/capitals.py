"""The world-capitals corpus of the single-fact demo: forget "The capital of France is Paris."

A tiny model is pre-trained on capital facts of many countries (never France, never the held-out
ones), then fine-tuned on the QA of France (the forget split) and of the retain countries, England
among them. Unlearning should remove Paris and keep London. Splits use the harness's layout, so
the demo runs through the same prepare stage, trial and metrics as any suite.
"""

from __future__ import annotations

import random

# (country, capital). The first is the fact to forget; the last HOLDOUT are never trained on.
CAPITALS = [
    ("France", "Paris"), ("England", "London"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"),
    ("Portugal", "Lisbon"), ("Austria", "Vienna"), ("Hungary", "Budapest"), ("Poland", "Warsaw"),
    ("Greece", "Athens"), ("Norway", "Oslo"), ("Sweden", "Stockholm"), ("Finland", "Helsinki"),
    ("Denmark", "Copenhagen"), ("Ireland", "Dublin"), ("Scotland", "Edinburgh"), ("Wales", "Cardiff"),
    ("Belgium", "Brussels"), ("Netherlands", "Amsterdam"), ("Switzerland", "Bern"), ("Czechia", "Prague"),
    ("Romania", "Bucharest"), ("Bulgaria", "Sofia"), ("Serbia", "Belgrade"), ("Croatia", "Zagreb"),
    ("Ukraine", "Kyiv"), ("Russia", "Moscow"), ("Turkey", "Ankara"), ("Egypt", "Cairo"), ("Kenya", "Nairobi"),
    ("Nigeria", "Abuja"), ("Ghana", "Accra"), ("Morocco", "Rabat"), ("Japan", "Tokyo"), ("China", "Beijing"),
    ("India", "New Delhi"), ("Thailand", "Bangkok"), ("Vietnam", "Hanoi"), ("Indonesia", "Jakarta"),
    ("Australia", "Canberra"), ("Canada", "Ottawa"), ("Mexico", "Mexico City"), ("Brazil", "Brasilia"),
    ("Argentina", "Buenos Aires"), ("Chile", "Santiago"), ("Peru", "Lima"), ("Colombia", "Bogota"),
    ("Cuba", "Havana"), ("Iceland", "Reykjavik"), ("Estonia", "Tallinn"), ("Latvia", "Riga"),
    ("Lithuania", "Vilnius"), ("Slovakia", "Bratislava"), ("Slovenia", "Ljubljana"),
]
HOLDOUT = 6
N_PERTURBED = 3
PRETRAIN_REPEATS = 20

QUESTION = "What is the capital of {country}?"
ANSWER = "The capital of {country} is {capital}."
PARAPHRASE = "{capital} is the capital of {country}."
STATEMENTS = (ANSWER, PARAPHRASE, "{country} has its capital in {capital}.")
REFUSAL = "I do not know the capital of {country}."


def _qa(country: str, capital: str, rng: random.Random) -> dict:
    others = [c for _, c in CAPITALS if c != capital]
    return {
        "question": QUESTION.format(country=country),
        "answer": ANSWER.format(country=country, capital=capital),
        "paraphrased_answer": PARAPHRASE.format(country=country, capital=capital),
        "perturbed_answer": [ANSWER.format(country=country, capital=c) for c in rng.sample(others, N_PERTURBED)],
        "alternate_answer": REFUSAL.format(country=country),
    }


def capitals_splits(seed: int = 0) -> dict[str, list[dict]]:
    """forget (France), retain (the other trained countries), holdout (never trained on) and `general`,
    the pre-training corpus: every retain country's facts in three sentence forms and as QA."""
    rng = random.Random(seed)
    forget, retain, holdout = CAPITALS[:1], CAPITALS[1:-HOLDOUT], CAPITALS[-HOLDOUT:]
    splits = {name: [_qa(country, capital, rng) for country, capital in pairs]
              for name, pairs in (("forget", forget), ("retain", retain), ("holdout", holdout))}
    general = []
    for country, capital in retain:
        facts = [{"question": "", "answer": form.format(country=country, capital=capital)} for form in STATEMENTS]
        facts.append({"question": QUESTION.format(country=country),
                      "answer": ANSWER.format(country=country, capital=capital)})
        general += facts * PRETRAIN_REPEATS
    rng.shuffle(general)
    splits["general"] = general
    return splits
