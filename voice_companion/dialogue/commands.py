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

_RECALL: Final = re.compile(
    r"^(?:so |hey |okay |ok |and )?(?:(?:can|could) you tell me )?"
    r"(?:what|tell me what) (?:do |else do )?(?:you|u) (?:remember|know|recall) about me"
    r"(?: so far)?$"
    r"|^what have you (?:remembered|learned|learnt) about me$"
    r"|^(?:do you remember|what do you know) (?:anything )?about me$"
)
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
    if _RECALL.match(said):
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
