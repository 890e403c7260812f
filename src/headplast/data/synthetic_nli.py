"""A deterministic, learnable natural-language-inference data set for the offline demo.

Every example is a premise/hypothesis pair of plain lowercase English words with a label
``0 = entailment``, ``1 = neutral``, ``2 = contradiction`` (:data:`LABEL_NAMES`). Pairs come from
two families of templates:

* events: ``[a|the] [adj] SUBJECT is [not] VERB-ing OBJECT [manner] [place] [time] [reason]``,
  e.g. "a man is playing a guitar in the park";
* attributes: ``the NOUN is [not] ADJ [and ADJ]``, e.g. "the box is empty".

A hypothesis is a random edit of its premise (generalise or specialise a noun along a small
taxonomy, negate, swap an adjective or adverb for its antonym, add/drop/change a place, time, manner
or reason), and its label is *derived* from the edit by the rules of :func:`_event_label` and
:func:`_attribute_label` (hypernyms entail upwards under affirmation and downwards under negation;
antonyms, opposite polarity and conflicting places/times contradict; unverifiable additions are
neutral; contrary antonym pairs such as empty/full make "not empty" -> "full" neutral while
complementary ones such as open/closed make "not open" -> "closed" an entailment). Ambiguous edits
are rejected. Every premise is used with exactly one hypothesis of each label, so labels are
balanced and the label cannot be read off the premise; "not" occurs in entailments, neutrals and
contradictions alike, so no single word decides the label.

Train and validation are drawn from independent random streams derived from ``seed`` and share no
premise (hence no pair); the validation split depends only on ``(n_validation, seed)``.
"""

from __future__ import annotations

import dataclasses
import os
import random
from collections.abc import Sequence

from headplast.io import write_jsonl

LABEL_NAMES: list[str] = ["entailment", "neutral", "contradiction"]
"""Label ``i`` of every record means ``LABEL_NAMES[i]``."""

ENTAILMENT, NEUTRAL, CONTRADICTION = 0, 1, 2

# ---------------------------------------------------------------------------------------------
# Vocabulary: a noun taxonomy (child -> parent) used for hypernym entailment.
# ---------------------------------------------------------------------------------------------


def _tree(parent: str, children: Sequence[str]) -> dict[str, str]:
    return {c: parent for c in children}


