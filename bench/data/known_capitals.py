"""World capitals a pretrained model already knows: the shape of RWKU, on SmolLM2-135M-Instruct.

RWKU (Jin et al. 2024, "RWKU: Benchmarking Real-World Knowledge Unlearning for Large Language Models")
asks a model to forget facts it learned in pre-training, so no model exists that never saw them: there
is no retain model, and what is measured is whether the model still answers the forget questions,
whether it still answers their neighbours (facts of the same kind that must survive) and whether it
is still fluent and knowledgeable elsewhere.

Every fact below is one SmolLM2-135M-Instruct answers correctly through its chat template (checked
greedily, 24 new tokens: "What is the capital of Japan?" -> "The capital of Japan is Tokyo."); the
countries it gets wrong (Italy, Spain, Turkey, Brazil, ...) are left out. Splits:
- `forget`: ten capitals to unlearn;
- `retain`: other known capitals, what methods with a retain term train on;
- `retain_eval`: the neighbours, known capitals never used in unlearning, evaluated as `retain`;
- `holdout`: known capitals used nowhere, the comparison set of membership inference;
- `world_facts`: unrelated general-knowledge questions the model answers, with wrong options
  (model utility's general part);
- `general_text`: a few paragraphs of plain prose, whose perplexity measures fluency.
Every capital question carries its `keyword` (the capital), what a correct answer must contain.
"""

from __future__ import annotations

import random

FORGET = [("France", "Paris"), ("Japan", "Tokyo"), ("Germany", "Berlin"), ("China", "Beijing"),
          ("Russia", "Moscow"), ("Egypt", "Cairo"), ("Greece", "Athens"), ("India", "New Delhi"),
          ("Australia", "Canberra"), ("Kenya", "Nairobi")]
RETAIN = [("England", "London"), ("Austria", "Vienna"), ("Hungary", "Budapest"), ("Poland", "Warsaw"),
          ("Norway", "Oslo"), ("Sweden", "Stockholm"), ("Czechia", "Prague"), ("Romania", "Bucharest"),
          ("Nigeria", "Abuja"), ("Thailand", "Bangkok"), ("Chile", "Santiago"), ("Cuba", "Havana"),
          ("South Korea", "Seoul"), ("Iraq", "Baghdad"), ("New Zealand", "Wellington"), ("Nepal", "Kathmandu")]
NEIGHBOURS = [("Bulgaria", "Sofia"), ("Croatia", "Zagreb"), ("Ghana", "Accra"), ("Indonesia", "Jakarta"),
              ("Peru", "Lima"), ("Latvia", "Riga"), ("Lithuania", "Vilnius"), ("Pakistan", "Islamabad"),
              ("Saudi Arabia", "Riyadh"), ("Malaysia", "Kuala Lumpur"), ("Ethiopia", "Addis Ababa"),
              ("Bangladesh", "Dhaka"), ("Uganda", "Kampala"), ("Azerbaijan", "Baku"), ("Kuwait", "Kuwait City"),
              ("Tanzania", "Dodoma")]
HOLDOUT = [("Slovenia", "Ljubljana"), ("Libya", "Tripoli"), ("Sudan", "Khartoum"), ("Senegal", "Dakar"),
           ("Syria", "Damascus"), ("Lebanon", "Beirut"), ("Sri Lanka", "Colombo"), ("Zambia", "Lusaka")]

QUESTION = "What is the capital of {country}?"
ANSWER = "The capital of {country} is {capital}."
PARAPHRASE = "{capital} is the capital of {country}."
REFUSAL = "I do not know the capital of {country}."
N_PERTURBED = 3

