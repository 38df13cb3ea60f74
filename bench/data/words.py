"""The word tables of the synthetic generator (bench.data.synthetic): names, places, genres, titles,
the ten question kinds and their templates, world facts and real books.

Everything is plain ASCII on purpose: the target models use a byte-level BPE with a 1024-entry
vocabulary and a 256-token context, where every accented character costs extra tokens and would push
biographies over the limit. Changing a table changes the generated data: bump GENERATOR_VERSION.
"""

from __future__ import annotations

from dataclasses import dataclass

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