PARENT: dict[str, str] = {
    # people
    **_tree("person", ["adult", "child", "teenager", "chef", "doctor", "nurse", "teacher"]),
    **_tree("person", ["farmer", "student", "soldier", "pilot", "dancer", "artist", "worker"]),
    **_tree("person", ["police officer", "firefighter", "waiter", "mechanic", "athlete"]),
    **_tree("person", ["musician", "tourist", "gardener", "painter", "baker", "singer"]),
    **_tree("adult", ["man", "woman"]),
    **_tree("child", ["boy", "girl", "toddler"]),
    # animals
    **_tree("animal", ["dog", "cat", "horse", "cow", "sheep", "goat", "pig", "rabbit", "bird"]),
    **_tree("animal", ["squirrel", "mouse", "fox", "deer", "camel", "elephant", "donkey"]),
    **_tree("dog", ["puppy", "poodle", "terrier", "beagle"]),
    **_tree("cat", ["kitten"]),
    **_tree("horse", ["pony"]),
    **_tree("sheep", ["lamb"]),
    **_tree("cow", ["calf"]),
    **_tree("bird", ["duck", "chicken", "parrot", "owl", "pigeon", "goose"]),
    # things
    **_tree("instrument", ["guitar", "piano", "violin", "drum", "flute", "trumpet", "cello"]),
    **_tree("instrument", ["harp", "banjo", "saxophone", "clarinet", "ukulele", "accordion"]),
    **_tree("fruit", ["apple", "banana", "orange", "pear", "peach", "mango", "plum", "lemon"]),
    **_tree("fruit", ["apricot", "melon", "strawberry", "pineapple", "kiwi"]),
    **_tree("vegetable", ["carrot", "potato", "onion", "tomato", "cucumber", "pepper"]),
    **_tree("vegetable", ["cabbage", "pumpkin", "eggplant", "zucchini", "turnip"]),
    **_tree("snack", ["cookie", "muffin", "pretzel", "cracker", "donut", "bagel", "croissant"]),
    **_tree("beverage", ["coffee", "tea", "juice", "soda", "milkshake", "smoothie", "lemonade"]),
    **_tree("vehicle", ["car", "truck", "bus", "van", "taxi", "tractor", "jeep", "ambulance"]),
    **_tree("vehicle", ["bicycle", "motorcycle", "scooter"]),
    **_tree("car", ["sedan", "convertible", "limousine"]),
    **_tree("truck", ["pickup", "dump truck", "fire truck"]),
    **_tree("book", ["novel", "textbook", "cookbook", "dictionary", "atlas", "biography"]),
    **_tree("book", ["comic book", "storybook", "notebook"]),
    **_tree("message", ["letter", "email", "postcard", "text message", "note"]),
    **_tree("tool", ["hammer", "wrench", "saw", "screwdriver", "shovel", "drill", "rake"]),
    **_tree("tool", ["axe", "chisel", "broom"]),
    **_tree("bag", ["backpack", "suitcase", "purse", "briefcase", "handbag", "duffel bag"]),
    **_tree("container", ["bucket", "basket", "crate", "box", "barrel", "jar", "bag"]),
    **_tree("piece of clothing", ["jacket", "coat", "sweater", "shirt", "dress", "scarf"]),
    **_tree("piece of clothing", ["hat", "hoodie", "vest", "skirt", "apron"]),
    **_tree("hat", ["cap", "beanie", "fedora", "helmet"]),
    **_tree("piece of furniture", ["chair", "table", "sofa", "desk", "bed", "shelf", "bench"]),
    **_tree("piece of furniture", ["cabinet", "dresser", "stool"]),
    **_tree("chair", ["armchair", "rocking chair"]),
    **_tree("device", ["phone", "computer", "tablet", "camera", "radio", "television"]),
    **_tree("computer", ["laptop"]),
    **_tree("phone", ["smartphone"]),
    **_tree("appliance", ["fridge", "oven", "microwave", "toaster", "dishwasher", "blender"]),
    **_tree("appliance", ["kettle", "washing machine"]),
    **_tree("ball", ["football", "baseball", "basketball", "tennis ball", "volleyball"]),
    **_tree("tree", ["oak", "pine", "maple", "birch", "palm", "willow", "cedar", "elm"]),
    **_tree("dish", ["plate", "bowl", "cup", "mug", "glass", "saucer", "platter"]),
    **_tree("structure", ["house", "shed", "fence", "bridge", "wall", "tower", "cabin", "barn"]),
    **_tree("toy", ["kite", "doll", "puzzle", "teddy bear", "toy car", "robot", "balloon"]),
    **_tree("room", ["kitchen", "office", "classroom", "bedroom", "hallway", "basement"]),
    **_tree("room", ["bathroom", "living room", "attic"]),
    **_tree("door", ["front door", "back door"]),
    **_tree("entrance", ["door", "gate"]),
}


def ancestors(noun: str) -> list[str]:
    """All hypernyms of ``noun``, nearest first ("puppy" -> ["dog", "animal"])."""
    out = []
    while noun in PARENT:
        noun = PARENT[noun]
        out.append(noun)
    return out


def _subtree(root: str) -> list[str]:
    """``root`` and every noun below it, in a fixed order."""
    return [root] + [n for n in PARENT if root in ancestors(n)]


PEOPLE = _subtree("person")
ANIMALS = _subtree("animal")
DISJOINT_GROUPS: list[set[str]] = [
    {"man", "woman", "boy", "girl", "toddler"},
    {"dog", "cat", "horse", "cow", "sheep", "goat", "pig", "rabbit", "bird", "squirrel", "mouse"},
]
"""Nouns in one group never denote the same individual: swapping one for another contradicts."""

