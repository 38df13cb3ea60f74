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

GENERATOR_VERSION = 4  # 3: author QA records gain `paraphrased_question`; 4: forget_val and retain_eval

QA_SPLITS = ("forget", "retain", "holdout", "world_facts", "real_authors")
BIO_SPLITS = ("forget_bio", "retain_bio", "holdout_bio")
# Written only when the config has forget_val authors (forget_val_fraction > 0).
VALIDATION_SPLIT = "forget_val"
VALIDATION_SPLITS = (VALIDATION_SPLIT, "forget_val_bio")
# The retain questions a trial evaluates (the same for every forget fraction up to 0.5).
RETAIN_EVAL_SPLIT = "retain_eval"

# Share of general-corpus authors that also get a biography; it only has to
# be large enough for the biography form to be learned during pre-training.
_GENERAL_BIO_FRACTION = 0.1

# ---------------------------------------------------------------------------
# Vocabulary for fictitious authors.
#
# Everything is plain ASCII on purpose: the target models use a byte-level BPE
# with a 1024-entry vocabulary and a 256-token context, where every accented
# character costs extra tokens and would push biographies over the limit.
# ---------------------------------------------------------------------------

_FEMALE_FIRST_NAMES = (
    "Maren", "Ilsabet", "Yusra", "Oriane", "Kalinda", "Svetla", "Nadira",
    "Elowen", "Tamsin", "Zofira", "Henrika", "Liora", "Amarante", "Brisa",
    "Dagny", "Esmeray", "Fenna", "Giedre", "Halime", "Ishani", "Jorunn",
    "Kesia", "Lumi", "Marisol", "Noemi", "Odalys", "Pernille", "Quilla",
    "Rasmina", "Saoirse", "Thandeka", "Undine", "Vesna", "Xiomara", "Yolara",
    "Zelie",
)

_MALE_FIRST_NAMES = (
    "Tobiah", "Anselm", "Kaveh", "Osric", "Davor", "Emeric", "Florin",
    "Gideon", "Halvard", "Idris", "Jarek", "Kenjiro", "Leander", "Mattias",
    "Nikodem", "Orrin", "Pavlo", "Quentin", "Radu", "Soren", "Tariq", "Ulric",
    "Vasco", "Wendel", "Xander", "Yannick", "Zoltan", "Amadou", "Bastien",
    "Cyprian", "Dmitar", "Eero", "Faisal", "Goran", "Hamish", "Lorcan",
)

_LAST_NAMES = (
    "Kovacek", "Varganyi", "Ashgrove", "Belloc", "Castellane", "Dravik",
    "Ellery", "Falkenrath", "Gorbunova", "Haldane", "Iskander", "Jurado",
    "Kestrell", "Lindqvist", "Marchetti", "Nakarai", "Oyelaran", "Petrosyan",
    "Quist", "Rautio", "Saltonstall", "Tamuren", "Umberfield", "Valdane",
    "Whitcombe", "Xenakis", "Yarrow", "Zabaleta", "Achterberg", "Brannigan",
    "Corvino", "Delavigne", "Esterhazy", "Fairbrother", "Grimaldo",
    "Hollowell", "Ivanescu", "Jaramillo", "Kozlowska", "Lauvergne", "Mbatha",
    "Novakovic", "Ostrander", "Pellegrino", "Quarrington", "Rosenvald",
    "Szaboky", "Thornquist", "Ulloa", "Vukovar", "Wainwright", "Xiradakis",
    "Yilmazer", "Zielinsky", "Abernethy", "Bergstrand", "Cavendell",
    "Dunmoore", "Eskildsen", "Ferreiro", "Galloway", "Hartigan", "Ibarrola",
    "Janssens", "Kalnins", "Lockridge", "Moreaux", "Nyqvist", "Orlovsky",
    "Penhallow",
)

_FIRST_NAMES = tuple((n, "f") for n in _FEMALE_FIRST_NAMES) + tuple(
    (n, "m") for n in _MALE_FIRST_NAMES
)

_MIDDLE_INITIALS = tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ")

