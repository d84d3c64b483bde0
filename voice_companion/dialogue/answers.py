"""Answers about the user, from what they told the companion, never from a model's guess.

"What's my dog called", "where was I born", "did I tell you about my sister": ``recognise``
reads such a question in the forms speech-to-text gives (lower case, no question mark,
fillers); ``find`` looks for the answer in memory, the valid facts first, then the user's own
turns (never the companion's replies, except for "what did you tell me about ..."); and the
answer is either spoken as it is (``spoken``: with the bundled model, which would invent one)
or handed to a capable model as evidence in its prompt (``evidence_lines``). When memory holds
nothing, the answer says so and asks: a fact about the user is never made up.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final, Literal

from voice_companion.memory.relations import PETS, RELATIONS
from voice_companion.memory.seam import Fact, MemoryStore

Mode = Literal["direct", "model"]

TURNS_SEARCHED: Final = 12
"""Stored turns the memory's search is asked for, before the sentences are checked."""
MAX_FACTS: Final = 3
MAX_QUOTE_WORDS: Final = 24
EVIDENCE_PREFIX: Final = "What you know that answers this:"
UNKNOWN_LINE: Final = "You don't know this; say so and ask."


def mode_for(setting: str, backend: str, model_path: str, bundled: str) -> Mode:
    """How answers about the user are given: ``setting`` "direct" or "model" as it says;
    "auto" speaks them directly with the bundled model (135M parameters: it invents) and
    lets any other model (an OpenAI-compatible server, the user's own GGUF) phrase them
    from the evidence in its prompt."""
    if setting in ("direct", "model"):
        return setting  # type: ignore[return-value]
    return "direct" if backend == "llama" and model_path == bundled else "model"


# -- the question ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    """A question about the user's own life.

    ``target`` is what it asks for: name, preferred_name, age, relation (a person's or pet's
    name), trait, hometown, home, work, allergy, taste, hobby, when (an event, plan, birthday),
    plans (what is on a day), about (what they said about a topic), who (a person by name),
    said (what the companion itself told them)."""

    target: str
    subject: str = ""
    """The words naming what it is about: "dog", "brother's graduation", "work", "Priya"."""
    personal: bool = True
    """Known to be about the user's life: when nothing is found, say so (False: it may be
    general knowledge, left to the model)."""
    polarity: str = ""
    """For tastes: "like" or "dislike" ("": either)."""
    yes_no: bool = False
    """Asks yes or no about ``subject`` ("am I allergic to peanuts", "do I like coffee")."""
    phrase: str = ""
    """How to say the topic back to them ("your trip to the mountains"), when it differs."""
    told: bool = False
    """Asked what they said about it ("what did I tell you about work"): any sentence about
    it answers, not only one that says the thing asked."""


_FILLERS: Final = re.compile(
    r"\b(?:u+m+|u+h+|e+r+m*|hmm+|ah+|oh+|i mean|basically|actually|again|please|by the way|"
    r"btw|just|exactly|even)\b"
    r"|(?<!\bdo )(?<!\bdid )(?<!\bif )(?<!\bwould )\byou know\b|(?<!\bwhat )\b(?:kind|sort) of\b"
)
_LEAD_INS: Final = re.compile(
    r"^(?:so|hey|okay|ok|and|well|right|wait|now|tell me|can you tell me|could you tell me|"
    r"i forgot|i forget|i can't remember|i cant remember|any idea|do you happen to know|"
    r"would you know)\b ?"
)
_MEMORY_LEAD: Final = re.compile(
    r"^(?:do|did|can|could) you (?:still )?(?:know|remember|recall)\b ?|^do you have any idea\b ?"
    r"|^(?:can you |could you |please )?remind me(?: of)?\b ?"
)
_CONTRACTIONS: Final = (
    (r"\bwhats\b", "what is"), (r"\bwhat's\b", "what is"), (r"\bwhos\b", "who is"),
    (r"\bwho's\b", "who is"), (r"\bwheres\b", "where is"), (r"\bwhere's\b", "where is"),
    (r"\bwhens\b", "when is"), (r"\bwhen's\b", "when is"), (r"\bhow's\b", "how is"),
    (r"\bi'm\b", "i am"), (r"\bim\b", "i am"), (r"\bdidn't\b", "did not"),
    (r"\bdon't\b", "do not"), (r"\bdont\b", "do not"), (r"\bi've\b", "i have"),
    (r"\bwhat're\b", "what are"), (r"\bwho're\b", "who are"), (r"\bfavorite\b", "favourite"),
    (r"\bnick name\b", "nickname"), (r"\bhome town\b", "hometown"), (r"\bwhich\b", "what"),
    (r"^(what|where|when|who) is it that i\b", r"\1 do i"), (r"\bhave i got\b", "do i have"),
    (r"\bwhat have i got\b", "what do i have"),
)  # fmt: skip

# Relation words as said, to the words facts are keyed by (one table with the extractor's);
# a question may also ask about "my pet", and plurals are read as one of the group.
_PLURALS: Final = {"kids": "kid", "children": "child", "parents": "parent", "pets": "pet"}
_RELATIONS: Final = {
    **{word: rel for word, rel in RELATIONS.items() if word not in _PLURALS},
    "pet": "pet",
}
_PETS: Final = PETS
_PET_WORDS: Final = "|".join(
    sorted((re.escape(w) for w, rel in _RELATIONS.items() if rel in _PETS), key=len, reverse=True)
)
_REL_GROUPS: Final = {
    "child": ("son", "daughter", "child", "kid", "baby"),
    "pet": tuple(sorted(_PETS)),
    "friend": ("friend", "best friend"),
    "parent": ("mother", "father"),
}
_REL_WORDS: Final = "|".join(
    sorted((re.escape(w) for w in [*_RELATIONS, *_PLURALS, "parent"]), key=len, reverse=True)
)
_REL = rf"(?P<rel>{_REL_WORDS})(?:'s|s'|s)?"
_MY = r"(?:my|our)"
_DAYS = (
    r"(?P<day>today|tonight|tomorrow|this weekend|next weekend|the weekend|next week|this week|"
    r"(?:on |this |next )?(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday))"
)


def _norm(text: str) -> tuple[str, bool]:
    """The words as one lower-case line without fillers or lead-ins; and whether the
    question was put to the companion's memory ("do you remember ...")."""
    t = text.lower().replace("’", "'").replace("‘", "'")
    t = re.sub(r"[^\w' -]+", " ", t).replace(" - ", " ")
    t = re.sub(r"(?<![a-z])'|'(?![a-z])", " ", t)
    # "like" as a filler ("what's, like, my dog called"), not the verb ("what do I like").
    t = re.sub(
        r"(?<!\bi )(?<!\bwe )(?<!\bdo )(?<!\bdid )(?<!\bwould )"
        r"\blike (?=my |i |the |what|who|where|when|how)",
        "",
        t,
    )
    t = _FILLERS.sub(" ", t)
    for pattern, replacement in _CONTRACTIONS:
        t = re.sub(pattern, replacement, t)
    t = " ".join(t.split())
    asked_memory = False
    while True:
        before = t
        t = _LEAD_INS.sub("", t).strip()
        if m := _MEMORY_LEAD.match(t):
            asked_memory = True
            t = t[m.end() :].strip()
        t = re.sub(r"^(?:me|if you know|if you remember) ", "", t)
        if t == before:
            break
    t = re.sub(r" (?:do you (?:know|remember)|can you remember|again|then|now|lol|haha)$", "", t)
    t = re.sub(r" (?:already|yet|ever|these days|nowadays|at the moment|right now|for me)$", "", t)
    return t.strip(), asked_memory