# verb -> (subject kinds, object roots or nouns, place kind). A root brings its whole subtree.
VERBS: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "playing": (("person",), ("instrument",), "any"),
    "tuning": (("person",), ("instrument",), "any"),
    "carrying": (("person",), ("container", "instrument", "tool", "toy", "book"), "any"),
    "holding": (("person",), ("tool", "ball", "dish", "device", "toy", "puppy", "kitten"), "any"),
    "eating": (("person", "animal"), ("fruit", "vegetable", "snack"), "any"),
    "peeling": (("person",), ("fruit", "vegetable"), "indoor"),
    "cutting": (("person",), ("fruit", "vegetable"), "any"),
    "washing": (("person",), ("fruit", "vegetable", "dish", "car", "truck", "dog"), "any"),
    "drinking": (("person",), ("beverage",), "any"),
    "driving": (("person",), ("car", "truck", "bus", "van", "taxi", "tractor", "jeep"), "outdoor"),
    "riding": (
        ("person",),
        ("bicycle", "motorcycle", "scooter", "horse", "camel", "donkey"),
        "out",
    ),
    "repairing": (("person",), ("vehicle", "appliance", "device", "piece of furniture"), "any"),
    "using": (("person",), ("device", "tool", "appliance"), "any"),
    "building": (("person",), ("structure", "piece of furniture"), "any"),
    "painting": (("person",), ("structure", "piece of furniture"), "any"),
    "reading": (("person",), ("book", "message"), "any"),
    "writing": (("person",), ("message", "novel"), "any"),
    "wearing": (("person",), ("piece of clothing",), "any"),
    "buying": (("person",), ("fruit", "vegetable", "vehicle", "device", "book", "toy"), "any"),
    "selling": (("person",), ("fruit", "piece of clothing", "tool", "instrument", "snack"), "any"),
    "throwing": (("person",), ("ball", "toy"), "any"),
    "kicking": (("person",), ("ball",), "outdoor"),
    "catching": (("person", "dog"), ("ball",), "any"),
    "climbing": (("person", "cat", "squirrel"), ("tree",), "outdoor"),
    "planting": (("person",), ("tree", "vegetable"), "outdoor"),
    "feeding": (("person",), ("animal",), "any"),
    "petting": (("person",), ("dog", "cat", "rabbit", "horse", "goat", "sheep"), "any"),
    "watching": (("person", "dog", "cat"), ("animal",), "any"),
    "photographing": (("person",), ("animal", "structure", "tree"), "any"),
    "drawing": (("person",), ("animal", "tree", "structure"), "any"),
    "chasing": (("person", "dog", "cat", "fox"), ("ball", "bird", "rabbit", "mouse", "cat"), "out"),
    "walking": (("person",), ("dog", "horse", "goat"), "outdoor"),
}

SUBJECT_ADJECTIVES: dict[str, list[tuple[str, str]]] = {
    "adult": [("tall", "short"), ("young", "old"), ("happy", "sad"), ("strong", "weak")]
    + [("rich", "poor"), ("quiet", "loud"), ("tired", "rested")],
    "child": [("tall", "short"), ("happy", "sad"), ("quiet", "loud"), ("tired", "rested")],
    "animal": [("big", "small"), ("young", "old"), ("wet", "dry"), ("fast", "slow")]
    + [("hungry", "full"), ("clean", "dirty")],
}
"""Antonym pairs that may modify a subject, by kind of subject."""