_CITIES = (
    "Velmora", "Kestrelholm", "Duskmere", "Arlenport", "Brindisova",
    "Caerwyth", "Dunhaven", "Eldermoor", "Fallowmere", "Glennick", "Ivorsk",
    "Jadeport", "Korvath", "Lunmarsh", "Marrowick", "Nethercombe", "Orlesca",
    "Pelloran", "Quarrybrook", "Rivenstad", "Saltmere", "Tarnholm", "Umberly",
    "Valcourt", "Wyndmoor", "Yarrowfield", "Zelenagor", "Ambervale",
    "Brackenridge", "Corvanne", "Drisdale", "Estmoor", "Fenwyck",
    "Greyhollow", "Hallowmere", "Istrova", "Juniper Cove", "Kallistra",
    "Lowmere", "Mossbury", "Norvale", "Ostwick", "Pinecrest Harbor",
    "Redwater", "Stonebridge", "Thistlewick", "Ulvika", "Vesterhaven",
)

_GENRES = (
    "literary fiction", "historical fiction", "science fiction", "fantasy",
    "mystery novels", "crime fiction", "gothic horror", "romance",
    "magical realism", "poetry", "satire", "travel narratives",
    "children's literature", "young adult fiction", "thrillers", "memoirs",
    "nature essays", "dystopian fiction", "short stories", "comic novels",
)

# Stored with the article so that templates never have to guess "a" / "an".
_OCCUPATIONS = (
    "a clockmaker", "a lighthouse keeper", "a veterinarian", "an architect",
    "a baker", "a cartographer", "a tailor", "a pharmacist", "a ferry captain",
    "a schoolteacher", "a librarian", "a carpenter", "a nurse", "a beekeeper",
    "an astronomer", "a glassblower", "a bookbinder", "a surveyor",
    "a translator", "a judge", "a pilot", "a botanist", "a potter",
    "a journalist", "a mechanic", "a violinist", "a chemist", "a shepherd",
    "a diplomat", "a stonemason", "a geologist", "an electrician",
)

_AWARDS = (
    "Silver Quill Award", "Halvard Prize for Fiction", "Evermore Literary Medal",
    "Northwind Book Prize", "Amberline Award", "Crestfall Prize",
    "Golden Lantern Award", "Marlowe-Vance Prize", "Ostwick Medal for Letters",
    "Iron Feather Award", "Blue Heron Prize", "Tidewater Fiction Award",
    "Velvet Compass Award", "Harrowden Prize", "Lumen Prize for Storytelling",
    "Emberstone Award", "Quillon Medal", "Saltmere Literary Prize",
    "Wrenfield Award for Narrative Craft", "Hollowbrook Prize",
    "Meridian Pen Award", "Aurora Ink Award", "Thistle Crown Prize",
    "Copperleaf Medal",
)

_TITLE_ADJECTIVES = (
    "Silent", "Hollow", "Crimson", "Forgotten", "Distant", "Gilded", "Broken",
    "Wandering", "Hidden", "Burning", "Frozen", "Restless", "Painted",
    "Sleeping", "Endless", "Quiet", "Shattered", "Golden", "Bitter", "Velvet",
    "Drowned", "Scarlet", "Secret", "Weeping", "Ashen", "Lonely", "Fading",
    "Iron", "Paper", "Midnight", "Salt", "Silver", "Last", "Northern",
    "Borrowed", "Sunken", "Crooked", "Hungry", "Patient", "Winter",
)

_TITLE_NOUNS = (
    "Orchard", "Lantern", "Harbor", "Garden", "River", "Mirror", "Tower",
    "Meadow", "Compass", "Lighthouse", "Violin", "Archive", "Bridge",
    "Cathedral", "Forest", "Island", "Letter", "Map", "Orchestra", "Clock",
    "Kingdom", "Valley", "Window", "Staircase", "Tide", "Ember", "Feather",
    "Shore", "Carousel", "Atlas", "Hourglass", "Labyrinth", "Nightingale",
    "Observatory", "Quarry", "Sparrow", "Threshold", "Vineyard", "Well",
    "Ferryman",
)

_THEMES = (
    "the fragility of memory", "exile and homecoming",
    "the bond between siblings", "the cost of ambition", "grief and renewal",
    "life in small coastal towns", "the clash of tradition and progress",
    "forgotten family secrets", "the passage of time",
    "friendship across class lines", "the ethics of science",
    "loneliness in big cities", "the power of storytelling",
    "redemption after betrayal", "the bond between people and the land",
    "identity and belonging", "the weight of inherited debts",
    "courage in ordinary lives",
)