def _rel(word: str) -> str:
    word = _PLURALS.get(word, word)
    if word.endswith("'s") or word.endswith("s'"):
        word = word[:-2]
    if word not in _RELATIONS and word.endswith("s") and word[:-1] in _RELATIONS:
        word = word[:-1]
    return _RELATIONS.get(word, word)


_NOT_NAMES: Final = frozenset(
    str.split(
        """the a an that this it he she they them him her you your my our his their what which
        there here going happening wrong up next up"""
    )
)
_TOPIC_TARGETS: Final = (
    (re.compile(r"^(?:my )?(?:job|work|career|workplace|office|employer)$"), "work"),
    (re.compile(r"^(?:where i (?:live|am living)|my (?:home|house|flat|address))$"), "home"),
    (re.compile(r"^(?:where i (?:was born|grew up|am from|come from)|my hometown)$"), "hometown"),
    (re.compile(r"^my (?:allergies|allergy)$|^what i am allergic to$"), "allergy"),
    (re.compile(r"^my (?:hobbies|hobby|interests)$"), "hobby"),
    (re.compile(r"^my name$"), "name"),
    (re.compile(r"^my nickname$"), "preferred_name"),
    (re.compile(r"^(?:my age|how old i am)$"), "age"),
)  # fmt: skip


_TRAIT_RULES: Final = tuple(
    re.compile(rule)
    for rule in (
        rf"^(?:what is|what are|what was) {_MY} {_REL} like$",
        rf"^what (?:does|do|did) {_MY} {_REL} look like$",
        rf"^what (?:kind|sort|type|breed|colou?r) (?:of \w+ )?(?:is|are) {_MY} {_REL}$",
        rf"^what (?:kind|sort|type|breed) of {_REL} (?:do|did) (?:i|we) have$",
    )
)


_NOT_LIFE_VERBS: Final = frozenset(str.split("do need mean think want say ask know expect call"))
"""After "what/which ... do I": asking for advice or a meaning, not for what they told."""
_DECIDING_VERBS: Final = frozenset(str.split("get make try choose pick buy bring wear cook"))
"""After "what ... do I" (not "did I"): a decision to help with ("what gift do I get")."""
_NOT_ASKING: Final = ("why ", "how come ", "how do i ", "should i ")
"""Venting and asking for advice, not asking what was said."""


def recognise(text: str) -> Question | None:
    """The question about the user's own life ``text`` is, or None (general knowledge, a
    question about the companion, venting, a statement, a memory command)."""
    t, asked_memory = _norm(text)
    if not t or len(t.split()) > 20 or t.startswith(_NOT_ASKING):
        return None
    question = _question(t) or _embedded(t)
    if question is None and asked_memory:
        question = _remembered(t)
    return question


