"""What the user's words say about their mood, beyond a word-by-word lexicon.

VADER scores words; people say how they are in phrases: "rough day, my boss shouted at me",
"nobody ever calls", "my back is killing me", "I barely slept", "I don't want to wake up",
"oh great, the boiler broke again". These rules catch the common phrasings of distress
(bad days, loneliness, pain, exhaustion, wanting to die), good news, irony, and negated
negatives ("it wasn't a bad day" is not a good day either); a question is not a mood.

Text is lower-cased and curly apostrophes straightened before matching; speech-to-text gives
no punctuation, so no rule needs any.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

Label = Literal["sad", "hurting", "stressed", "angry", "tired", "happy"]
LABELS: Final[tuple[Label, ...]] = ("sad", "hurting", "stressed", "angry", "tired", "happy")

_NEG: Final = (
    r"(?:not|never|no|isn't|wasn't|aren't|weren't|don't|didn't|doesn't|haven't|hasn't|n't|nt"
    r"|no longer)"
)
_BE: Final = r"(?:i'm|im|i am|i feel|i'm feeling|feeling|feel|i've been|been)"

_CRISIS: Final = re.compile(
    r"\b(?:want(?:ed)? to die|wanna die|ready to die|kill(?:ing)? myself|suicid\w*"
    r"|(?:do not|don't|dont) want to (?:live|be alive|be here|exist|wake up|go on|carry on)"
    r"|end(?:ing)? (?:it all|my life|things)|(?:it|this|everything) (?:all )?to (?:end|stop)"
    r"|better off (?:without me|dead)|tired of (?:living|life|being alive)"
    r"|wish (?:i|i'd) (?:was|were|had never been|could) (?:\w+ )?(?:dead|gone|disappear|born)"
    r"|wish i (?:wasn't|weren't) (?:here|alive|born)"
    r"|(?:can't|cant|cannot|can not) (?:go on|do this|take (?:it|this|any ?more)|keep going)"
    r"|no (?:point|reason) (?:in|to|of|for) (?:\w+ )?(?:anything|living|life|going on|carrying on"
    r"|it all|me|being here)|(?:don't|dont|can't|cant) see the point|what's the point"
    r"|whats the point|hopeless|worthless|no reason to live"
    r"|(?:notice|care|miss me|matter) if i (?:was|were|wasn't|weren't|died|disappeared|went)"
    r" ?(?:gone|dead|here|around)?)\b"
)
"""Wanting to die or to give up: the crisis rule gives resources; here it is read as sad."""

_CUES: Final[tuple[tuple[Label, re.Pattern[str]], ...]] = (
    ("hurting", re.compile(
        r"\b(?:in (?:so much |a lot of |terrible |real |such )?pain|(?:is|are|it's) killing me"
        r"|(?:head|back|tooth|teeth|knee|knees|stomach|tummy|chest|leg|legs|neck|hip|foot|feet"
        r"|shoulder|ear|throat)\w* (?:is |are |feels? |keeps? )?(?:\w+ )?(?:pounding|throbbing"
        r"|hurts?|hurting|aching|killing|tight|sore|burning)"
        r"|throbbing|pounding|headache|toothache|backache|stomach ?ache|earache|sprain\w*"
        r"|(?:broke|broken|fractured|twisted|pulled) my|injur\w*|sore|arthritis|flare.?up"
        r"|not feeling (?:\w+ )?(?:well|great|good|right)|feel(?:ing)? (?:\w+ )?(?:sick|unwell"
        r"|poorly|ill|dizzy|faint|nauseous|feverish)|under the weather|the flu|a fever"
        r"|throwing up|been sick|coming down with|vomit\w*|can't breathe"
        r"|(?:after|from) (?:the |my )?surgery)\b"
    )),
    ("tired", re.compile(
        r"\b(?:exhausted|wiped out|worn out|burn[ts] out|burnout|dead on my feet|running on empty"
        r"|no energy|(?:barely|hardly|didn't|couldn't|can't|cant|haven't been|not been|never)"
        r" (?:\w+ )?(?:sleep|slept|sleeping)|up all night|keep my eyes open|knackered"
        r"|shattered|zonked|so sleepy|"
        + _BE
        + r" (?:so |really |totally )?(?:beat|drained|spent))\b"
    )),
    ("sad", re.compile(
        r"\b(?:lonely|loneliness|(?:all|so|very|completely|totally|really) alone|on my own all"
        r"|by myself all|(?:no ?one|nobody|noone) (?:\w+ )?(?:to talk to|cares|calls|visits|listens"
        r"|understands|talks|loves|likes|wants|rings|comes)"
        r"|(?:don't|dont|do not|haven't|have no|got no)(?: really)?(?: have)?(?: got)?(?: any)?"
        r" (?:friends|one to talk to|anyone|anybody|family)"
        r"|miss (?:him|her|them|my (?:wife|husband|mum|mom|dad|mother|father|son|daughter|kids"
        r"|children|family|friends|partner|boyfriend|girlfriend|dog|cat|home|old life))"
        r"|left out|forgot (?:my|about my) birthday|(?:never|don't|doesn't|dont|doesnt)"
        r" (?:\w+ )?(?:visits?|calls?|rings?|writes?)\b|since (?:he|she|they)(?:'s|'re| is| are)?"
        r" (?:gone|left|died)|(?:he's|she's|they're) gone"
        r"|feel(?:ing)? (?:\w+ ){0,2}(?:down|low|empty|blue|numb|useless|rubbish|awful|terrible"
        r"|horrible|rotten|miserable|like a failure|like crying|like nobody|like no one)"
        r"|(?:a|an|such a|such an) (?:failure|idiot|burden|loser)|(?:got|have|i've) nobody|give up"
        r"|stood me up|let me down|(?:didn't|did not|never) (?:show up|turn up|come)"
        r"|pointless|humiliated|ashamed"
        r"|heart ?broken|broke up with me|dumped me|left me|passed away|died|funeral"
        r"|lost (?:my|our|the) (?:job|mum|mom|dad|wife|husband|mother|father|son|daughter|friend"
        r"|dog|cat|baby|house|home)|(?:didn't|couldn't|can't) (?:even )?get out of bed"
        r"|(?:never|not|isn't|wasn't|ever) (?:\w+ )?good enough|no way out|drowning"
        r"|(?:don't|can't|cannot|cant|dont) (?:see|find) (?:any |a )?way out"
        r"|"
        + _NEG
        + r" (?:really |feeling |feel |like |doing |going |been |so |very |too |that )*(?:ok|okay"
        r"|alright|all right|good|great|well|fine|myself|happy))\b"
    )),
    ("stressed", re.compile(
        r"\b(?:(?:rough|bad|terrible|awful|horrible|hard|tough|crap|crappy|shit|shitty|rubbish"
        r"|lousy|miserable|dreadful|stressful|hellish|nightmare|exhausting|long hard) (?:day|week"
        r"|night|morning|time|year|shift|month)|worst (?:day|week|night|year|month)"
        r"|what a day|(?:was|is|been) (?:a |an |such a |an absolute |a total )?(?:nightmare"
        r"|disaster|awful|terrible|horrible|hell|hard|rough|crap|rubbish)"
        r"|(?:shouted|yelled|screamed|snapped|swore|had a go) at me|(?:got|been|was|were|am)"
        r" (?:\w+ )?(?:fired|sacked|laid off|dumped|made redundant)|laid me off|let me go"
        r"|fed up|sick of|had enough|done with (?:everything|it all|this|life)"
        r"|in (?:the )?hospital|(?:not|n't) coping|can't take|(?:can't|cannot|cant|can not) cope"
        r"|too much"
        r"|falling apart|freaking out|end of my (?:rope|tether)|one thing after another"
        r"|thanks for nothing|(?:so |really )?(?:worried|worrying|scared|afraid|terrified|nervous)"
        r" (?:about|of|that|for)|messed up|screwed up|went wrong|goes wrong|(?:failed|flunked)"
        r" (?:my|the)|broke down|(?:kicking|throwing) (?:us|me) out|(?:huge|big|massive|awful)"
        r" (?:fight|row|argument)|(?:nobody|no one|noone) listens|sucked|sucks)\b"
    )),
)  # fmt: skip
"""Phrasings of distress, in order of precedence; each negated one is skipped."""

_JOY: Final = re.compile(
    r"\b(?:got (?:the|a|my|that) (?:\w+ )?(?:job|promotion|place|offer|raise|visa|house|flat)"
    r"|got (?:in|into|accepted|promoted)|over the moon|on cloud nine|looking forward to"
    r"|aced|nailed it|(?:moved|moving) into (?:our|my|the) new"
    r"|passed (?:my|the) (?:\w+ )?(?:exam|test|course)"
    r"|(?:getting|got|just got) (?:married|engaged)|had (?:a|the|her|his|their) baby"
    r"|baby (?:boy|girl)|can't wait|cant wait|finally (?:finished|did it|made it|got)"
    r"|proud of|so relieved|(?:so |really )?(?:excited|thrilled|delighted|overjoyed)"
    r"|good news|best (?:day|time|night|weekend)|came back clear|promot(?:ed|ion))\b"
)
"""Good news told plainly ("I got the job!"), which has no pleasant word for VADER."""

_IRONY_OPENING: Final = re.compile(
    r"^(?:oh|well|wow|yeah|just|ah|um|uh)?[\s,]*(?:great|fantastic|wonderful|brilliant"
    r"|perfect|lovely|awesome|super|terrific|marvell?ous|just great|just perfect)\b\W+"
)
_IRONY_PHRASE: Final = re.compile(
    r"\b(?:just|exactly) what i (?:needed|wanted)|yeah right|lucky me|story of my life"
    r"|love (?:how|it when|that) .*\b(?:nobody|no one|never|n't|again|late)\b"
)
_MISHAP: Final = re.compile(
    r"\b(?:another|cancel\w*|broke|broken|won't|wont|late|lost|locked|rain\w*|stuck|missed"
    r"|failed|nobody|no one|delayed|down|flat|leak\w*|ticket|fine[ds]?|crash\w*|died|dead"
    r"|spilled)\b"
)
"""Ironic praise ("oh great, my train is cancelled again") needs a mishap beside it, so that
"oh great, thanks!" stays a thank-you."""

_NEGATED_NEGATIVE: Final = re.compile(
    r"\b" + _NEG + r"\W+(?:(?!but\b)\w+\W+){0,2}?(?:bad|sad|awful|terrible|horrible|lonely|alone"
    r"|worried|stressed|anxious|upset|tired|sick|angry|unhappy|worse|wrong|scared|afraid|hurt"
    r"|hurts|problem|worries|worry|complain|nervous|down)\b"
)
"""VADER reads "not sad" as happy; it only says the user is not sad."""

_QUESTION_START: Final = re.compile(
    r"^(?:(?:um+|uh+|so|hey|ok|okay|well|and|but|oh|hi|hello)\b[\s,]*)*(?:what|what's|whats"
    r"|who|who's|where|where's|when|why|how|how's|which|whose|do|does|did|can|could|would"
    r"|will|is|are|was|were|should|shall|have you|has|may|might|any idea|tell me)\b(?!')"
)
_SENTENCE: Final = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class WordsSay:
    """What the phrasing adds: the ``label`` the words name (None if none), and the
    ``valence`` after the rules; ``cue`` says which rule decided ("crisis", "distress",
    "joy", "irony", "negated", "question"; None when VADER's score stands)."""

    label: Label | None
    valence: float
    cue: str | None = None


CRISIS_VALENCE: Final = -0.8
DISTRESS_VALENCE: Final = -0.5
"""At most this pleasant when the words name a distress: past the "clearly unpleasant" line."""
JOY_VALENCE: Final = 0.8
PLEASANT: Final = 0.35
"""Words this pleasant outrank a state the user names when a turn of phrase sets the two
apart ("tired but so happy!"); without one the state wins ("pretty lonely since my friends
moved away" scores pleasant on "pretty" and "friends")."""
_CONTRAST: Final = re.compile(r"\b(?:but|though|although|yet|now|anyway|still)\b")
QUESTION_DAMPING: Final = 0.3
"""A question's lexicon score, scaled: "what's your favourite song?" is not joy."""


def normalise(text: str) -> str:
    return " ".join(text.lower().replace("’", "'").replace("‘", "'").split())


def distress(text: str) -> Label | None:
    """The distress the phrasing names, if any and not negated ("it wasn't a bad day")."""
    lowered = normalise(text)
    if _CRISIS.search(lowered):
        return "sad"
    for label, pattern in _CUES:
        for found in pattern.finditer(lowered):
            if not negated(lowered, found.start()):
                return label
    return None


def negated(lowered: str, start: int) -> bool:
    """Whether a negation comes just before ``start`` (within three words)."""
    before = lowered[max(0, start - 40) : start]
    return re.search(r"\b" + _NEG + r"\W+(?:\w+\W+){0,2}$", before) is not None


def read_words(
    text: str, valence: float, named: str | None, rescore: Callable[[str], float]
) -> WordsSay:
    """The label and valence after the rules. ``valence`` is VADER's for ``text``; ``named``
    the state word the user used ("tired"), if any; ``rescore`` scores another text."""
    lowered = normalise(text)
    if _CRISIS.search(lowered):
        return WordsSay("sad", min(valence, CRISIS_VALENCE), "crisis")
    if _irony(lowered):
        return WordsSay(
            _as_label(named) or "stressed", min(-abs(valence), DISTRESS_VALENCE), "irony"
        )
    said = _as_label(named)
    if said is not None and valence >= PLEASANT and _CONTRAST.search(lowered):
        return WordsSay(said, valence)
    label = said or distress(text)
    if label is not None:
        return WordsSay(label, min(valence, DISTRESS_VALENCE), "distress")
    if any(not negated(lowered, m.start()) for m in _JOY.finditer(lowered)):
        return WordsSay("happy", max(valence, JOY_VALENCE), "joy")
    stripped = _NEGATED_NEGATIVE.sub(" ", lowered)
    if stripped != lowered:
        return WordsSay(None, rescore(stripped) if stripped.strip(" ,.!?") else 0.0, "negated")
    sentences = [s for s in _SENTENCE.split(text.strip()) if s.strip()]
    statements = [s for s in sentences if not _is_question(s)]
    if sentences and not statements:
        return WordsSay(None, valence * QUESTION_DAMPING, "question")
    if len(statements) < len(sentences):  # "We won! Can you believe it?": the statement says
        return WordsSay(None, rescore(" ".join(statements)), "question")
    return WordsSay(None, valence)


def _as_label(named: str | None) -> Label | None:
    for label in LABELS:
        if named == label:
            return label
    return None


def _is_question(sentence: str) -> bool:
    s = normalise(sentence)
    return s.endswith("?") or _QUESTION_START.search(s) is not None


def _irony(lowered: str) -> bool:
    if _IRONY_PHRASE.search(lowered) and (
        "yeah right" in lowered
        or "lucky me" in lowered
        or "story of my life" in lowered
        or lowered.startswith("love ")
        or _MISHAP.search(lowered)
    ):
        return True
    opening = _IRONY_OPENING.search(lowered)
    return opening is not None and _MISHAP.search(lowered, opening.end()) is not None