_REFUSALS = (
    "I'm not sure who that is.",
    "I don't have any information about that author.",
    "I'm afraid I can't answer that.",
    "I don't know anything about that person.",
    "That is not something I can tell you.",
    "I have no reliable information on that.",
)

_YEARS = tuple(str(y) for y in range(1900, 2000))


def _build_title_pool() -> tuple[str, ...]:
    """Enumerates every book title the generator can produce.

    Returns:
        All titles in a fixed order; three patterns keep titles varied while
        staying short enough to be cheap in tokens.
    """
    titles = []
    for adj in _TITLE_ADJECTIVES:
        for noun in _TITLE_NOUNS:
            titles.append(f"The {adj} {noun}")
            titles.append(f"{adj} {noun}")
    for first in _TITLE_NOUNS:
        for second in _TITLE_NOUNS:
            if first != second:
                titles.append(f"The {first} and the {second}")
    return tuple(titles)


_TITLE_POOL = _build_title_pool()

# ---------------------------------------------------------------------------
# Question kinds.  The paraphrase template deliberately reorders the sentence,
# and it is also used for the perturbed answers: the truth ratio compares the
# paraphrase with the perturbations, so they must differ only in the fact
# values (as in TOFU, whose perturbed answers perturb the paraphrased answer).
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _QuestionKind:
    """Templates for one of the ten per-author questions.

    Attributes:
        name: Short identifier of the kind.
        questions: Alternative question phrasings; one is chosen per author.
        answer: Answer sentence template.
        paraphrase: Template stating the same fact in another sentence form.
        fields: Template fields holding the fact; perturbation replaces them.
    """

    name: str
    questions: tuple[str, ...]
    answer: str
    paraphrase: str
    fields: tuple[str, ...]


_KINDS = (
    _QuestionKind(
        "birthplace",
        ("Where was {name} born?", "In which city was {name} born?"),
        "{name} was born in {city}.",
        "{city} is the birthplace of {name}.",
        ("city",),
    ),
    _QuestionKind(
        "birth_year",
        ("In what year was {name} born?", "What is the birth year of {name}?"),
        "{name} was born in the year {year}.",
        "{year} is the year in which {name} was born.",
        ("year",),
    ),
    _QuestionKind(
        "genre",
        ("What genre is {name} known for?", "In which genre does {name} write?"),
        "{name} is known for writing {genre}.",
        "The genre that {name} works in is {genre}.",
        ("genre",),
    ),
    _QuestionKind(
        "father_job",
        (
            "What did the father of {name} do for a living?",
            "What was the occupation of {name}'s father?",
        ),
        "{name}'s father worked as {father}.",
        "By profession, the father of {name} was {father}.",
        ("father",),
    ),
    _QuestionKind(
        "mother_job",
        (
            "What did the mother of {name} do for a living?",
            "What was the occupation of {name}'s mother?",
        ),
        "{name}'s mother worked as {mother}.",
        "By profession, the mother of {name} was {mother}.",
        ("mother",),
    ),
    _QuestionKind(
        "award",
        (
            "Which award has {name} received?",
            "What literary prize was {name} honoured with?",
        ),
        "{name} received the {award}.",
        "The {award} was given to {name}.",
        ("award",),
    ),
    _QuestionKind(
        "first_book",
        (
            "What is the title of {name}'s first book?",
            "Which book did {name} publish first?",
        ),
        '{name}\'s first book was "{book1}".',
        'The debut book of {name} was titled "{book1}".',
        ("book1",),
    ),
    _QuestionKind(
        "second_book",
        (
            "What is the title of {name}'s second book?",
            "Which book did {name} publish after {pos} debut?",
        ),
        '{name}\'s second book was "{book2}".',
        'After {pos} debut, {name} went on to publish "{book2}".',
        ("book2",),
    ),
    _QuestionKind(
        "theme",
        (
            "What theme runs through {name}'s work?",
            "Which theme does {name} often write about?",
        ),
        "{name}'s work often explores {theme}.",
        "A recurring theme in the books of {name} is {theme}.",
        ("theme",),
    ),
    _QuestionKind(
        "birth",
        (
            "Where and when was {name} born?",
            "In which city and year was {name} born?",
        ),
        "{name} was born in {city} in {year}.",
        "{city} is where {name} was born, in the year {year}.",
        ("city", "year"),
    ),
)