def _question(t: str) -> Question | None:
    """The rules, most specific first."""
    if m := re.match(
        r"^what (?:did|have) you (?:tell|told|say|said|suggest|suggested|advise|advised|"
        r"recommend|recommended)(?: to)?(?: me)?(?: about| regarding| on| for| of)? (?P<topic>.+)$",
        t,
    ):
        return Question("said", _topic(m["topic"]))
    if m := re.match(
        r"^(?:what )?(?:did|have) i (?:ever )?(?:tell|told|mention|mentioned|say|said|talk|"
        r"talked|tell you)(?: to)?(?: you)?(?: anything)? (?:about|of|regarding) (?P<topic>.+)$"
        r"|^(?:did|have) i (?:ever )?(?:mention|mentioned) (?P<topic2>(?:my|our) .+|[a-z][\w'-]*)$",
        t,
    ):
        return _about(m["topic"] or m["topic2"])
    if m := re.match(
        r"^what (?:do|else do) you (?:know|remember) about (?P<topic>(?:my|our) .+)$", t
    ):
        return _about(m["topic"])
    # Names.
    if re.match(r"^(?:what is|do you know) my (?:real |full |first )?name$|^what am i called$", t):
        return Question("name")
    if re.match(
        r"^what is my (?:nickname|preferred name)$"
        r"|^what (?:do|did) (?:i|people|my friends|everyone|they|you) (?:like to |prefer to )?"
        r"(?:be )?(?:call me|called|go by)$"
        r"|^what (?:should|do|did i (?:say|tell you) to) (?:you )?call me$"
        r"|^what (?:name )?do i go by$",
        t,
    ):
        return Question("preferred_name")
    if re.match(r"^(?:how old am i|what is my age|how old did i (?:say|tell you) i am)$", t):
        return Question("age")
    # People and pets.
    if m := re.match(
        rf"^(?:what|who) (?:is|are|was|were) (?:the names? of )?{_MY} {_REL}"
        r"(?: (?:names?|called|named|name again))?$",
        t,
    ):
        return Question("relation", _rel(m["rel"]))
    # "what's the dog called": at home, the dog is theirs.
    if m := re.match(rf"^what is the (?P<rel>{_PET_WORDS})(?:'s)? (?:called|named|name)$", t):
        return Question("relation", _rel(m["rel"]))
    if m := re.match(rf"^what (?:did|do) (?:i|we) (?:call|name) {_MY} {_REL}$", t):
        return Question("relation", _rel(m["rel"]))
    for pattern in _TRAIT_RULES:
        if (m := pattern.match(t)) and _rel(m["rel"]) in _RELATIONS.values():
            return Question("trait", _rel(m["rel"]))
    # Places, work.
    if re.match(
        r"^where (?:was i born|did i grow up|am i from|do i come from|did i come from|"
        r"am i originally from|was i raised)$"
        r"|^what (?:is|was) my (?:hometown|birthplace|place of birth)$|^where is my hometown$"
        r"|^what (?:town|city|country|place) (?:was i born in|did i grow up in|am i from|"
        r"do i come from|was i raised in)$",
        t,
    ):
        return Question("hometown")
    if re.match(
        r"^where (?:do|did) i (?:live|stay)(?: now| these days)?$|^where am i (?:living|staying)$"
        r"|^where did i move(?: to)?$|^where is (?:home|my home|my house|my flat|my apartment)$"
        r"|^what (?:city|town|country|place|street|area) do i live in$|^what is my address$"
        r"|^what (?:city|town|country|place) am i (?:in|living in|based in)$",
        t,
    ):
        return Question("home")
    if re.match(
        r"^what (?:do|did) i do for (?:work|a living|my job|a job|money)$|^what do i work as$"
        r"|^what (?:is|was) my (?:job|work|occupation|profession|career|job title|role|workplace|"
        r"line of work)$"
        r"|^where do i work$|^who do i work for$|^what (?:\w+ )?do i work (?:at|for|in)$"
        r"|^what did i (?:say|tell you) i do for (?:work|a living)$"
        r"|^where is my (?:job|work|office)$",
        t,
    ):
        return Question("work", "work")
    # Health, tastes, hobbies.
    if re.match(
        r"^what (?:\w+ )?am i allergic to$|^do i have (?:any )?allerg(?:y|ies)$"
        r"|^(?:is there )?anything i am allergic to$"
        r"|^what (?:are|is) my allerg(?:y|ies)$|^what allergies do i have$",
        t,
    ):
        return Question("allergy")
    if m := re.match(r"^am i allergic to (?P<thing>.+)$", t):
        if m["thing"] in ("anything", "something", "any food", "any foods", "anything at all"):
            return Question("allergy")
        return Question("allergy", m["thing"], yes_no=True)
    if m := re.match(
        r"^what (?:do|did) i (?P<pol>like|love|enjoy|adore|hate|dislike|not like|detest|"
        r"not enjoy|can't stand)(?: to (?P<dom>eat|drink|do|watch|read|listen to|cook|play)|"
        r" (?P<ing>eating|drinking|doing|watching|reading|listening to|cooking|playing))?$"
        r"|^what (?:kind of |sort of )?(?P<dom2>food|foods|drink|drinks|music|films|movies|"
        r"books|shows|snacks|dishes) (?:do|did) i (?P<pol2>like|love|enjoy|hate|dislike|"
        r"not like|can't stand)$",
        t,
    ):
        pol = m["pol"] or m["pol2"] or ""
        polarity = "dislike" if pol in ("hate", "dislike", "not like", "detest", "not enjoy",
                                        "can't stand") else "like"  # fmt: skip
        if m["ing"] == "doing":
            return Question("hobby")
        ing = {"eating": "eat", "drinking": "drink", "cooking": "cook"}.get(m["ing"] or "", "")
        return Question("taste", m["dom"] or m["dom2"] or ing, polarity=polarity)
    if m := re.match(
        r"^what (?:kind of |sort of )?(?P<dom>food|foods|drink|drinks|music|films|movies|books"
        r"|shows|snacks|dishes|things) (?:can't|can not|cannot|do not|did not) i (?:stand|like)$",
        t,
    ):
        return Question("taste", m["dom"], polarity="dislike")
    if m := re.match(r"^what (?:is|are) my favourite (?P<dom>[\w ]+?)s?$", t):
        said = f"what your favourite {m['dom']} is"
        return Question("taste", m["dom"], polarity="like", phrase=said)
    m = re.match(r"^do i (?:like|love|enjoy|hate) (?P<thing>[\w' ]+)$", t)
    if m and m["thing"].split()[0] not in _NOT_NAMES:
        return Question("taste", m["thing"], yes_no=True)
    if re.match(
        r"^what (?:are|is) my (?:hobbies|hobby|interests|pastimes)$|^what do i do for fun$"
        r"|^what do i (?:do|like doing|like to do) (?:in my (?:free|spare) time|for fun|"
        r"to keep fit|for exercise|to relax|at the weekends?)$"
        r"|^what (?:sports?|instruments?|games?) do i (?:play|do)$|^what am i into$",
        t,
    ):
        return Question("hobby")
    # Dates.
    if m := re.match(
        r"^(?:when|what day|what date|what time) (?:is|was|are|were) (?P<what>(?:my|our) .+|"
        r"[a-z]+'s (?:birthday|anniversary|wedding|graduation|party|funeral|move|surgery|"
        r"operation|exam|interview|flight|trip))$"
        r"|^when (?:do|did|am) i (?P<what2>(?:have|see|start|go|fly|leave|get|move|finish|"
        r"travel|meet|graduate|going|seeing|meeting|visiting|flying|leaving|starting|having|"
        r"getting|moving)\b.+)$",
        t,
    ):
        what = (m["what"] or m["what2"] or "").removesuffix(" coming up").strip()
        what = re.sub(r"^(?:my|our) ", "", what)
        if go := re.match(rf"^(?P<rel>{_REL_WORDS}) (?P<verb>\w+ing)\b(?P<rest>.*)$", what):
            # "when is my sister coming (over)": her coming, said back as it was asked.
            said = f"when your {go['rel']} is {go['verb']}{go['rest']}"
            return Question("when", f"{go['rel']}'s {go['verb']}{go['rest']}", phrase=said)
        return Question("when", what)
    m = re.match(r"^when (?:is|was|are) (?P<who>[a-z][\w'-]*) (?P<verb>\w+ing)\b(?P<rest>.*)$", t)
    if m and m["who"] not in _NOT_NAMES and m["who"] not in _STOP:
        # "when is Sam moving": someone by name, perhaps anyone: unknown is left to the model.
        said = f"when {m['who'].title()} is {m['verb']}{m['rest']}"
        return Question("when", f"{m['who']}'s {m['verb']}{m['rest']}", personal=False, phrase=said)
    if m := re.match(
        rf"^when (?:does|will|did|is) {_MY} (?P<whose>{_REL_WORDS}|[a-z]+) (?P<verb>\w+)(?: .*)?$",
        t,
    ):
        whose, verb = m["whose"], m["verb"]
        said = f"when your {whose} {verb}{'' if verb.endswith('s') else 's'}"
        if re.fullmatch(_REL_WORDS, whose):
            return Question("when", f"{whose}'s {verb}", phrase=said)
        return Question("when", whose, phrase=said)
    if m := re.match(
        r"^where (?:did|do) i (?:go to|study|studied|go) (?:at )?(?P<what>school|college|"
        r"university|uni|high school|secondary school)$",
        t,
    ):
        return Question("about", m["what"], phrase=f"where you went to {m['what']}")
    if m := re.match(
        rf"^what am i doing {_DAYS}$|^what (?:do|have) i (?:got |have )?(?:on |planned |going on )?"
        rf"{_DAYS.replace('?P<day>', '?P<day2>')}$"
        rf"|^do i have (?:anything|something|plans) (?:on |planned |going on )?"
        rf"{_DAYS.replace('?P<day>', '?P<day3>')}$|^what are my plans(?: for (?P<day4>.+))?$",
        t,
    ):
        day = m["day"] or m["day2"] or m["day3"] or m["day4"] or ""
        return Question("plans", day)
    if re.match(
        r"^what (?:do|did) i study$|^what am i studying$|^what is my (?:degree|course)$", t
    ):
        return Question("about", "study", phrase="what you study")
    m = re.match(r"^where is (?P<who>[a-z][\w'-]*) (?P<verb>\w+ing)(?: to)?$", t)
    if m and m["who"] not in _NOT_NAMES and m["who"] not in _STOP:
        said = f"where {m['who'].title()} is {m['verb']}"
        return Question("about", f"{m['who']} {m['verb']}", personal=False, phrase=said)
    # Anything else of theirs ("what car do I drive", "which team do I support"): what they
    # have not told is not guessed.
    m = re.match(
        r"^(?:what|which) (?:kind of |sort of |type of )?(?P<thing>[a-z][\w'-]*(?: [a-z][\w'-]*)?)"
        r" (?P<tense>do|did) (?:i|we) (?P<verb>[a-z]+)(?P<rest>(?: [a-z][\w'-]*){0,3})$",
        t,
    )
    not_life = _NOT_LIFE_VERBS | (_DECIDING_VERBS if m and m["tense"] == "do" else frozenset())
    if m and m["verb"] not in not_life and m["thing"].split()[0] not in _STOP:
        phrase = f"the {m['thing']} you {m['verb']}{m['rest'] or ''}"
        return Question("about", m["thing"], phrase=phrase)
    # A person by name: may be general knowledge ("who is Einstein") unless memory knows them.
    m = re.match(r"^who (?:is|was) (?P<name>[a-z][\w'-]*(?: [a-z][\w'-]*)?)$", t)
    if m and m["name"].split()[0] not in _NOT_NAMES and not re.match(_REL_WORDS + "$", m["name"]):
        return Question("who", m["name"], personal=False)
    return None


