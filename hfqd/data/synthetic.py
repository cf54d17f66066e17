"""A deterministic synthetic English->German corpus for offline demos and tests.

Generated from a small grammar and a bilingual lexicon written for hfqd (no third-party text). The German side
has what makes translation more than word substitution: grammatical gender and case on articles and
adjectives, subject-verb agreement, verb-second order after a fronted adverb, and verb-final order in
subordinate clauses.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

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

# verb: (english 3sg, english plural, english participle, german 3sg, german plural, german participle)
VERBS = [
    ("sees", "see", "seen", "sieht", "sehen", "gesehen"), ("likes", "like", "liked", "mag", "mögen", "gemocht"),
    ("finds", "find", "found", "findet", "finden", "gefunden"), ("buys", "buy", "bought", "kauft", "kaufen", "gekauft"),
    ("carries", "carry", "carried", "trägt", "tragen", "getragen"),
    ("paints", "paint", "painted", "malt", "malen", "gemalt"), ("holds", "hold", "held", "hält", "halten", "gehalten"),
    ("needs", "need", "needed", "braucht", "brauchen", "gebraucht"),
    ("visits", "visit", "visited", "besucht", "besuchen", "besucht"),
    ("washes", "wash", "washed", "wäscht", "waschen", "gewaschen"),
    ("follows", "follow", "followed", "verfolgt", "verfolgen", "verfolgt"),
    ("draws", "draw", "drawn", "zeichnet", "zeichnen", "gezeichnet"),
    ("opens", "open", "opened", "öffnet", "öffnen", "geöffnet"),
    ("loses", "lose", "lost", "verliert", "verlieren", "verloren"),
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

# A second, shifted domain for fine-tuning demos: kitchen objects and verbs, the same people as subjects.
KITCHEN_NOUNS = [
    ("cook", "cooks", "Koch", "Köche", "m"), ("pot", "pots", "Topf", "Töpfe", "m"),
    ("spoon", "spoons", "Löffel", "Löffel", "m"), ("knife", "knives", "Messer", "Messer", "n"),
    ("plate", "plates", "Teller", "Teller", "m"), ("cup", "cups", "Tasse", "Tassen", "f"),
    ("bowl", "bowls", "Schüssel", "Schüsseln", "f"), ("oven", "ovens", "Ofen", "Öfen", "m"),
    ("fork", "forks", "Gabel", "Gabeln", "f"), ("glass", "glasses", "Glas", "Gläser", "n"),
    ("pan", "pans", "Pfanne", "Pfannen", "f"), ("bottle", "bottles", "Flasche", "Flaschen", "f"),
]
KITCHEN_VERBS = [
    ("cleans", "clean", "cleaned", "putzt", "putzen", "geputzt"),
    ("fills", "fill", "filled", "füllt", "füllen", "gefüllt"),
    ("cuts", "cut", "cut", "schneidet", "schneiden", "geschnitten"),
    ("heats", "heat", "heated", "erhitzt", "erhitzen", "erhitzt"),
    ("dries", "dry", "dried", "trocknet", "trocknen", "getrocknet"),
    ("breaks", "break", "broken", "zerbricht", "zerbrechen", "zerbrochen"),
]


@dataclass(frozen=True)
class Domain:
    """A lexicon: who acts (subjects), what is acted on (objects), and the verbs."""

    subjects: tuple
    objects: tuple
    verbs: tuple


DOMAINS = {
    "general": Domain(tuple(NOUNS[:ANIMATE]), tuple(NOUNS), tuple(VERBS)),
    "kitchen": Domain(tuple(NOUNS[:ANIMATE]) + tuple(KITCHEN_NOUNS[:1]), tuple(KITCHEN_NOUNS), tuple(KITCHEN_VERBS)),
}

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


def _noun_phrase(rng: random.Random, case: str, nouns) -> tuple[str, str, bool, str]:
    """(english, german, plural, gender) for a random noun phrase in the given German case."""
    noun = rng.choice(nouns)
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
    return en, de, plural, gender


@dataclass
class _Clause:
    """A transitive clause, English already ordered, German as parts to be ordered by clause type."""

    english: str
    subject: str
    finite: str  # the inflected verb (or auxiliary in the perfect)
    rest: str  # object and prepositional phrase
    participle: str = ""  # German past participle in the perfect, else empty

    def main(self, front: str = "") -> str:
        """Verb second: the finite verb follows the first constituent; a participle closes the clause."""
        words = [front, self.finite, self.subject] if front else [self.subject, self.finite]
        return " ".join(w for w in words + [self.rest, self.participle] if w)

    def subordinate(self, conjunction: str) -> str:
        """Verb final: participle, then finite verb, at the end."""
        return " ".join(w for w in [conjunction, self.subject, self.rest, self.participle, self.finite] if w)


def _verb_phrase(rng: random.Random, domain: Domain, plural: bool, perfect: bool) -> tuple[str, str, str]:
    """(english verb group, german finite verb, german participle)."""
    verb = rng.choice(domain.verbs)
    if perfect:
        return ("have " if plural else "has ") + verb[2], "haben" if plural else "hat", verb[5]
    return (verb[1], verb[4], "") if plural else (verb[0], verb[3], "")


def _object_phrase(rng: random.Random, domain: Domain) -> tuple[str, str]:
    """Accusative object, sometimes with a dative prepositional phrase."""
    obj_en, obj_de, _, _ = _noun_phrase(rng, "acc", domain.objects)
    if rng.random() < 0.25:
        prep = rng.choice(PREPOSITIONS)
        pp_en, pp_de, _, _ = _noun_phrase(rng, "dat", domain.objects)
        obj_en, obj_de = f"{obj_en} {prep[0]} {pp_en}", f"{obj_de} {prep[1]} {pp_de}"
    return obj_en, obj_de


def _clause(rng: random.Random, domain: Domain, allow_relative: bool = True) -> _Clause:
    subj_en, subj_de, plural, gender = _noun_phrase(rng, "nom", domain.subjects)
    if allow_relative and rng.random() < 0.2:
        # Relative clause on the subject: the German pronoun agrees with the noun; its verb goes last.
        rel_verb, rel_finite, rel_participle = _verb_phrase(rng, domain, plural, rng.random() < 0.3)
        rel_obj_en, rel_obj_de, _, _ = _noun_phrase(rng, "acc", domain.objects)
        subj_en = f"{subj_en} who {rel_verb} {rel_obj_en}"
        relative = " ".join(w for w in [DEF[("nom", gender)], rel_obj_de, rel_participle, rel_finite] if w)
        subj_de = f"{subj_de} , {relative} ,"
    verb_en, finite, participle = _verb_phrase(rng, domain, plural, rng.random() < 0.3)
    obj_en, obj_de = _object_phrase(rng, domain)
    return _Clause(f"{subj_en} {verb_en} {obj_en}", subj_de, finite, obj_de, participle)


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def make_pair(rng: random.Random, domain: Domain = DOMAINS["general"]) -> tuple[str, str]:
    """One (english, german) sentence pair."""
    clause = _clause(rng, domain)
    if rng.random() < 0.3:  # fronted adverb: the German finite verb stays second, before the subject
        adverb = rng.choice(ADVERBS)
        english, german = f"{adverb[0]} {clause.english}", clause.main(front=adverb[1])
    else:
        english, german = clause.english, clause.main()
    if rng.random() < 0.35:  # subordinate clause: German verb last
        conj = rng.choice(CONJUNCTIONS)
        sub = _clause(rng, domain, allow_relative=False)
        english += f" {conj[0]} {sub.english}"
        german += " , " + sub.subordinate(conj[1])
    return _capitalize(english) + " .", _capitalize(german) + " ."


def synthetic_pairs(n: int, seed: int = 0, domain: str = "general") -> list[tuple[str, str]]:
    """``n`` sentence pairs of ``domain`` (`general` or `kitchen`), identical for the same seed everywhere."""
    if n < 1:
        raise ValueError(f"`n` must be positive, got {n}.")
    if domain not in DOMAINS:
        raise ValueError(f"Unknown synthetic domain {domain!r}; choose from {sorted(DOMAINS)}.")
    rng = random.Random(seed)
    return [make_pair(rng, DOMAINS[domain]) for _ in range(n)]


def synthetic_translation_dataset(
    n_train: int,
    seed: int = 0,
    source_lang: str = "en",
    target_lang: str = "de",
    n_eval: int | None = None,
    domain: str = "general",
):
    """A `DatasetDict` with train/validation/test splits in the `translation` layout.

    Validation and test hold ``n_eval`` pairs each (default: 5 % of ``n_train``, at least 50) whose source
    sentence never occurs in training.
    """
    from datasets import Dataset, DatasetDict

    n_eval = max(50, n_train // 20) if n_eval is None else n_eval
    pairs = synthetic_pairs(n_train + 3 * n_eval, seed=seed, domain=domain)
    train = pairs[:n_train]
    seen = {en for en, _ in train}
    held_out = [(en, de) for en, de in pairs[n_train:] if en not in seen][: 2 * n_eval]
    splits = {"train": train, "validation": held_out[:n_eval], "test": held_out[n_eval:]}
    return DatasetDict({
        name: Dataset.from_dict({"translation": [{source_lang: e, target_lang: d} for e, d in rows]})
        for name, rows in splits.items()
    })