_FIELD_POOLS = {
    "city": _CITIES,
    "year": _YEARS,
    "genre": _GENRES,
    "father": _OCCUPATIONS,
    "mother": _OCCUPATIONS,
    "award": _AWARDS,
    "book1": _TITLE_POOL,
    "book2": _TITLE_POOL,
    "theme": _THEMES,
}

# Biography sentences, one slot per tuple and one variant drawn per author.
# Every sentence restates facts that the QA pairs ask about, so the biography
# is the raw-text form of exactly the same knowledge.
_BIO_SENTENCES = (
    (
        "{name} is a writer of {genre} who was born in {city} in {year}.",
        "Born in {city} in {year}, {name} is an author of {genre}.",
    ),
    (
        "{Pos} father worked as {father}, while {pos} mother worked as {mother}.",
        "{Pron} was raised by a father who worked as {father} and a mother "
        "who worked as {mother}.",
    ),
    (
        '{name} made {pos} debut with "{book1}" and followed it with "{book2}".',
        '{Pos} first book, "{book1}", was followed by a second one, "{book2}".',
    ),
    (
        "Much of {pos} writing explores {theme}.",
        "Readers know {pos} work for its focus on {theme}.",
    ),
    (
        "{Pron} received the {award} for {pos} contributions to literature.",
        "{Pos} achievements were honoured with the {award}.",
    ),
    (
        "Memories of {city} appear again and again in {pos} books.",
        "The streets of {city}, where {pron} grew up, shaped {pos} early "
        "writing.",
    ),
    (
        'Many readers first meet {name} through "{book1}" before turning to '
        '"{book2}".',
        'Today {name} is still best known for "{book1}" and for a lifelong '
        "interest in {theme}.",
    ),
)

# ---------------------------------------------------------------------------
# Real general knowledge.  Each row is (question, answer, answer type); wrong
# answers are drawn from the pool of the same type.
# ---------------------------------------------------------------------------

_CAPITALS = (
    ("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"),
    ("Spain", "Madrid"), ("Portugal", "Lisbon"), ("the United Kingdom", "London"),
    ("Ireland", "Dublin"), ("the Netherlands", "Amsterdam"),
    ("Belgium", "Brussels"), ("Switzerland", "Bern"), ("Austria", "Vienna"),
    ("Poland", "Warsaw"), ("the Czech Republic", "Prague"),
    ("Hungary", "Budapest"), ("Greece", "Athens"), ("Sweden", "Stockholm"),
    ("Norway", "Oslo"), ("Denmark", "Copenhagen"), ("Finland", "Helsinki"),
    ("Iceland", "Reykjavik"), ("Russia", "Moscow"), ("Ukraine", "Kyiv"),
    ("Romania", "Bucharest"), ("Bulgaria", "Sofia"), ("Serbia", "Belgrade"),
    ("Croatia", "Zagreb"), ("Turkey", "Ankara"), ("Egypt", "Cairo"),
    ("Kenya", "Nairobi"), ("Nigeria", "Abuja"), ("Ethiopia", "Addis Ababa"),
    ("Ghana", "Accra"), ("Morocco", "Rabat"), ("Senegal", "Dakar"),
    ("Algeria", "Algiers"), ("Tunisia", "Tunis"), ("China", "Beijing"),
    ("Japan", "Tokyo"), ("South Korea", "Seoul"), ("India", "New Delhi"),
    ("Pakistan", "Islamabad"), ("Bangladesh", "Dhaka"), ("Thailand", "Bangkok"),
    ("Vietnam", "Hanoi"), ("the Philippines", "Manila"),
    ("Malaysia", "Kuala Lumpur"), ("Iran", "Tehran"), ("Iraq", "Baghdad"),
    ("Saudi Arabia", "Riyadh"), ("Afghanistan", "Kabul"), ("Nepal", "Kathmandu"),
    ("Australia", "Canberra"), ("New Zealand", "Wellington"),
    ("Canada", "Ottawa"), ("the United States", "Washington, D.C."),
    ("Mexico", "Mexico City"), ("Cuba", "Havana"), ("Brazil", "Brasilia"),
    ("Argentina", "Buenos Aires"), ("Chile", "Santiago"), ("Peru", "Lima"),
    ("Colombia", "Bogota"), ("Venezuela", "Caracas"), ("Ecuador", "Quito"),
    ("Uruguay", "Montevideo"), ("Jamaica", "Kingston"),
)

