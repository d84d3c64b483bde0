"""How the user seems to feel, turn by turn: from their words, and from their voice.

Valence (unpleasant -1 .. pleasant 1) comes from the text, by VADER. Arousal (calm, slow and
quiet -1 .. fast, loud and high 1) comes from the audio, relative to this user's own average
voice (``VoiceBaseline``): people differ far more from each other than from themselves. The
two place the turn on the valence/arousal plane, which names the label; a state the user names
themselves ("I'm exhausted") outranks the estimate, since VADER scores valence only and
cannot tell tired from sad; so does a phrasing of distress VADER misses ("rough day, my boss
shouted at me", ``mood_words``), and a question is not a mood.

A notable mood becomes a short hint placed with the user's message (never before the history,
so the cached prompt prefix stays intact); a sad, stressed or hurting user is comforted first.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal, Protocol

from voice_companion.audio.chunk import AudioChunk
from voice_companion.audio.prosody import Prosody, measure
from voice_companion.dialogue.mood_words import read_words
from voice_companion.errors import CompanionError

log = logging.getLogger(__name__)

MoodLabel = Literal["sad", "hurting", "stressed", "angry", "tired", "happy", "calm", "neutral"]
LABELS: Final[tuple[MoodLabel, ...]] = (
    "sad", "hurting", "stressed", "angry", "tired", "happy", "calm", "neutral",
)  # fmt: skip
NEGATIVE_LABELS: Final = frozenset({"sad", "hurting", "stressed", "angry", "tired"})

VALENCE_CLEAR: Final = 0.35
"""|valence| from this on is clearly pleasant or unpleasant (VADER's compound)."""
AROUSAL_CLEAR: Final = 0.35
AROUSAL_TIRED: Final = 0.5
"""With neutral words, a voice this much slower, quieter and lower than usual sounds tired."""
AROUSAL_ANGRY: Final = 0.5
VALENCE_ANGRY: Final = -0.55
HINT_MIN_CONFIDENCE: Final = 0.6
HAPPY_HINT_VALENCE: Final = 0.75
"""Mild pleasantness ("thanks, that helps") needs no hint; real joy does."""
BASELINE_MIN_TURNS: Final = 3
"""Voice turns needed before the voice is compared with the user's average."""
BASELINE_WINDOW: Final = 50
"""The baseline is a running mean over about this many recent voice turns."""

# Scales at which each prosody difference counts fully: a fifth faster, 6 dB louder,
# 3 semitones higher; weighted by how reliably each tracks arousal.
_RATE_SCALE: Final = math.log(1.2)
_LOUDNESS_SCALE_DB: Final = 6.0
_PITCH_SCALE_ST: Final = 3.0
_WEIGHTS: Final = {"rate": 0.4, "loudness": 0.35, "pitch": 0.25}

_NAMED: Final[tuple[tuple[MoodLabel, re.Pattern[str]], ...]] = (
    ("hurting", re.compile(r"\b(?:pain(?! au)|painful|hurts|hurting|aches?|aching|headache|migraine"
                           r"|cramps|sick(?! of)|ill|nauseous)\b")),
    ("sad", re.compile(r"\b(?:sad|unhappy|crying|cried|cry|tears|lonely|heartbroken|depressed"
                       r"|miserable|grieving|devastated)\b")),
    ("angry", re.compile(r"\b(?:angry|furious|livid|pissed|annoyed|irritated|frustrated"
                         r"|fuming)\b")),
    ("stressed", re.compile(r"\b(?:stressed|stressful|anxious|worried|nervous|overwhelmed"
                            r"|panicking|panicked|tense)\b")),
    ("tired", re.compile(r"\b(?:tired|exhausted|sleepy|drained|knackered|worn out|shattered"
                         r"|fatigued)\b")),
)  # fmt: skip
"""The user's own word for the state (in order of precedence); VADER says how unpleasant."""
_NEGATION: Final = re.compile(r"\b(?:not|never|no|isn't|wasn't|aren't|don't|didn't|n't)\W+"
                              r"(?:\w+\W+){0,2}$")  # fmt: skip


class Scorer(Protocol):
    """Text valence (VADER, in ``voice_companion.engines.sentiment``)."""

    def score(self, text: str) -> _Scored: ...


class _Scored(Protocol):
    @property
    def compound(self) -> float: ...


@dataclass(frozen=True)
class MoodEstimate:
    """How the user seemed in one turn.

    ``valence`` in -1..1 from the words; ``arousal`` in -1..1 from the voice relative to the
    user's own average (None for a typed turn, or before the average exists); ``confidence``
    in 0..1; ``prosody`` the voice figures (None for a typed turn); ``named`` says the user
    named the state themselves.
    """

    label: MoodLabel
    valence: float
    arousal: float | None = None
    confidence: float = 0.0
    prosody: Prosody | None = None
    named: bool = False

    @property
    def spoken(self) -> bool:
        return self.prosody is not None


@dataclass(frozen=True)
class VoiceBaseline:
    """The user's usual voice: running means over their recent voice turns."""

    turns: int = 0
    rate_sps: float | None = None
    loudness_dbfs: float | None = None
    pitch_hz: float | None = None

    @property
    def ready(self) -> bool:
        return self.turns >= BASELINE_MIN_TURNS

    def updated(self, prosody: Prosody) -> VoiceBaseline:
        """The baseline with one more voice turn folded in (a mean over the last
        ``BASELINE_WINDOW`` turns or so)."""
        if prosody.loudness_dbfs is None:
            return self
        weight = 1.0 / min(self.turns + 1, BASELINE_WINDOW)
        return VoiceBaseline(
            turns=self.turns + 1,
            rate_sps=_mean(self.rate_sps, prosody.rate_sps, weight),
            loudness_dbfs=_mean(self.loudness_dbfs, prosody.loudness_dbfs, weight),
            pitch_hz=_mean(self.pitch_hz, prosody.pitch_hz, weight),
        )

    @classmethod
    def of(cls, voices: Iterable[Prosody]) -> VoiceBaseline:
        """The baseline after these voice turns, oldest first."""
        baseline = cls()
        for prosody in voices:
            baseline = baseline.updated(prosody)
        return baseline


class MoodReader:
    """Estimates each turn's mood; keeps the user's voice baseline as the turns come.

    ``scorer`` is the text sentiment (VADER by default, loaded on first use); ``baseline``
    the user's usual voice as remembered (from stored turns) when the conversation starts.
    """

    def __init__(self, scorer: Scorer | None = None, baseline: VoiceBaseline | None = None):
        self._scorer = scorer
        self._baseline = baseline or VoiceBaseline()
        self._failed = False

    @property
    def baseline(self) -> VoiceBaseline:
        return self._baseline

    def load(self) -> None:
        """Load the sentiment lexicon now (warm-up)."""
        self._text_valence("fine")

    def read(self, text: str, audio: AudioChunk | None = None) -> MoodEstimate:
        """The mood of one turn: ``text`` alone for a typed turn, with ``audio`` for a spoken
        one. A spoken turn then joins the baseline (after being compared with it)."""
        words = read_words(text, self._text_valence(text), named_state(text), self._text_valence)
        named = None if words.label == "happy" else words.label
        prosody = measure(audio, text) if audio is not None and len(audio) else None
        arousal = None
        if prosody is not None:
            arousal = arousal_of(prosody, self._baseline)
            self._baseline = self._baseline.updated(prosody)
        return estimate(max(-1.0, min(1.0, words.valence)), arousal, named, prosody)

    def _text_valence(self, text: str) -> float:
        if self._failed:
            return 0.0
        if self._scorer is None:
            from voice_companion.engines.sentiment import VaderSentiment

            self._scorer = VaderSentiment()
        try:
            return max(-1.0, min(1.0, float(self._scorer.score(text).compound)))
        except CompanionError as exc:
            log.warning("%s; moods are read from the voice alone", exc)
            self._failed = True
            return 0.0


def estimate(
    valence: float,
    arousal: float | None,
    named: MoodLabel | None = None,
    prosody: Prosody | None = None,
) -> MoodEstimate:
    """Place (valence, arousal) on the plane; a state the user named wins unless their words
    are clearly pleasant ("not tired at all, great!")."""
    v = valence
    a = arousal
    if named is not None and v < VALENCE_CLEAR:
        agrees = a is None or (a <= 0) == (named in ("sad", "tired", "hurting"))
        label: MoodLabel = named
        confidence = 0.8 + (0.1 if a is not None and agrees else 0.0)
    elif v <= -VALENCE_CLEAR:
        label = "sad"
        if a is not None and a >= AROUSAL_CLEAR:
            label = "angry" if v <= VALENCE_ANGRY and a >= AROUSAL_ANGRY else "stressed"
        confidence = _strength(-v, a)
    elif v >= VALENCE_CLEAR:
        label = "calm" if a is not None and a <= -AROUSAL_CLEAR else "happy"
        confidence = _strength(v, a)
    elif a is not None and a <= -AROUSAL_TIRED:
        label, confidence = "tired", min(0.85, 0.3 + 0.5 * -a)
    else:
        label, confidence = "neutral", 1.0 - abs(v)
    return MoodEstimate(
        label=label,
        valence=round(v, 4),
        arousal=None if a is None else round(a, 4),
        confidence=round(confidence, 3),
        prosody=prosody,
        named=named is not None and label == named,
    )


def arousal_of(prosody: Prosody, baseline: VoiceBaseline) -> float | None:
    """How much livelier (> 0) or flatter (< 0) than usual this voice is, -1..1; None until
    the baseline has enough turns."""
    if not baseline.ready:
        return None
    parts: dict[str, float] = {}
    if prosody.rate_sps and baseline.rate_sps:
        parts["rate"] = math.log(prosody.rate_sps / baseline.rate_sps) / _RATE_SCALE
    if prosody.loudness_dbfs is not None and baseline.loudness_dbfs is not None:
        parts["loudness"] = (prosody.loudness_dbfs - baseline.loudness_dbfs) / _LOUDNESS_SCALE_DB
    if prosody.pitch_hz and baseline.pitch_hz:
        semitones = 12 * math.log2(prosody.pitch_hz / baseline.pitch_hz)
        parts["pitch"] = semitones / _PITCH_SCALE_ST
    if not parts:
        return None
    weight = sum(_WEIGHTS[k] for k in parts)
    score = sum(_WEIGHTS[k] * max(-1.5, min(1.5, x)) for k, x in parts.items()) / weight
    return max(-1.0, min(1.0, score))


def named_state(text: str) -> MoodLabel | None:
    """The state the user names for themselves, if any ("I'm so tired"), not negated."""
    lowered = text.lower().replace("’", "'")
    for label, pattern in _NAMED:
        for found in pattern.finditer(lowered):
            before = lowered[max(0, found.start() - 40) : found.start()]
            if not _NEGATION.search(before):
                return label
    return None


_SAYS: Final[dict[MoodLabel, str]] = {
    "sad": "sad",
    "hurting": "in pain",
    "stressed": "stressed",
    "angry": "angry",
    "tired": "tired",
    "happy": "happy",
}
_ADVICE: Final[dict[MoodLabel, str]] = {
    "sad": "Comfort them first; give advice only if they ask for it.",
    "hurting": "Comfort them first; give advice only if they ask for it.",
    "stressed": "Reassure them first; give advice only if they ask for it.",
    "angry": "Stay calm, acknowledge how they feel, and don't argue.",
    "tired": "Be gentle and keep it short.",
    "happy": "Share their good mood.",
}


def mood_hint(mood: MoodEstimate | None) -> str | None:
    """A one-line note for the model about this turn's mood; None when nothing is notable."""
    if mood is None or mood.label not in _ADVICE or mood.confidence < HINT_MIN_CONFIDENCE:
        return None
    if mood.label == "happy" and mood.valence < HAPPY_HINT_VALENCE:
        return None
    if mood.label == "hurting":
        seems = "say you are" if mood.named else "seem to be"
    else:
        seems = "sound" if mood.spoken else "seem"
    also = ""
    if mood.label in ("sad", "stressed") and mood.arousal is not None and mood.arousal <= -0.5:
        also = " and tired"
    # Said to the person, as the companion might say it: "the user ..." is read back aloud.
    return f"(You {seems} {_SAYS[mood.label]}{also}. {_ADVICE[mood.label]})"


def describe(mood: MoodLabel) -> str:
    """How to say the label after "you sounded" / "you seemed"."""
    return _SAYS.get(mood, mood)


def _strength(magnitude: float, arousal: float | None) -> float:
    """Confidence from how far past the threshold the valence is; a voice adds a little."""
    base = 0.5 + 0.5 * min(1.0, (magnitude - VALENCE_CLEAR) / 0.4)
    return min(0.95, base + (0.05 if arousal is not None else 0.0))


def _mean(old: float | None, new: float | None, weight: float) -> float | None:
    if new is None:
        return old
    if old is None:
        return new
    return old + weight * (new - old)