MANNERS: list[tuple[str, str]] = [
    ("slowly", "quickly"),
    ("quietly", "loudly"),
    ("carefully", "carelessly"),
    ("happily", "sadly"),
    ("calmly", "nervously"),
]
PLACES: dict[str, list[str]] = {
    "indoors": ["in the kitchen", "in the office", "in the library", "in a classroom"]
    + ["in the garage", "in a restaurant", "in the living room", "in a museum", "in a hospital"]
    + ["in the basement", "at the gym", "in a cafe", "in a bedroom", "in a warehouse"]
    + ["in a store", "in the hallway", "in an apartment", "in a church"],
    "outdoors": ["in the park", "at the beach", "on the street", "in the garden", "in the forest"]
    + ["in a field", "on the sidewalk", "in the yard", "by the river", "on a mountain"]
    + ["by the lake", "in the desert", "on a bridge", "in the snow", "on a hill"]
    + ["at the harbor", "in a parking lot", "at a campsite"],
}
"""Places by category; the category word itself ("indoors") is a place too, entailed by each."""
PLACE_CATEGORY = {p: cat for cat, ps in PLACES.items() for p in ps} | {c: c for c in PLACES}
TIMES = ["in the morning", "in the afternoon", "in the evening", "at night"]
"""Mutually exclusive times of day."""
REASONS = ["for fun", "for a friend", "for money", "to relax", "after work", "before lunch"]
REASONS += ["with a friend", "for the first time", "as a hobby", "for a school project"]
REASONS += ["to pass the time", "for a competition", "with a neighbor", "on a holiday"]
"""Unverifiable details: adding one is neutral, replacing one by another is neutral."""

# Attribute family: kinds of noun -> antonym pairs (adjective, antonym, complementary?).
# Complementary: "not A" means "B" (open/closed); contrary: "not A" leaves B open (empty/full).
_PAIRS = {
    "container": [("full", "empty", False), ("open", "closed", True), ("heavy", "light", False)]
    + [("big", "small", False), ("clean", "dirty", False), ("new", "old", False)],
    "room": [("bright", "dark", False), ("warm", "cold", False), ("clean", "dirty", False)]
    + [("quiet", "noisy", False), ("big", "small", False), ("tidy", "messy", False)]
    + [("empty", "crowded", False)],
    "entrance": [("open", "closed", True), ("locked", "unlocked", True), ("wide", "narrow", False)]
    + [("new", "old", False)],
    "vehicle": [("fast", "slow", False), ("new", "old", False), ("clean", "dirty", False)]
    + [("cheap", "expensive", False), ("big", "small", False), ("loud", "quiet", False)],
    "person": [("tall", "short", False), ("happy", "sad", False), ("awake", "asleep", True)]
    + [("strong", "weak", False), ("rich", "poor", False), ("healthy", "sick", False)]
    + [("busy", "idle", False)],
    "animal": [("big", "small", False), ("awake", "asleep", True), ("wet", "dry", True)]
    + [("young", "old", False), ("fast", "slow", False), ("clean", "dirty", False)],
    "fruit": [("ripe", "unripe", True), ("sweet", "sour", False), ("fresh", "rotten", False)]
    + [("big", "small", False)],
    "device": [("new", "old", False), ("cheap", "expensive", False), ("broken", "working", True)]
    + [("heavy", "light", False)],
    "book": [("long", "short", False), ("thick", "thin", False), ("new", "old", False)]
    + [("interesting", "boring", False), ("cheap", "expensive", False)],
    "tree": [("tall", "short", False), ("young", "old", False), ("alive", "dead", True)],
    "piece of clothing": [("clean", "dirty", False), ("wet", "dry", True), ("new", "old", False)]
    + [("tight", "loose", False), ("cheap", "expensive", False)],
    "tool": [("heavy", "light", False), ("sharp", "dull", False), ("new", "old", False)]
    + [("broken", "working", True)],
    "instrument": [("loud", "quiet", False), ("new", "old", False), ("cheap", "expensive", False)]
    + [("heavy", "light", False), ("broken", "working", True)],
    "beverage": [("hot", "cold", False), ("sweet", "bitter", False), ("strong", "weak", False)],
    "ball": [("big", "small", False), ("heavy", "light", False), ("wet", "dry", True)]
    + [("soft", "hard", False), ("new", "old", False)],
}
ATTRIBUTE_NOUNS: dict[str, list[str]] = {kind: _subtree(kind) for kind in _PAIRS}
ATTRIBUTE_NOUNS["person"] = [n for n in PEOPLE]


def _article(words: str) -> str:
    return "an" if words[0] in "aeiou" else "a"


def _np(noun: str, adj: str | None = None, definite: bool = False) -> str:
    words = f"{adj} {noun}" if adj else noun
    return f"{'the' if definite else _article(words)} {words}"