def _embedded(t: str) -> Question | None:
    """An embedded question, after "do you remember", "tell me", "remind me": "where I was
    born", "what my dog is called"."""
    for rule in (
        rf"^(?:what |who )?{_MY} {_REL}(?: names?| is called| is named| called| are called)$",
        rf"^(?:what|who) {_MY} {_REL} (?:is|are|was) (?:called|named)$",
    ):
        if m := re.match(rule, t):
            return Question("relation", _rel(m["rel"]))
    if re.match(r"^where i (?:was born|grew up|am from|come from)$", t):
        return Question("hometown")
    if re.match(r"^where i (?:live|am living)$", t):
        return Question("home")
    if re.match(r"^(?:what i do for (?:work|a living)|where i work|what my job is|what i do)$", t):
        return Question("work", "work")
    if re.match(r"^how old i am$", t):
        return Question("age")
    if re.match(r"^what i am allergic to$", t):
        return Question("allergy")
    if m := re.match(r"^when (?P<what>(?:my|our) .+) is$", t):
        return Question("when", re.sub(r"^(?:my|our) ", "", m["what"]))
    if m := re.match(r"^who (?P<name>[a-z][\w'-]*) is$", t):
        return Question("who", m["name"])
    return None


def _remembered(t: str) -> Question | None:
    """After "do you remember/know ...": what they told ("what I said about work") or a
    topic ("my sister", "Priya")."""
    if m := re.match(
        r"^(?:what|anything|everything|when) i (?:told|said|mentioned|said to)(?: to)?(?: you)?"
        r"(?: about| of| regarding)? (?P<topic>.+)$",
        t,
    ):
        return _about(m["topic"])
    m = re.match(r"^(?:about )?(?P<topic>(?:my|our) [\w' ]+|[a-z][\w'-]*)$", t)
    if m and m["topic"] not in _NOT_NAMES and m["topic"] not in ("me", "that", "this", "it"):
        return _about(m["topic"])
    return None


def _topic(topic: str) -> str:
    return re.sub(r"^(?:about |the |that |this )", "", topic).strip()


def _about(topic: str) -> Question | None:
    """A question about what they said about ``topic``: a known kind of thing ("my job"),
    someone ("my sister", "Priya"), or anything else."""
    topic = _topic(topic)
    if not topic or topic in ("me", "myself", "it", "that", "this", "anything", "everything"):
        return None
    for pattern, target in _TOPIC_TARGETS:
        if pattern.match(topic):
            return Question(target, "work" if target == "work" else "", told=True)
    if m := re.match(rf"^{_MY} {_REL}$", topic):
        return Question("about", _rel(m["rel"]))
    mine = re.match(r"^(?:my|our) ", topic) is not None
    # Not theirs, and one word (the only kind taken after "do you remember"): a name.
    phrase = _yours(topic) if mine or " " in topic else topic.title()
    return Question("about", re.sub(r"^(?:my|our) ", "", topic), phrase=phrase)


# -- finding the answer ---------------------------------------------------------------------


@dataclass(frozen=True)
class Said:
    """A sentence from a stored turn that answers the question, with when it was said."""

    text: str
    when: datetime
    speaker: str
    turn_id: int | None = None


@dataclass(frozen=True)
class Evidence:
    """What memory holds that answers a question: facts first, then sentences said."""

    facts: tuple[Fact, ...] = ()
    said: tuple[Said, ...] = ()
    call_name: str = ""
    """The name the user likes to be called, when known."""

    def __bool__(self) -> bool:
        return bool(self.facts or self.said)