# (question, answer as the model phrases it, three wrong answers in the same words)
WORLD_FACTS = [
    ("What is the chemical symbol for water?", "The chemical symbol for water is {}.", "H2O", ("CO2", "NaCl", "O2")),
    ("What is the largest ocean on Earth?", "The largest ocean on Earth is the {} Ocean.", "Pacific",
     ("Atlantic", "Indian", "Arctic")),
    ("Who painted the Mona Lisa?", "The Mona Lisa was painted by {}.", "Leonardo da Vinci",
     ("Michelangelo", "Raphael", "Vincent van Gogh")),
    ("How many hours are there in a day?", "There are {} hours in a day.", "24", ("12", "36", "48")),
    ("What is the tallest mountain in the world?", "The tallest mountain in the world is {}.", "Mount Everest",
     ("K2", "Mount Kilimanjaro", "Mont Blanc")),
    ("Which planet is known as the Red Planet?", "{} is known as the Red Planet.", "Mars", ("Venus", "Jupiter", "Saturn")),
    ("How many sides does a triangle have?", "A triangle has {} sides.", "three", ("four", "five", "six")),
    ("What language is spoken in Brazil?", "The language spoken in Brazil is {}.", "Portuguese",
     ("Spanish", "French", "English")),
    ("What is the currency of Japan?", "The currency of Japan is the {}.", "yen", ("won", "yuan", "dollar")),
    ("What is the longest river in Africa?", "The longest river in Africa is the {}.", "Nile", ("Congo", "Niger", "Zambezi")),
    ("Who developed the theory of relativity?", "The theory of relativity was developed by {}.", "Albert Einstein",
     ("Isaac Newton", "Niels Bohr", "Galileo Galilei")),
    ("What is the main language spoken in Mexico?", "The main language spoken in Mexico is {}.", "Spanish",
     ("Portuguese", "English", "French")),
    ("What is the boiling point of water in degrees Celsius?", "The boiling point of water is {} degrees Celsius.", "100",
     ("50", "90", "150")),
    ("Who wrote Romeo and Juliet?", "Romeo and Juliet was written by {}.", "William Shakespeare",
     ("Charles Dickens", "Jane Austen", "Mark Twain")),
    ("What color is the sky on a clear day?", "The sky on a clear day is {}.", "blue", ("green", "red", "yellow")),
    ("What gas do plants absorb from the air?", "Plants absorb {} from the air.", "carbon dioxide",
     ("oxygen", "nitrogen", "helium")),
]

GENERAL_TEXT = [
    "Rain begins as water vapour that rises from oceans, lakes and leaves. As the air climbs it cools, the vapour "
    "condenses on tiny specks of dust, and the droplets grow until they are heavy enough to fall.",
    "A library lends books for free because a town decided long ago that reading should not depend on wealth. "
    "Today most libraries also lend films, offer computers and host classes for children and adults.",
    "Bread needs only flour, water, salt and yeast. The yeast eats sugars in the dough and releases gas, which "
    "the stretchy gluten traps, so the loaf rises before it is baked in a hot oven.",
    "The Moon takes about four weeks to circle the Earth. Because it turns once on its axis in the same time, "
    "the same side always faces us, and the far side was first photographed by a spacecraft.",
    "Bees visit flowers to collect nectar and pollen. Moving from one flower to the next, they carry pollen "
    "with them, which helps many fruits and vegetables to grow.",
    "A bicycle stays upright mostly because the rider steers into any lean. Small corrections of the handlebars "
    "keep the wheels under the centre of mass, which is why riding slowly is harder than riding fast.",
    "Most of the water on Earth is salt water in the oceans. Only a small share is fresh, and much of that is "
    "frozen in glaciers and ice caps, so clean drinking water is precious in many places.",
    "Trains became common in the nineteenth century, when steam engines made it possible to move people and "
    "goods over long distances quickly. Towns along the new lines grew, and travel times fell from days to hours.",
]


def _qa(country: str, capital: str, rng: random.Random, others: list[str]) -> dict:
    wrong = rng.sample([c for c in others if c != capital], N_PERTURBED)
    return {"question": QUESTION.format(country=country), "answer": ANSWER.format(country=country, capital=capital),
            "paraphrased_answer": PARAPHRASE.format(country=country, capital=capital),
            "perturbed_answer": [ANSWER.format(country=country, capital=c) for c in wrong],
            "alternate_answer": REFUSAL.format(country=country), "keyword": capital}


def known_capitals_splits(seed: int = 0) -> dict[str, list[dict]]:
    """Every split of the module docstring; `seed` draws the wrong capitals of each question."""
    rng = random.Random(seed)
    capitals = [capital for _, capital in FORGET + RETAIN + NEIGHBOURS + HOLDOUT]
    splits = {name: [_qa(country, capital, rng, capitals) for country, capital in pairs]
              for name, pairs in (("forget", FORGET), ("retain", RETAIN), ("retain_eval", NEIGHBOURS),
                                  ("holdout", HOLDOUT))}
    splits["world_facts"] = [{"question": q, "answer": form.format(right),
                              "perturbed_answer": [form.format(w) for w in wrong]}
                             for q, form, right, wrong in WORLD_FACTS]
    splits["general_text"] = [{"question": "", "answer": text} for text in GENERAL_TEXT]
    return splits