# ---------------------------------------------------------------------------------------------
# Event family
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Event:
    """One event sentence: subject, optional modifiers, polarity, verb and object."""

    subj: str
    verb: str
    obj: str
    neg: bool = False
    adj: str | None = None
    manner: str | None = None
    place: str | None = None
    time: str | None = None
    reason: str | None = None
    definite: bool = False

    def text(self) -> str:
        parts = [_np(self.subj, self.adj, self.definite), "is", "not" if self.neg else None]
        parts += [self.verb, _np(self.obj), self.manner, self.place, self.time, self.reason]
        return " ".join(p for p in parts if p)


def _subject_kind(noun: str) -> str:
    if noun in ANIMALS:
        return "animal"
    return "child" if noun in ("child", "boy", "girl", "toddler") else "adult"


def _antonym(word: str, pairs: Sequence[tuple[str, ...]]) -> str | None:
    for p in pairs:
        if word == p[0]:
            return p[1]
        if word == p[1]:
            return p[0]
    return None


def _noun_relation(p: str, h: str) -> str:
    """How hypothesis noun ``h`` relates to premise noun ``p``:
    same, up, down, disjoint, sibling or other."""
    if p == h:
        return "same"
    if h in ancestors(p):
        return "up"
    if p in ancestors(h):
        return "down"
    if any(p in g and h in g for g in DISJOINT_GROUPS):
        return "disjoint"
    if PARENT.get(p) is not None and PARENT.get(p) == PARENT.get(h):
        return "sibling"
    return "other"


def _slot_status(p: str | None, h: str | None, conflict: bool) -> str:
    """Edit status of an optional modifier: keep, E (dropped), N (added) or C (conflicting)."""
    if p == h:
        return "keep"
    if h is None:
        return "E"
    if p is None:
        return "N"
    return "C" if conflict else "N"


def _modifier_status(
    p: str | None, h: str | None, antonyms: Sequence[tuple[str, ...]]
) -> str | None:
    """Like :func:`_slot_status` for a modifier with antonyms: C only for its antonym; any other
    replacement is ambiguous (None)."""
    if p is not None and h is not None and p != h and _antonym(p, antonyms) != h:
        return None
    return _slot_status(p, h, conflict=True)


def _event_label(p: Event, h: Event) -> int | None:
    """The label of hypothesis ``h`` given premise ``p`` (same scene, same referents), or None
    when the edit is ambiguous and must not be used.

    Long because it is the generator's decision table, one rule per branch.
    """
    if p.verb != h.verb:
        return None
    subj = _noun_relation(p.subj, h.subj)
    obj = _noun_relation(p.obj, h.obj)
    kind_pairs = SUBJECT_ADJECTIVES[_subject_kind(p.subj)]
    adj = _modifier_status(p.adj, h.adj, kind_pairs)
    manner = _modifier_status(p.manner, h.manner, MANNERS)
    if adj is None or manner is None:
        return None
    if p.place == h.place:
        place = "keep"
    elif h.place is None:
        place = "E"
    elif p.place is None:
        place = "N"
    elif PLACE_CATEGORY[p.place] != PLACE_CATEGORY[h.place]:
        place = "C"
    elif h.place in PLACES:  # specific -> its own category
        place = "E"
    elif p.place in PLACES:  # category -> a specific place in it
        place = "N"
    else:  # two different specific places: the same scene cannot be in both
        place = "C"
    time = _slot_status(p.time, h.time, conflict=True)
    reason = _slot_status(p.reason, h.reason, conflict=False)
    mods = [manner, place, time, reason]

    if not p.neg and not h.neg:
        statuses = [adj, *mods]
        statuses.append({"same": "keep", "up": "E", "down": "N", "disjoint": "C"}.get(subj, "?"))
        statuses.append({"same": "keep", "up": "E", "down": "N"}.get(obj, "?"))
        if "?" in statuses or ("C" in statuses and "N" in statuses):
            return None
        if "C" in statuses:
            return CONTRADICTION
        if "N" in statuses:
            return NEUTRAL
        return ENTAILMENT if "E" in statuses else None
    if not p.neg and h.neg:
        # "X is V-ing O" vs "X' is not V-ing O'": only generalising edits elsewhere.
        if subj not in ("same", "up") or adj not in ("keep", "E"):
            return None
        if any(m not in ("keep", "E") for m in mods):
            return None
        if obj in ("same", "up"):
            return CONTRADICTION
        return NEUTRAL if obj == "down" else None
    # Negated premises carry no manner/place/time/reason (their scope would be ambiguous).
    if p.neg and h.neg:
        if subj not in ("same", "up", "down") or adj not in ("keep", "E", "N"):
            return None
        if any(m != "keep" for m in mods):
            return None
        if obj in ("up", "sibling") or subj == "down" or adj == "N":
            return NEUTRAL if obj in ("same", "down", "up", "sibling") else None
        if obj in ("same", "down"):
            return ENTAILMENT if (obj, subj, adj) != ("same", "same", "keep") else None
        return None
    # p.neg and not h.neg
    if subj not in ("same", "up") or adj not in ("keep", "E"):
        return None
    if obj in ("same", "down"):
        return CONTRADICTION
    if obj in ("up", "sibling") and all(m == "keep" for m in mods):
        return NEUTRAL
    return None


