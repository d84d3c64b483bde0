"""The words for the people and pets in someone's life, and the relation each is kept under.

One table for both sides of memory: the extractor keys what it learns by it
(``relation:<rel>``, memory/facts.py) and the answerer looks facts up by it
(dialogue/answers.py), so "my budgie" is found as it was stored.
"""

from __future__ import annotations

from typing import Final

RELATION_WORDS: Final = {
    "sister": "sister", "brother": "brother", "mother": "mother", "mom": "mother",
    "mum": "mother", "mommy": "mother", "mummy": "mother", "mam": "mother", "ma": "mother",
    "father": "father", "dad": "father", "daddy": "father", "pa": "father",
    "wife": "wife", "husband": "husband", "hubby": "husband", "partner": "partner",
    "boyfriend": "boyfriend", "bf": "boyfriend", "girlfriend": "girlfriend", "gf": "girlfriend",
    "son": "son", "daughter": "daughter", "kid": "child", "child": "child",
    "grandmother": "grandmother", "grandma": "grandmother", "gran": "grandmother",
    "granny": "grandmother", "nan": "grandmother", "nana": "grandmother",
    "grandfather": "grandfather", "grandpa": "grandfather", "grandad": "grandfather",
    "granddad": "grandfather", "aunt": "aunt", "auntie": "aunt", "aunty": "aunt",
    "uncle": "uncle", "cousin": "cousin", "niece": "niece", "nephew": "nephew",
    "stepmother": "stepmother", "stepmom": "stepmother", "stepmum": "stepmother",
    "stepfather": "stepfather", "stepdad": "stepfather", "stepson": "stepson",
    "stepdaughter": "stepdaughter", "stepsister": "stepsister", "stepbrother": "stepbrother",
    "grandson": "grandson", "granddaughter": "granddaughter",
    "mother in law": "mother-in-law", "mother-in-law": "mother-in-law",
    "father in law": "father-in-law", "father-in-law": "father-in-law",
    "sister in law": "sister-in-law", "sister-in-law": "sister-in-law",
    "brother in law": "brother-in-law", "brother-in-law": "brother-in-law",
    "twin": "twin", "twin sister": "twin sister", "twin brother": "twin brother",
    "little sister": "sister", "big sister": "sister", "older sister": "sister",
    "younger sister": "sister", "little brother": "brother", "big brother": "brother",
    "older brother": "brother", "younger brother": "brother",
    "best friend": "best friend", "bestie": "best friend", "best mate": "best friend",
    "friend": "friend", "mate": "friend", "buddy": "friend", "pal": "friend",
    "boss": "boss", "manager": "boss", "colleague": "colleague", "coworker": "colleague",
    "co-worker": "colleague", "roommate": "roommate", "flatmate": "flatmate",
    "housemate": "housemate", "neighbour": "neighbour", "neighbor": "neighbour",
    "fiance": "fiance", "fiancé": "fiance", "fiancee": "fiancee", "fiancée": "fiancee",
    "therapist": "therapist", "doctor": "doctor", "gp": "doctor", "teacher": "teacher",
    "parents": "parents", "grandparents": "grandparents", "kids": "children",
    "children": "children", "baby": "baby", "ex": "ex",
}  # fmt: skip
PET_WORDS: Final = {
    "dog": "dog", "doggy": "dog", "doggo": "dog", "puppy": "dog", "pup": "dog",
    "cat": "cat", "kitten": "cat", "kitty": "cat", "rabbit": "rabbit", "bunny": "rabbit",
    "hamster": "hamster", "gerbil": "gerbil", "parrot": "parrot", "budgie": "budgie",
    "horse": "horse", "pony": "pony", "fish": "fish", "goldfish": "fish", "bird": "bird",
    "guinea pig": "guinea pig", "tortoise": "tortoise", "turtle": "turtle", "snake": "snake",
    "lizard": "lizard", "gecko": "gecko", "ferret": "ferret", "rat": "rat", "mouse": "mouse",
    "chicken": "chicken", "goat": "goat", "pig": "pig", "cockatiel": "cockatiel",
}  # fmt: skip
BREEDS: Final = {
    **dict.fromkeys(
        str.split(
            """spaniel labrador lab retriever poodle terrier collie beagle dachshund pug husky
        corgi greyhound whippet sheepdog bulldog chihuahua schnauzer dalmatian rottweiler
        cockapoo labradoodle cavapoo goldendoodle alsatian lurcher mutt pointer setter
        westie yorkie shepherd doberman mastiff pomeranian samoyed akita""",
        ),
        "dog",
    ),
    **dict.fromkeys(str.split("tabby siamese persian ragdoll bengal sphynx moggy"), "cat"),
}
RELATIONS: Final = {**RELATION_WORDS, **PET_WORDS}
"""Every word, person or pet, to its relation."""
PETS: Final = frozenset(PET_WORDS.values())
"""The relations that are animals."""