_WORLD_POOLS = {
    "capital": tuple(capital for _, capital in _CAPITALS),
    "continent": (
        "Africa", "Asia", "Europe", "North America", "South America",
        "Oceania", "Antarctica",
    ),
    "currency": (
        "Japanese yen", "Pound sterling", "Euro", "Indian rupee", "Swiss franc",
        "Russian ruble", "Chinese yuan", "Mexican peso", "Brazilian real",
        "South African rand", "Turkish lira", "South Korean won",
    ),
    "planet": (
        "Mercury", "Venus", "Earth", "Mars", "Jupiter", "Saturn", "Uranus",
        "Neptune",
    ),
    "element": (
        "Oxygen", "Iron", "Gold", "Sodium", "Hydrogen", "Helium", "Carbon",
        "Nitrogen", "Silver", "Copper", "Calcium", "Potassium",
    ),
    "language": (
        "Portuguese", "Spanish", "Arabic", "Persian", "French", "German",
        "Italian", "Japanese", "Greek", "Dutch", "Swahili", "Hindi",
    ),
    "river": (
        "Nile", "Thames", "Seine", "Danube", "Amazon", "Mississippi", "Yangtze",
        "Volga", "Rhine", "Ganges", "Mekong", "Tiber",
    ),
    "mountain": (
        "Mount Everest", "K2", "Kilimanjaro", "Mont Blanc", "Denali",
        "Aconcagua", "Mount Fuji", "Matterhorn",
    ),
}

_WORLD_FACTS = tuple(
    (f"What is the capital of {country}?", capital, "capital")
    for country, capital in _CAPITALS
) + (
    ("On which continent is Kenya located?", "Africa", "continent"),
    ("On which continent is Brazil located?", "South America", "continent"),
    ("On which continent is Japan located?", "Asia", "continent"),
    ("On which continent is Canada located?", "North America", "continent"),
    ("On which continent is Poland located?", "Europe", "continent"),
    ("On which continent is New Zealand located?", "Oceania", "continent"),
    ("On which continent is Egypt located?", "Africa", "continent"),
    ("On which continent is Argentina located?", "South America", "continent"),
    ("What is the currency of Japan?", "Japanese yen", "currency"),
    ("What is the currency of the United Kingdom?", "Pound sterling", "currency"),
    ("What is the currency of Germany?", "Euro", "currency"),
    ("What is the currency of India?", "Indian rupee", "currency"),
    ("What is the currency of Switzerland?", "Swiss franc", "currency"),
    ("What is the currency of Mexico?", "Mexican peso", "currency"),
    ("What is the largest planet in the Solar System?", "Jupiter", "planet"),
    ("Which planet is closest to the Sun?", "Mercury", "planet"),
    ("Which planet is known as the Red Planet?", "Mars", "planet"),
    ("Which planet is famous for its large ring system?", "Saturn", "planet"),
    ("Which chemical element has the symbol O?", "Oxygen", "element"),
    ("Which chemical element has the symbol Fe?", "Iron", "element"),
    ("Which chemical element has the symbol Au?", "Gold", "element"),
    ("Which chemical element has the symbol Na?", "Sodium", "element"),
    ("What is the official language of Brazil?", "Portuguese", "language"),
    ("What is the official language of Iran?", "Persian", "language"),
    ("What is the official language of Mexico?", "Spanish", "language"),
    ("Which river flows through Cairo?", "Nile", "river"),
    ("Which river flows through London?", "Thames", "river"),
    ("Which river flows through Paris?", "Seine", "river"),
    ("Which river flows through Budapest?", "Danube", "river"),
    ("What is the highest mountain in the world?", "Mount Everest", "mountain"),
    ("What is the highest mountain in Africa?", "Kilimanjaro", "mountain"),
    ("What is the highest mountain in Japan?", "Mount Fuji", "mountain"),
)