def _verb_objects(verb: str) -> list[str]:
    seen: dict[str, None] = {}
    for root in VERBS[verb][1]:
        for n in _subtree(root):
            seen[n] = None
    return list(seen)


def _verb_subjects(verb: str) -> list[str]:
    seen: dict[str, None] = {}
    for kind in VERBS[verb][0]:
        for n in _subtree(kind):
            seen[n] = None
    return list(seen)


VERB_OBJECTS = {v: _verb_objects(v) for v in VERBS}
VERB_SUBJECTS = {v: _verb_subjects(v) for v in VERBS}


def _places_for(verb: str) -> list[str]:
    kind = VERBS[verb][2]
    if kind == "indoor":
        return PLACES["indoors"] + ["indoors"]
    if kind in ("outdoor", "out"):
        return PLACES["outdoors"] + ["outdoors"]
    return [p for ps in PLACES.values() for p in ps] + list(PLACES)


def _sample_event(rng: random.Random) -> Event:
    verb = rng.choice(sorted(VERBS))
    subj = rng.choice(VERB_SUBJECTS[verb])
    obj = rng.choice(VERB_OBJECTS[verb])
    neg = rng.random() < 0.3
    adj = rng.choice(SUBJECT_ADJECTIVES[_subject_kind(subj)])[rng.randrange(2)]
    adj = adj if rng.random() < 0.3 else None
    if neg:
        return Event(subj, verb, obj, neg=True, adj=adj)
    manner = rng.choice(MANNERS)[rng.randrange(2)] if rng.random() < 0.2 else None
    place = rng.choice(_places_for(verb)) if rng.random() < 0.4 else None
    time = rng.choice(TIMES) if rng.random() < 0.25 else None
    reason = rng.choice(REASONS) if rng.random() < 0.15 else None
    return Event(subj, verb, obj, False, adj, manner, place, time, reason)


def _edit_noun(rng: random.Random, noun: str, allowed: Sequence[str], disjoint: bool) -> str:
    """A random related noun: a hypernym, an allowed hyponym, a sibling or a disjoint noun."""
    options = [a for a in ancestors(noun)]
    options += [n for n in allowed if noun in ancestors(n)]
    options += [n for n in allowed if n != noun and PARENT.get(n) == PARENT.get(noun)]
    if disjoint:
        options += [n for g in DISJOINT_GROUPS if noun in g for n in sorted(g) if n != noun]
    return rng.choice(options) if options else noun


def _edit_slot(rng: random.Random, value: str | None, choices: Sequence[str]) -> str | None:
    r = rng.random()
    if value is not None and r < 0.4:
        return None
    return rng.choice(list(choices))


