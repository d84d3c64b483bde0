"""Text sentiment with VADER (``vaderSentiment``): a maintained lexicon and rules, no model.

VADER scores a sentence's valence: ``compound`` in -1..1 and the shares of positive, negative
and neutral words. It runs in well under a millisecond per utterance; the lexicon loads once
per process (about 15 ms). The package imports ``requests`` only in its ``__main__`` demo:
nothing here touches the network.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, Final

from voice_companion.errors import SentimentError

_KEEP_DOING: Final = re.compile(
    r"\b(?:can't|cant|cannot|can not|couldn't|couldnt|could not|won't|wont)\s+stop\b", re.I
)
"""VADER reads "I can't stop crying" as a negated "crying", hence positive; it means "I keep
crying", so that is what it is given."""
_BARE_NO: Final = re.compile(
    r"\b(?:long time no see|no way|no doubt|no wonder)\b|(?:^|(?<=[.!?]))\s*no\s*[,.!]+", re.I
)
"""VADER scores "no" as unpleasant wherever it stands; in "No way!", "long time no see" or
a sentence-opening "No," it says nothing about how the user feels."""


@dataclass(frozen=True)
class Sentiment:
    """VADER's scores: ``compound`` valence in -1..1; the others are shares summing to 1."""

    compound: float
    positive: float
    negative: float
    neutral: float


NEUTRAL: Final = Sentiment(0.0, 0.0, 0.0, 1.0)


@functools.lru_cache(maxsize=1)
def _analyzer() -> Any:
    try:
        from vaderSentiment.vaderSentiment import (  # type: ignore[import-untyped]
            SentimentIntensityAnalyzer,
        )
    except ImportError as exc:
        raise SentimentError(
            f"vaderSentiment cannot be imported ({exc}): run `make setup`"
        ) from exc
    try:
        return SentimentIntensityAnalyzer()
    except Exception as exc:  # a broken install fails reading its lexicon files
        raise SentimentError(f"cannot load the VADER lexicon: {exc}") from exc


class VaderSentiment:
    """Scores text with VADER; the analyzer is built on first use and shared by the process."""

    def load(self) -> None:
        """Build the analyzer now (warm-up), rather than on the first turn."""
        _analyzer()

    def score(self, text: str) -> Sentiment:
        if not text.strip():
            return NEUTRAL
        analyzer = _analyzer()
        try:
            scores = analyzer.polarity_scores(_BARE_NO.sub(" ", _KEEP_DOING.sub("keep", text)))
        except Exception as exc:  # VADER has no exception types of its own
            raise SentimentError(f"sentiment scoring failed: {exc}") from exc
        return Sentiment(
            compound=float(scores["compound"]),
            positive=float(scores["pos"]),
            negative=float(scores["neg"]),
            neutral=float(scores["neu"]),
        )
