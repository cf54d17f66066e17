"""A deterministic synthetic English->German corpus for offline demos and tests.

Generated from a small grammar and a bilingual lexicon written for hfqd (no third-party text). The German side
has what makes translation more than word substitution: grammatical gender and case on articles and
adjectives, subject-verb agreement, verb-second order after a fronted adverb, and verb-final order in
subordinate clauses.
"""

from __future__ import annotations

import random

# noun: (english singular, english plural, german singular, german plural, gender m/f/n)
NOUNS = [
    ("man", "men", "Mann", "Männer", "m"), ("woman", "women", "Frau", "Frauen", "f"),
    ("child", "children", "Kind", "Kinder", "n"), ("dog", "dogs", "Hund", "Hunde", "m"),
    ("cat", "cats", "Katze", "Katzen", "f"), ("horse", "horses", "Pferd", "Pferde", "n"),
    ("teacher", "teachers", "Lehrer", "Lehrer", "m"), ("doctor", "doctors", "Ärztin", "Ärztinnen", "f"),
    ("girl", "girls", "Mädchen", "Mädchen", "n"), ("boy", "boys", "Junge", "Jungen", "m"),
    ("bird", "birds", "Vogel", "Vögel", "m"), ("friend", "friends", "Freundin", "Freundinnen", "f"),
    ("farmer", "farmers", "Bauer", "Bauern", "m"), ("singer", "singers", "Sängerin", "Sängerinnen", "f"),
    ("baby", "babies", "Baby", "Babys", "n"), ("student", "students", "Student", "Studenten", "m"),
    ("book", "books", "Buch", "Bücher", "n"), ("car", "cars", "Auto", "Autos", "n"),
    ("ball", "balls", "Ball", "Bälle", "m"), ("house", "houses", "Haus", "Häuser", "n"),
    ("flower", "flowers", "Blume", "Blumen", "f"), ("table", "tables", "Tisch", "Tische", "m"),
    ("apple", "apples", "Apfel", "Äpfel", "m"), ("letter", "letters", "Brief", "Briefe", "m"),
    ("picture", "pictures", "Bild", "Bilder", "n"), ("bicycle", "bicycles", "Fahrrad", "Fahrräder", "n"),
    ("door", "doors", "Tür", "Türen", "f"), ("bag", "bags", "Tasche", "Taschen", "f"),
    ("boat", "boats", "Boot", "Boote", "n"), ("hat", "hats", "Hut", "Hüte", "m"),
    ("lamp", "lamps", "Lampe", "Lampen", "f"), ("chair", "chairs", "Stuhl", "Stühle", "m"),
]
ANIMATE = 16  # the first nouns can be subjects

# verb: (english 3sg, english plural, german 3sg, german plural)
VERBS = [
    ("sees", "see", "sieht", "sehen"), ("likes", "like", "mag", "mögen"), ("finds", "find", "findet", "finden"),
    ("buys", "buy", "kauft", "kaufen"), ("carries", "carry", "trägt", "tragen"), ("paints", "paint", "malt", "malen"),
    ("holds", "hold", "hält", "halten"), ("needs", "need", "braucht", "brauchen"),
    ("visits", "visit", "besucht", "besuchen"), ("washes", "wash", "wäscht", "waschen"),
    ("follows", "follow", "verfolgt", "verfolgen"), ("draws", "draw", "zeichnet", "zeichnen"),
    ("opens", "open", "öffnet", "öffnen"), ("loses", "lose", "verliert", "verlieren"),
]

# adjective: (english, german stem)
ADJECTIVES = [
    ("big", "groß"), ("small", "klein"), ("old", "alt"), ("young", "jung"), ("red", "rot"), ("blue", "blau"),
    ("green", "grün"), ("happy", "fröhlich"), ("tired", "müde"), ("new", "neu"), ("beautiful", "schön"),
    ("quiet", "leise"), ("fast", "schnell"), ("white", "weiß"), ("black", "schwarz"), ("brown", "braun"),
]

ADVERBS = [("today", "heute"), ("tomorrow", "morgen"), ("often", "oft"), ("now", "jetzt"), ("yesterday", "gestern")]
CONJUNCTIONS = [("because", "weil"), ("while", "während"), ("although", "obwohl"), ("when", "wenn")]
PREPOSITIONS = [("near", "bei"), ("with", "mit")]  # both take the dative