def _propose_event(rng: random.Random, p: Event, target: int) -> Event:
    h = dataclasses.replace(p, definite=rng.random() < 0.5)
    flip = {CONTRADICTION: 0.5, NEUTRAL: 0.3, ENTAILMENT: 0.2}[target] if not p.neg else 0.4
    if p.neg and target == ENTAILMENT:
        flip = 0.0
    if rng.random() < flip:
        h = dataclasses.replace(h, neg=not h.neg)
    if rng.random() < 0.4:
        subjects = VERB_SUBJECTS[p.verb]
        h = dataclasses.replace(h, subj=_edit_noun(rng, p.subj, subjects, disjoint=True))
    if rng.random() < 0.6:
        h = dataclasses.replace(h, obj=_edit_noun(rng, p.obj, VERB_OBJECTS[p.verb], False))
    if rng.random() < 0.3:
        pairs = SUBJECT_ADJECTIVES[_subject_kind(p.subj)]
        if p.adj is not None and rng.random() < 0.5:
            h = dataclasses.replace(h, adj=_antonym(p.adj, pairs))
        else:
            h = dataclasses.replace(h, adj=_edit_slot(rng, p.adj, [a for pr in pairs for a in pr]))
    if not h.neg:
        if rng.random() < 0.25:
            manners = [a for pr in MANNERS for a in pr]
            if p.manner is not None and rng.random() < 0.5:
                h = dataclasses.replace(h, manner=_antonym(p.manner, MANNERS))
            else:
                h = dataclasses.replace(h, manner=_edit_slot(rng, p.manner, manners))
        if rng.random() < 0.3:
            h = dataclasses.replace(h, place=_edit_slot(rng, p.place, _places_for(p.verb)))
        if rng.random() < 0.2:
            h = dataclasses.replace(h, time=_edit_slot(rng, p.time, TIMES))
        if rng.random() < 0.2:
            h = dataclasses.replace(h, reason=_edit_slot(rng, p.reason, REASONS))
    elif rng.random() < 0.5:  # negated hypotheses keep or drop the premise's modifiers
        h = dataclasses.replace(
            h,
            manner=None if rng.random() < 0.5 else h.manner,
            place=None if rng.random() < 0.5 else h.place,
            time=None if rng.random() < 0.5 else h.time,
            reason=None if rng.random() < 0.5 else h.reason,
        )
    return h


# ---------------------------------------------------------------------------------------------
# Attribute family
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Attribute:
    """ "the NOUN is [not] A [and B]": ``preds`` are (adjective, negated) pairs."""

    kind: str
    noun: str
    preds: tuple[tuple[str, bool], ...]

    def text(self) -> str:
        body = " and ".join(("not " if neg else "") + adj for adj, neg in self.preds)
        return f"the {self.noun} is {body}"


def _pair_of(kind: str, adj: str) -> tuple[str, str, bool] | None:
    for pair in _PAIRS[kind]:
        if adj in pair[:2]:
            return pair
    return None


def _attribute_label(p: Attribute, h: Attribute) -> int | None:
    """The label of ``h`` given ``p`` (the same object), or None when ambiguous."""
    rel = _noun_relation(p.noun, h.noun)
    if rel not in ("same", "up", "down"):
        return None
    statuses = []
    for adj, neg in h.preds:
        pair = _pair_of(p.kind, adj)
        known = [(a, n) for a, n in p.preds if pair is not None and a in pair[:2]]
        if pair is None:
            return None
        if not known:
            statuses.append("N")
            continue
        (padj, pneg), complementary = known[0], pair[2]
        same = adj == padj
        if not pneg:  # premise: "is padj"
            statuses.append("E" if same != neg else "C")
        elif same:  # premise "not padj"; hypothesis about padj itself
            statuses.append("E" if neg else "C")
        elif complementary:  # premise "not padj" == "is antonym"
            statuses.append("C" if neg else "E")
        else:
            statuses.append("N")
    if "C" in statuses:
        return None if rel == "down" else CONTRADICTION
    if "N" in statuses or rel == "down":
        return NEUTRAL
    return ENTAILMENT


