"""Memory commands said in conversation, recognised before the model sees them.

"What do you remember about me?", "forget that" (the last thing the user said), and "forget
about <topic>" (which asks to confirm first). Each is a frozen value; ``parse`` is pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class RecallAboutMe:
    """The user asked what the companion remembers about them."""


@dataclass(frozen=True)
class ForgetLast:
    """The user asked to forget the last thing they said."""


@dataclass(frozen=True)
class ForgetTopic:
    """The user asked to forget everything about ``topic``."""

    topic: str
    phrase: str = ""
    """How to say the topic back to the user ("my sister" -> "your sister")."""


@dataclass(frozen=True)
class Confirm:
    """Yes, to a question the companion asked."""


@dataclass(frozen=True)
class Decline:
    """No, to a question the companion asked."""


Command = RecallAboutMe | ForgetLast | ForgetTopic | Confirm | Decline

_FILLER: Final = r"(?:so|okay|ok|well|and|like|oh|right|alright|now|just|actually|honestly|anyway)"
_GREETING: Final = (
    r"(?:hey|hi|hello|hiya|yo|howdy|morning|good (?:morning|afternoon|evening)"
    r"|(?:it's|its|it is) (?:just )?me(?: again)?|me again|i'm back|im back|i am back)"
)
_OPENING: Final = rf"(?:(?:{_GREETING})(?: there| again| you| \w+)? |{_FILLER} )*"
"""Greetings and fillers before a request ("hey mira it's me again so ..."); one word after a
greeting is allowed, for the companion's name."""
_ABOUT_ME: Final = r"about me|of me|on me"
_RECALL: Final = re.compile(
    rf"^{_OPENING}(?:"
    rf"(?:(?:can|could|would|will) you (?:please )?)?(?:tell me )?"
    rf"(?:what|what else|how much|what all) (?:do|did|does|have|can) (?:you|u) (?:still |actually "
    r"|really )?(?:remember|know|recall|learn|learned|learnt|remembered|find out|found out|got)"
    rf" (?:{_ABOUT_ME})"
    rf"|(?:(?:can|could|would|will) you (?:please )?)?tell me (?:what|everything|all|anything)"
    rf" (?:that )?(?:you )?(?:remember|know|recall) (?:{_ABOUT_ME})"
    rf"|what do you remember|what's in your memory(?: {_ABOUT_ME})?"
    rf"|(?:do|did) (?:you|u) (?:still |even )?(?:remember|recall|know) (?:anything )?(?:about )?me"
    rf"|(?:do (?:you|u) )?(?:still )?(?:remember|know) who i am"
    rf"|what (?:have|did) you (?:remembered|learned|learnt|found out|kept) (?:{_ABOUT_ME})"
    r")(?: (?:so far|again|then|now|already|please|at all|by now|anyway|yet|exactly|in total))*$"
)
"""The general "what do you know about me": never a question about one thing ("do you
remember what I told you about my dog", "what's my dog called"), which the model answers
from memory."""
_HESITATION: Final = re.compile(r"\b(?:um+|uh+|erm+|er|hm+|mm+)\b")
_FORGET_LAST: Final = re.compile(
    r"^(?:please |okay |ok |actually |no |oh )*"
    r"(?:forget (?:that|this|what i (?:just )?said|i said that|the last thing i said)"
    r"|don't remember that|do not remember that|delete that|erase that)"
    r"(?: please)?$"
)
_FORGET_TOPIC: Final = re.compile(
    r"^(?:please |okay |ok |can you |could you |i want you to )*"
    r"(?:forget|erase|delete) (?:everything |all |anything )?(?:you know |you remember )?"
    r"about (?P<topic>.+?)(?: please)?$",
    re.I,
)
_YES: Final = frozenset(
    str.split("yes yeah yep yup sure ok okay please do it go ahead correct right absolutely")
)
_NO: Final = frozenset(str.split("no nope don't dont not cancel stop keep never wait"))


def normalise(text: str) -> str:
    """Lower case, apostrophes kept, other punctuation dropped, spaces collapsed."""
    text = text.lower().replace("’", "'")
    return " ".join(re.sub(r"[^\w' ]+", " ", text).split())


def parse(text: str, awaiting_answer: bool = False) -> Command | None:
    """The memory command ``text`` is, or None for ordinary conversation.

    ``awaiting_answer``: the companion just asked a yes/no question, so a short yes or no is
    an answer to it.
    """
    said = normalise(text)
    if not said:
        return None
    if awaiting_answer:
        words = said.split()
        if len(words) <= 5:
            if words[0] in _NO or "don't" in words or "not" in words:
                return Decline()
            if words[0] in _YES or said in ("please do", "do it", "go ahead"):
                return Confirm()
    if _RECALL.match(" ".join(_HESITATION.sub(" ", said).split())):
        return RecallAboutMe()
    if _FORGET_LAST.match(said):
        return ForgetLast()
    # The topic keeps the user's capitals ("Tom"), so match a copy with them.
    cased = " ".join(re.sub(r"[^\w' ]+", " ", text.replace("’", "'")).split())
    if m := _FORGET_TOPIC.match(cased):
        raw = m.group("topic")
        topic = re.sub(r"^(?:my|the|our|that|this) ", "", raw, flags=re.I).strip()
        if topic and topic.lower() not in ("me", "it", "that", "this", "everything"):
            phrase = re.sub(r"\bmy\b", "your", raw, flags=re.I)
            return ForgetTopic(topic, re.sub(r"\bme\b", "you", phrase, flags=re.I))
    return None