_STEM_END: Final = re.compile(r"(?:'s|s'|ies|es|s|ing|ed)$")


def _stem(word: str) -> str:
    word = word.lower().strip("'")
    if len(word) <= 3:
        return word
    return _STEM_END.sub("", word) or word


_STOP: Final = frozenset(
    str.split(
        """a an the my our your i me you is are was were be been to of in on at for with and or
        about what when where who how do did does have has had it that this there their they
        he she his her its am going get got some any next last this coming up"""
    )
)


def _content(text: str) -> set[str]:
    return {_stem(w) for w in re.findall(r"[\w']+", text.lower()) if w not in _STOP}


# Words for the same thing that share no stem ("wedding" is said "getting married").
_SAME: Final = tuple(
    frozenset(_stem(w) for w in group.split())
    for group in (
        "wedding married marry marrying",
        "graduation graduating graduate",
        "move moving moved relocating",
        "appointment appt",
        "operation surgery",
        "exam test",
        "trip holiday vacation travel travelling",
        "job work working career",
    )
)


def _overlap(wanted: set[str], have: set[str]) -> set[str]:
    """The words of ``wanted`` found in ``have``: the same stem, a shared beginning of five
    letters ("graduation", "graduating"), or a word for the same thing."""
    found: set[str] = set()
    for w in wanted:
        same = {w}.union(*(group for group in _SAME if w in group))
        for h in have:
            if h in same or (len(w) >= 5 and len(h) >= 5 and w[:5] == h[:5]):
                found.add(w)
                break
    return found


def _keys_for(rel: str) -> tuple[str, ...]:
    return _REL_GROUPS.get(rel, (rel,))


def find(question: Question, memory: MemoryStore, exclude_turn: int | None = None) -> Evidence:
    """What memory holds that answers ``question``: valid facts about it, else sentences
    from the user's own turns (the companion's, only for "what did you tell me")."""
    facts = memory.known_facts()
    call = [f.value for f in facts if f.kind == "preferred_name"] or [
        f.value for f in facts if f.kind == "name"
    ]
    call_name = call[-1] if call else ""
    if question.target == "plans":
        answering = _planned(question.subject, facts, memory.now())
    else:
        answering = _facts_for(question, facts)
    # One of each thing said: a fact learnt twice under two keys is said once.
    found = list({_say(f).lower(): f for f in answering}.values())
    said: tuple[Said, ...] = ()
    if not found:
        said = _said_for(question, memory, exclude_turn)
    return Evidence(tuple(found[-MAX_FACTS:][::-1]), said, call_name)


def _rel_of(fact: Fact) -> str:
    return fact.key.split(":", 1)[1] if ":" in fact.key else ""


def _facts_for(q: Question, facts: Sequence[Fact]) -> list[Fact]:
    """The facts answering ``q``, oldest first (the newest is said first)."""
    match q.target:
        case "name":
            return (
                [f for f in facts if f.kind == "name"]
                or [f for f in facts if f.kind == "preferred_name"]
            )[-1:]
        case "preferred_name":
            return [f for f in facts if f.kind == "preferred_name"][-1:]
        case "age":
            return [f for f in facts if f.kind == "age"][-1:]
        case "relation":
            keys = {f"relation:{k}" for k in _keys_for(q.subject)}
            return [f for f in facts if f.key in keys]
        case "trait":
            keys = {f"trait:{k}" for k in _keys_for(q.subject)}
            return [f for f in facts if f.key in keys]
        case "hometown":
            return [f for f in facts if f.kind == "location" and f.key == "hometown"][-1:]
        case "home":
            return [f for f in facts if f.kind == "location" and f.key == "home"][-1:]
        case "work":
            # The job first, then where: "your job is a nurse and you work at St. Mary's".
            work = sorted((f for f in facts if f.kind == "work"), key=lambda f: f.key != "work")
            return work[::-1]
        case "allergy":
            found = [f for f in facts if f.kind == "allergy"]
            if q.yes_no:
                wanted = _content(q.subject)
                return [f for f in found if wanted & _content(f.value + " " + f.key)]
            return found
        case "taste":
            kinds = {q.polarity} if q.polarity else {"like", "dislike"}
            found = [f for f in facts if f.kind in kinds]
            if q.yes_no:
                wanted = _content(q.subject)
                return [f for f in found if wanted & _content(f.value)]
            if q.subject in ("eat", "food", "foods", "cook", "snacks", "dishes"):
                return [f for f in found if _is_food(f.value)]
            if q.subject and q.subject not in ("do",):
                wanted = _content(q.subject)
                return [f for f in found if wanted & _content(f.value + " " + f.key)]
            return found
        case "hobby":
            return [f for f in facts if f.kind == "hobby"]
        case "when":
            return _dated(q.subject, facts)
        case "about":
            rels = set(_keys_for(_rel(q.subject)))
            wanted = _content(q.subject)
            return [
                f
                for f in _mentioning(facts, wanted)
                if _rel_of(f) in rels or (wanted and wanted <= _content(f.value + " " + _rel_of(f)))
            ]
        case "who":
            wanted = _content(q.subject)
            return [
                f
                for f in _mentioning(facts, wanted)
                if f.kind == "relation" and wanted <= _content(f.value)
            ]
        case _:
            return []


def _planned(day: str, facts: Sequence[Fact], now: datetime) -> list[Fact]:
    """Plans and events on the day asked about ("tomorrow", "on Friday", "this weekend",
    "next week"), or the next ones coming when no day was said; soonest last."""
    from voice_companion.memory.facts import parse_when  # see _say: not at load

    today = now.date()
    day = re.sub(r"^the weekend$", "this weekend", day)
    start = parse_when(day, now) if day else None
    if start is None:
        first, last = today, today + timedelta(days=366)
    elif "weekend" in day:
        first, last = start, start + timedelta(days=1)
    elif "week" in day:
        first = start - timedelta(days=start.weekday())
        last = first + timedelta(days=6)
    else:
        first = last = start
    dated = [
        f
        for f in facts
        if f.kind in ("plan", "event", "birthday", "anniversary")
        and f.event_date is not None
        and first <= f.event_date <= last
    ]
    return sorted(dated, key=lambda f: f.event_date or today, reverse=True)