DEF = {  # definite article by (case, gender or "pl")
    ("nom", "m"): "der", ("nom", "f"): "die", ("nom", "n"): "das", ("nom", "pl"): "die",
    ("acc", "m"): "den", ("acc", "f"): "die", ("acc", "n"): "das", ("acc", "pl"): "die",
    ("dat", "m"): "dem", ("dat", "f"): "der", ("dat", "n"): "dem", ("dat", "pl"): "den",
}
INDEF = {("nom", "m"): "ein", ("nom", "f"): "eine", ("nom", "n"): "ein",
         ("acc", "m"): "einen", ("acc", "f"): "eine", ("acc", "n"): "ein",
         ("dat", "m"): "einem", ("dat", "f"): "einer", ("dat", "n"): "einem"}


def _adjective_ending(article: str, case: str, gender: str) -> str:
    """German adjective ending after a definite ("weak") or indefinite ("mixed") article."""
    if gender == "pl" or case == "dat":
        return "en"
    if article == "def":
        return "en" if (case == "acc" and gender == "m") else "e"
    if case == "acc" and gender == "m":
        return "en"
    return {"m": "er", "f": "e", "n": "es"}[gender]


def _noun_phrase(rng: random.Random, case: str, animate: bool) -> tuple[str, str, bool]:
    """(english, german, plural) for a random noun phrase in the given German case."""
    noun = rng.choice(NOUNS[:ANIMATE] if animate else NOUNS)
    plural = rng.random() < 0.3
    article = "def" if plural or rng.random() < 0.6 else "indef"
    adjectives = rng.sample(ADJECTIVES, k=rng.choice([0, 0, 1, 1, 2]))
    gender = "pl" if plural else noun[4]
    en_noun, de_noun = (noun[1], noun[3]) if plural else (noun[0], noun[2])
    if plural and case == "dat" and not de_noun.endswith(("n", "s")):
        de_noun += "n"
    en_article = "the" if article == "def" else ("an" if (adjectives[0][0] if adjectives else en_noun)[0] in "aeiou" else "a")
    de_article = DEF[(case, gender)] if article == "def" else INDEF[(case, gender)]
    ending = _adjective_ending(article, case, gender)
    en = " ".join([en_article] + [a[0] for a in adjectives] + [en_noun])
    de = " ".join([de_article] + [a[1].removesuffix("e") + ending for a in adjectives] + [de_noun])
    return en, de, plural


def _clause(rng: random.Random) -> tuple[list[str], list[str], str, str, str]:
    """Parts of a transitive clause: english words, german subject, german verb, german object (+ PP)."""
    subj_en, subj_de, plural = _noun_phrase(rng, "nom", animate=True)
    obj_en, obj_de, _ = _noun_phrase(rng, "acc", animate=False)
    verb = rng.choice(VERBS)
    verb_en, verb_de = (verb[1], verb[3]) if plural else (verb[0], verb[2])
    en = [subj_en, verb_en, obj_en]
    if rng.random() < 0.25:
        prep = rng.choice(PREPOSITIONS)
        pp_en, pp_de, _ = _noun_phrase(rng, "dat", animate=False)
        en.append(f"{prep[0]} {pp_en}")
        obj_de = f"{obj_de} {prep[1]} {pp_de}"
    return en, [subj_de], verb_de, obj_de, ""


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def make_pair(rng: random.Random) -> tuple[str, str]:
    """One (english, german) sentence pair."""
    en, (subj_de,), verb_de, obj_de, _ = _clause(rng)
    if rng.random() < 0.3:  # fronted adverb: German inverts subject and verb (verb second)
        adverb = rng.choice(ADVERBS)
        en_words = [adverb[0]] + en
        de_words = [adverb[1], verb_de, subj_de, obj_de]
    else:
        en_words = list(en)
        de_words = [subj_de, verb_de, obj_de]
    english, german = " ".join(en_words), " ".join(de_words)
    if rng.random() < 0.35:  # subordinate clause: German verb goes last
        conj = rng.choice(CONJUNCTIONS)
        sub_en, (sub_subj,), sub_verb, sub_obj, _ = _clause(rng)
        english += f" {conj[0]} " + " ".join(sub_en)
        german += f" , {conj[1]} {sub_subj} {sub_obj} {sub_verb}"
    return _capitalize(english) + " .", _capitalize(german) + " ."


def synthetic_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` sentence pairs, identical for the same seed on every machine."""
    if n < 1:
        raise ValueError(f"`n` must be positive, got {n}.")
    rng = random.Random(seed)
    return [make_pair(rng) for _ in range(n)]