def _sample_attribute(rng: random.Random) -> Attribute:
    kind = rng.choice(sorted(_PAIRS))
    noun = rng.choice(ATTRIBUTE_NOUNS[kind])
    pairs = rng.sample(_PAIRS[kind], 2)
    first = (pairs[0][rng.randrange(2)], rng.random() < 0.35)
    if first[1] or rng.random() < 0.6:
        return Attribute(kind, noun, (first,))
    return Attribute(kind, noun, (first, (pairs[1][rng.randrange(2)], False)))


def _propose_attribute(rng: random.Random, p: Attribute) -> Attribute:
    noun = p.noun
    if rng.random() < 0.4:
        noun = _edit_noun(rng, p.noun, ATTRIBUTE_NOUNS[p.kind], disjoint=False)
    preds = []
    n = 1 if rng.random() < 0.75 else 2
    for _ in range(n):
        if rng.random() < 0.75:
            adj = rng.choice(p.preds)[0]
            pair = _pair_of(p.kind, adj)
            adj = pair[rng.randrange(2)]
        else:
            adj = rng.choice(_PAIRS[p.kind])[rng.randrange(2)]
        preds.append((adj, n == 1 and rng.random() < 0.5))
    if len({_pair_of(p.kind, a) for a, _ in preds}) < len(preds):
        preds = preds[:1]  # never "awake and asleep" nor "big and big"
    return Attribute(p.kind, noun, tuple(preds))


# ---------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------


def _group(rng: random.Random) -> tuple[str, list[tuple[str, int]]] | None:
    """One premise with one hypothesis per label, or None when some label was not reached."""
    event = rng.random() < 0.7
    premise = _sample_event(rng) if event else _sample_attribute(rng)
    hyps: list[tuple[str, int]] = []
    for target in (ENTAILMENT, NEUTRAL, CONTRADICTION):
        for _ in range(200):
            if event:
                h = _propose_event(rng, premise, target)
                label = _event_label(premise, h)
            else:
                h = _propose_attribute(rng, premise)
                label = _attribute_label(premise, h)
            if label == target and h.text() != premise.text():
                hyps.append((h.text(), label))
                break
        else:
            return None
    return premise.text(), hyps


def _split(rng: random.Random, n: int, used: set[str]) -> list[dict]:
    """``n`` records from whole premise groups whose premise is not in ``used`` (then added)."""
    records: list[dict] = []
    while len(records) < n:
        group = _group(rng)
        if group is None or group[0] in used:
            continue
        premise, hyps = group
        used.add(premise)
        order = list(hyps)
        rng.shuffle(order)
        for hyp, label in order[: n - len(records)]:
            records.append({"premise": premise, "hypothesis": hyp, "label": label})
    rng.shuffle(records)
    return records


def generate_nli(n_train: int, n_validation: int, seed: int) -> tuple[list[dict], list[dict]]:
    """Generate ``(train, validation)`` lists of ``{"premise", "hypothesis", "label"}`` records.

    Deterministic in ``seed``; labels are balanced (each split's label counts differ by at most
    1, exactly equal when its size is a multiple of 3); no premise (so no pair) occurs in both
    splits; the validation split depends only on ``(n_validation, seed)``.
    """
    if n_train < 0 or n_validation < 0:
        raise ValueError(
            f"split sizes must be >= 0, got n_train={n_train}, n_validation={n_validation}"
        )
    used: set[str] = set()
    validation = _split(random.Random(f"headplast-nli-validation-{seed}"), n_validation, used)
    train = _split(random.Random(f"headplast-nli-train-{seed}"), n_train, used)
    return train, validation


def write_synthetic_nli(
    train_path: str | os.PathLike,
    validation_path: str | os.PathLike,
    n_train: int,
    n_validation: int,
    seed: int,
) -> None:
    """Generate the data set (see :func:`generate_nli`); write both splits as JSONL, atomically."""
    train, validation = generate_nli(n_train, n_validation, seed)
    write_jsonl(train_path, train)
    write_jsonl(validation_path, validation)