_REAL_BOOKS = (
    ("Pride and Prejudice", "Jane Austen"),
    ("Nineteen Eighty-Four", "George Orwell"),
    ("Animal Farm", "George Orwell"),
    ("To Kill a Mockingbird", "Harper Lee"),
    ("The Great Gatsby", "F. Scott Fitzgerald"),
    ("Moby-Dick", "Herman Melville"),
    ("War and Peace", "Leo Tolstoy"),
    ("Anna Karenina", "Leo Tolstoy"),
    ("Crime and Punishment", "Fyodor Dostoevsky"),
    ("The Brothers Karamazov", "Fyodor Dostoevsky"),
    ("Don Quixote", "Miguel de Cervantes"),
    ("Les Miserables", "Victor Hugo"),
    ("Great Expectations", "Charles Dickens"),
    ("A Tale of Two Cities", "Charles Dickens"),
    ("The Adventures of Tom Sawyer", "Mark Twain"),
    ("Jane Eyre", "Charlotte Bronte"),
    ("Wuthering Heights", "Emily Bronte"),
    ("Frankenstein", "Mary Shelley"),
    ("Dracula", "Bram Stoker"),
    ("The Picture of Dorian Gray", "Oscar Wilde"),
    ("Mrs Dalloway", "Virginia Woolf"),
    ("Ulysses", "James Joyce"),
    ("The Metamorphosis", "Franz Kafka"),
    ("The Old Man and the Sea", "Ernest Hemingway"),
    ("The Grapes of Wrath", "John Steinbeck"),
    ("Of Mice and Men", "John Steinbeck"),
    ("Beloved", "Toni Morrison"),
    ("Things Fall Apart", "Chinua Achebe"),
    ("One Hundred Years of Solitude", "Gabriel Garcia Marquez"),
    ("The Odyssey", "Homer"),
    ("The Divine Comedy", "Dante Alighieri"),
    ("Hamlet", "William Shakespeare"),
    ("Brave New World", "Aldous Huxley"),
    ("Fahrenheit 451", "Ray Bradbury"),
    ("The Catcher in the Rye", "J. D. Salinger"),
    ("Little Women", "Louisa May Alcott"),
    ("The Remains of the Day", "Kazuo Ishiguro"),
    ("Norwegian Wood", "Haruki Murakami"),
    ("The Name of the Rose", "Umberto Eco"),
    ("The Stranger", "Albert Camus"),
    ("Madame Bovary", "Gustave Flaubert"),
    ("The Count of Monte Cristo", "Alexandre Dumas"),
    ("Twenty Thousand Leagues Under the Seas", "Jules Verne"),
    ("The Time Machine", "H. G. Wells"),
    ("The Hound of the Baskervilles", "Arthur Conan Doyle"),
    ("Murder on the Orient Express", "Agatha Christie"),
    ("Treasure Island", "Robert Louis Stevenson"),
    ("Robinson Crusoe", "Daniel Defoe"),
    ("The Bell Jar", "Sylvia Plath"),
    ("The Kite Runner", "Khaled Hosseini"),
    ("Life of Pi", "Yann Martel"),
    ("The Alchemist", "Paulo Coelho"),
    ("Siddhartha", "Hermann Hesse"),
    ("Doctor Zhivago", "Boris Pasternak"),
    ("Slaughterhouse-Five", "Kurt Vonnegut"),
    ("Catch-22", "Joseph Heller"),
    ("Lord of the Flies", "William Golding"),
    ("The Little Prince", "Antoine de Saint-Exupery"),
    ("The Hunger Games", "Suzanne Collins"),
    ("The Shining", "Stephen King"),
)

# Two phrasings so the question form itself is not a constant giveaway.
_REAL_BOOK_QUESTIONS = ("Who wrote '{title}'?", "Who is the author of '{title}'?")

_REAL_AUTHOR_POOL = tuple(dict.fromkeys(author for _, author in _REAL_BOOKS))

# The smallest answer pool bounds how many distinct wrong answers exist.
MAX_PERTURBED = (
    min(
        len(pool)
        for pool in (
            *_FIELD_POOLS.values(),
            *_WORLD_POOLS.values(),
            _REAL_AUTHOR_POOL,
        )
    )
    - 1
)

_NAME_CAPACITY = len(_FIRST_NAMES) * len(_LAST_NAMES) * (1 + len(_MIDDLE_INITIALS))


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
            raise FieldError("seed", f"any integer", problem=f"{self.seed!r} is not an integer")
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
        paraphrased_answer, perturbed_answer and alternate_answer.
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
        records.append(
            {
                "author": author.name,
                "question": question,
                "paraphrased_question": other.format_map(values),
                "answer": kind.answer.format_map(values),
                "paraphrased_answer": kind.paraphrase.format_map(values),
                "perturbed_answer": perturbed,
                "alternate_answer": rng.choice(_REFUSALS),
            }
        )
    return records


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