def _mentioning(facts: Sequence[Fact], stems: set[str]) -> list[Fact]:
    """The facts whose words could hold any of ``stems`` (a quick look before the words are
    compared: 10,000 facts stay fast)."""
    if not stems:
        return list(facts)
    return [f for f in facts if any(s in f"{f.key} {f.value}".lower() for s in stems)]


def _dated(subject: str, facts: Sequence[Fact]) -> list[Fact]:
    """Events, plans, birthdays and anniversaries that ``subject`` names."""
    words = subject.split()
    for kind in ("birthday", "anniversary"):
        if kind in words:
            before = subject.split(kind)[0].strip()
            whose = before.removesuffix("'s").strip() if before else "self"
            whose = _rel(whose) if whose != "self" else whose
            keys = {f"{kind}:{whose}", f"{kind}:{whose.lower()}"}
            found = [f for f in facts if f.kind == kind and f.key in keys]
            if found or whose != "self":
                return found[-1:]
    wanted = _content(subject)
    if not wanted:
        return []
    head = _stem(words[-1]) if words else ""
    scored: list[tuple[int, Fact]] = []
    for f in facts:
        if f.kind not in ("event", "plan", "birthday", "anniversary"):
            continue
        have = _content(f.value + " " + f.key.split(":", 1)[-1])
        shared = _overlap(wanted, have)
        # The thing itself must match ("graduation"), not only whose it is ("brother").
        if shared and (head in shared or len(wanted) == 1):
            scored.append((len(shared), f))
    if not scored:
        return []
    best = max(n for n, _ in scored)
    return [f for n, f in scored if n == best][-MAX_FACTS:]


# Words in a sentence that show it answers a target; the subject's own words must be there too.
_CUES: Final = {
    "name": r"\bmy name(?:'s| is)\b|\bcall me\b|\bi(?:'m| am) called\b",
    "preferred_name": r"\bcall me\b|\bnickname\b|\bgo by\b",
    "age": r"\byears? old\b|\bi(?:'m| am) \d{1,3}\b|\bturn(?:ed|ing)? \d{1,3}\b",
    "relation": r"\b(?:called|named|name)\b",
    "trait": r".",
    "hometown": r"\bborn\b|\bgrew up\b|\bgrowing up\b|\bi(?:'m| am) (?:originally )?from\b|"
    r"\bhometown\b|\bhome town\b|\braised\b",
    "home": r"\bi (?:now )?live\b|\bliving in\b|\bmoved to\b|\bmy (?:house|flat|apartment)\b",
    "work": r"\bwork\b|\bworking\b|\bjob\b|\boffice\b|\bshift\b|\bcareer\b",
    "allergy": r"\ballerg",
    "taste": r"\b(?:love|like|enjoy|adore|hate|dislike|favou?rite|can't stand|detest)\b",
    "hobby": r"\bhobby\b|\bhobbies\b|\btook up\b|\bgave up\b|\bfor fun\b|\bi(?:'m| am) into\b",
    "when": r"\b(?:today|tonight|tomorrow|weekend|next week|next month|monday|tuesday|wednesday|"
    r"thursday|friday|saturday|sunday|january|february|march|april|may|june|july|august|"
    r"september|october|november|december|spring|summer|autumn|fall|winter)\b|\b\d{1,2}(?:st|nd"
    r"|rd|th)\b",
    "plans": r"\b(?:going to|gonna|planning|plan|appointment|tomorrow|weekend|next week)\b",
    "about": r".",
    "who": r".",
    "said": r".",
}
_QUESTION_START: Final = re.compile(
    r"^(?:what|when|where|who|whom|whose|which|why|how|do|does|did|can|could|would|will|"
    r"should|is|are|am|have|has)\b",
    re.I,
)


def _said_for(q: Question, memory: MemoryStore, exclude_turn: int | None) -> tuple[Said, ...]:
    """Sentences of stored turns that answer ``q``: the user's own (the companion's own
    replies only when asked what it said), never a question, with the subject's words and a
    cue of the thing asked."""
    needed = _needed(q)
    if not needed and q.target not in _SUBJECTLESS:
        return ()
    speaker = "assistant" if q.target == "said" else "user"
    searched = sorted(set().union(*needed)) if needed else []
    query = " ".join([*searched, *_CUE_WORDS.get(q.target, ())])
    if not query.strip():
        return ()
    cue = re.compile("." if q.told else _CUES.get(q.target, "."), re.I)
    out: list[Said] = []
    for r in memory.said(query, TURNS_SEARCHED, speaker):
        if r.speaker != speaker or (exclude_turn is not None and r.turn_id == exclude_turn):
            continue
        for sentence in _sentences(r.text):
            if speaker == "user" and (sentence.endswith("?") or _QUESTION_START.match(sentence)):
                continue
            if recognise(sentence) is not None:
                continue
            have = {_stem(w) for w in re.findall(r"[\w']+", sentence.lower())}
            if not all(_overlap(words, have) for words in needed) or not cue.search(sentence):
                continue
            out.append(Said(sentence, r.when, r.speaker, r.turn_id))
            break
        if len(out) >= 2:
            break
    return tuple(out)


_SUBJECTLESS: Final = frozenset(("name", "preferred_name", "age", "hometown", "home", "allergy"))
_CUE_WORDS: Final = {
    "name": ("name", "call", "called"),
    "preferred_name": ("call", "nickname"),
    "age": ("years", "old"),
    "relation": ("called", "named", "name"),
    "hometown": ("born", "grew", "from", "hometown"),
    "home": ("live", "moved", "living"),
    "work": ("job", "working"),
    "allergy": ("allergic", "allergy"),
    "taste": ("love", "like", "hate", "favourite"),
    "hobby": ("hobby", "took", "gave"),
}


_WORK_WORDS: Final = frozenset(
    _stem(w)
    for w in str.split("work job working career office shift rota boss manager colleague coworker")
)


def _rel_words(rel: str) -> set[str]:
    """Every word said for a relation: "mother" is also "mum", "mom", "ma"."""
    words: set[str] = set()
    for key in _keys_for(rel):
        words |= {_stem(w) for w in key.split()}
        words |= {_stem(said) for said, same in _RELATIONS.items() if same == key}
    return words


def _needed(q: Question) -> list[set[str]]:
    """What a sentence must mention to answer ``q``: each set is one thing, said by any of
    its words ("brother's graduation": the brother, and the graduation)."""
    if q.target in ("relation", "trait"):
        return [_rel_words(q.subject)]
    if q.target == "taste" and q.subject in ("eat", "food", "foods", "cook", "drink"):
        return [{"eat", "food", "drink", "cook", "dish", "meal"} | _FOOD]
    if q.target in ("when", "about"):
        whose, _, what = q.subject.rpartition("'s ")
        parts: list[set[str]] = []
        if whose:
            rel = _rel(whose.split()[-1])
            parts.append(_rel_words(rel) if rel in _RELATIONS.values() else _content(whose))
        elif q.target == "about" and _rel(q.subject) in _RELATIONS.values():
            return [_rel_words(_rel(q.subject))]
        rest = _content(what)
        for words in [rest] if rest else []:
            parts.append(words.union(*(g for g in _SAME if words & g)))
        return parts
    if q.target == "work" and q.told:
        return [set(_WORK_WORDS)]
    if q.target in ("who", "said", "taste", "allergy", "hobby", "work"):
        words = _content(q.subject) if q.subject not in ("do", "") else set()
        return [words.union(*(g for g in _SAME if words & g))] if words else []
    return []


def _sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?])\s+|\n+", text.strip())
    return [p.strip() for p in parts if p.strip()]


_FOOD: Final = frozenset(
    str.split(
        """pizza pasta sushi curry curries chocolate cheese bread cake cakes ice cream burgers
        burger chips fries noodles ramen rice soup salad steak chicken fish tacos taco
        pancakes waffles cookies biscuits crisps sandwiches sandwich eggs bacon mushrooms
        olives tomatoes spinach broccoli carrots potatoes apples bananas strawberries mango
        avocado coriander cilantro garlic onions spicy food dumplings kebab lasagne lasagna
        spaghetti risotto pie pies fruit vegetables veg meat seafood prawns shrimp tofu
        hummus porridge cereal toast jam peanut butter peanuts nuts yoghurt yogurt coffee tea
        beer wine cider juice smoothies sweets candy desserts dessert thai indian chinese
        mexican italian japanese korean food"""
    )
)


def _is_food(value: str) -> bool:
    return bool(set(re.findall(r"[a-z]+", value.lower())) & _FOOD)


# -- saying it ------------------------------------------------------------------------------

_MONTHS: Final = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip
_WEEKDAYS: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def told_when(then: datetime, now: datetime) -> str:
    """When something was told, as it is said: "earlier today", "yesterday", "on Monday",
    "last Tuesday", "on 3 May" (with the year when it was another year)."""
    days = (
        (now.date() - then.astimezone(now.tzinfo).date()).days
        if now.tzinfo
        else (now.date() - then.date()).days
    )
    if days <= 0:
        return "earlier today"
    if days == 1:
        return "yesterday"
    weekday = _WEEKDAYS[then.weekday()]
    if days < 7:
        return f"on {weekday}" if then.weekday() < now.weekday() else f"last {weekday}"
    return "on " + _on_day(then.date(), now.date())


def _on_day(d: date, today: date) -> str:
    day = f"{d.day} {_MONTHS[d.month - 1]}"
    return day if d.year == today.year else f"{day} {d.year}"


def _say(fact: Fact) -> str:
    """The fact in the second person, by ``describe``, with the kinds it cannot phrase yet
    (facts of the newer schema in an older describe) said here."""
    # Imported here: memory.facts needs memory.store, which imports dialogue.mood and so this
    # package (dialogue/__init__ -> dialogue.dialogue -> here) while memory.db opens.
    from voice_companion.memory.facts import describe

    sentence = describe(fact, you=True)
    value = " ".join(fact.value.split())
    rel = _rel_of(fact)
    if fact.kind == "location" and fact.key == "hometown" and " live" in sentence:
        return f"you grew up in {value}"
    if fact.key == "workplace" and sentence.startswith("your job is"):
        return f"you work at {value}"
    if not sentence.startswith(f"{fact.key}:"):
        return sentence
    match fact.kind:
        case "allergy":
            return f"you're allergic to {value}"
        case "trait":
            return f"your {rel} is {value}"
        case "hobby":
            return f"you enjoy {value}"
        case "birthday" | "anniversary":
            whose = "your" if rel in ("self", "") else f"your {rel}'s"
            if rel not in _RELATIONS.values() and rel not in ("self", ""):
                whose = f"{rel.capitalize()}'s"
            return f"{whose} {fact.kind} is on {value}"
        case _:
            return f"your {rel or fact.kind} is {value}"


_PRONOUNS: Final = {
    "i": "you", "me": "you", "my": "your", "mine": "yours", "myself": "yourself",
    "i'm": "you're", "im": "you're", "i've": "you've", "i'd": "you'd", "i'll": "you'll",
    "we": "you", "us": "you", "our": "your", "ours": "yours", "we're": "you're",
    "you": "me", "your": "my", "yours": "mine", "you're": "I'm", "yourself": "myself",
}  # fmt: skip
_AFTER_YOU: Final = {"am": "are", "was": "were"}


def second_person(sentence: str) -> str:
    """What the user said, turned to be said back to them: "I grew up in Cork" -> "you grew
    up in Cork"; cut to a short clause."""
    words = sentence.strip().rstrip(".!?").split()
    out: list[str] = []
    for i, word in enumerate(words):
        core = word.strip(',;:"“”').lower().replace("’", "'")
        trail = word[len(word.rstrip(',;:"“”')) :]
        flipped = _PRONOUNS.get(core)
        if flipped is not None:
            if core == "you" and i == 0:
                flipped = "I"
            out.append(flipped + trail)
        elif core in _AFTER_YOU and out and out[-1].lower().rstrip(",") == "you":
            out.append(_AFTER_YOU[core] + trail)
        else:
            out.append(word.strip('"“”') if word.strip('"“”') else word)
    text = " ".join(out[:MAX_QUOTE_WORDS])
    if len(out) > MAX_QUOTE_WORDS:
        text = text.rsplit(",", 1)[0] if "," in text else text
    return text[:1].lower() + text[1:] if text[:2] != "I " else text


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _join(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _pick(seed: str, choices: Sequence[str]) -> str:
    """One of ``choices``, the same for the same question and answer (varied, not random)."""
    return choices[zlib.crc32(seed.encode()) % len(choices)]


def _soon(fact: Fact, today: date) -> str:
    if fact.event_date is None:
        return ""
    days = (fact.event_date - today).days
    if days == 0:
        return " That's today!"
    if days == 1:
        return " That's tomorrow."
    if 1 < days < 7:
        return f" That's this {_WEEKDAYS[fact.event_date.weekday()]}."
    return ""


def spoken(question: Question, evidence: Evidence, now: datetime) -> str:
    """The answer, said to the user, from ``evidence`` alone; when there is none, that it
    is not known, and a question back."""
    seed = f"{question.target}:{question.subject}:{len(evidence.facts)}:{len(evidence.said)}"
    name = evidence.call_name
    if question.target == "said":
        return _what_i_said(question, evidence, now, seed)
    if evidence.facts:
        return _from_facts(question, evidence.facts, now, seed, name)
    if evidence.said:
        said = evidence.said[0]
        quote = second_person(said.text)
        when = told_when(said.when, now)
        return _pick(
            seed + said.text,
            (
                f"You told me {when} that {quote}.",
                f"You mentioned {when} that {quote}.",
                f"{_cap(when)}, you told me that {quote}.",
            ),
        )
    return unknown(question, seed)


def _from_facts(q: Question, facts: Sequence[Fact], now: datetime, seed: str, name: str) -> str:
    if q.yes_no and q.target == "taste":
        fact = facts[0]
        body = _say(fact)
        return f"Yes, {body}." if fact.kind == "like" else f"Actually, {body}."
    if q.yes_no and q.target == "allergy":
        return f"Yes, {_say(facts[0])}. You told me {told_when(facts[0].valid_from, now)}."
    body = _join([_say(f) for f in facts])
    when = told_when(max(f.valid_from for f in facts), now)
    soon = _soon(facts[0], now.date()) if q.target in ("when", "plans") else ""
    seed += body
    choices = [
        f"{_cap(body)}.{soon}",
        f"{_cap(body)}. You told me {when}.{soon}",
        f"You told me {when}: {body}.{soon}",
        f"If I remember right, {body}.{soon}",
    ]
    if name and name.lower() not in body.lower():
        choices.append(f"{_cap(body)}, {name}.{soon}")
    return _pick(seed, choices)


def _what_i_said(q: Question, evidence: Evidence, now: datetime, seed: str) -> str:
    if not evidence.said:
        return f"I don't remember saying anything about {_yours(q.subject)}."
    said = evidence.said[0]
    words = said.text.split()
    quote = " ".join(words[:MAX_QUOTE_WORDS]).rstrip(".!?,")
    return f"{_cap(told_when(said.when, now))} I said: “{quote}.”"


def _yours(phrase: str) -> str:
    return re.sub(r"\bmy\b", "your", re.sub(r"\bme\b", "you", phrase))


def unknown(q: Question, seed: str = "") -> str:
    """That it is not known, and a question back: never a guess."""
    asked = {
        "name": ("your name", "What should I call you?"),
        "preferred_name": ("what you like to be called", "What should I call you?"),
        "age": ("how old you are", "How old are you, if you don't mind me asking?"),
        "hometown": ("where you grew up", "Where are you from?"),
        "home": ("where you live", "Where's home for you?"),
        "work": ("what you do for work", "What do you do?"),
        "allergy": ("about any allergies", "Are you allergic to anything?"),
        "hobby": ("about your hobbies", "What do you like doing?"),
        "plans": ("about any plans", "Have you got anything on?"),
    }
    if q.target == "relation":
        lead, ask_text = f"what your {q.subject} is called", "What's their name?"
    elif q.target == "trait":
        lead, ask_text = f"much about your {q.subject}", "What are they like?"
    elif q.target == "when":
        lead, ask_text = q.phrase or f"when your {q.subject} is", "When is it?"
    elif q.target == "taste":
        if q.yes_no:
            lead, ask_text = f"whether you like {q.subject}", "Do you?"
        else:
            what = "you like" if q.polarity != "dislike" else "you don't like"
            dom = f" to {q.subject}" if q.subject in ("eat", "drink", "watch", "read", "do") else ""
            ask = "What do you love?" if q.polarity != "dislike" else "What can't you stand?"
            if q.subject and not dom and q.subject not in ("do", "food", "foods"):
                what = f"{q.subject} {what}"  # "what music you like"
            lead, ask_text = q.phrase or f"what {what}{dom}", "What is it?" if q.phrase else ask
    elif q.target == "plans":
        when = f" for {q.subject}" if q.subject and not q.subject.startswith("on ") else ""
        lead, ask_text = (
            f"about any plans{when or (' ' + q.subject if q.subject else '')}",
            ("Have you got anything on?"),
        )
    elif q.target == "allergy" and q.yes_no:
        lead, ask_text = f"that you're allergic to {q.subject}", "Are you?"
    elif q.target in ("about", "who"):
        phrase = q.subject.title() if q.target == "who" else q.phrase or _yours_topic(q.subject)
        return _pick(
            seed + phrase,
            (
                f"I don't remember you telling me about {phrase}. Would you like to?",
                f"I don't think you've told me about {phrase} yet. What should I know?",
            ),
        )
    else:
        lead, ask_text = asked.get(q.target, ("that", "Would you tell me?"))
    return _pick(
        seed + lead,
        (
            f"I don't think you've told me {lead}. {ask_text}",
            f"Hmm, I don't know {lead.removeprefix('about ')} yet. {ask_text}"
            if not lead.startswith(("much", "that", "whether"))
            else f"I don't think you've told me {lead}. {ask_text}",
        ),
    )


def _yours_topic(subject: str) -> str:
    if subject in _RELATIONS.values() or subject in _REL_GROUPS:
        return f"your {subject}"
    return _yours(subject)


# -- evidence for a capable model -----------------------------------------------------------


def evidence_lines(question: Question, evidence: Evidence, now: datetime) -> list[str]:
    """Plain second-person lines for a capable model's per-turn context: what memory holds
    that answers the question, with when it was told; or that it is not known."""
    today = now.date()
    lines: list[str] = []
    for fact in evidence.facts:
        told = _on_day(fact.valid_from.date(), today)
        lines.append(f"{EVIDENCE_PREFIX} {_say(fact)} (told on {told}).")
    for said in evidence.said:
        told = _on_day(said.when.date(), today)
        if said.speaker == "assistant":
            lines.append(f"{EVIDENCE_PREFIX} on {told} you said: “{said.text}”.")
        else:
            lines.append(f"{EVIDENCE_PREFIX} on {told} they told you: “{said.text}”.")
    if not lines and question.personal:
        lines.append(UNKNOWN_LINE)
    return lines
