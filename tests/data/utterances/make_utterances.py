"""Regenerate the latency benchmark's utterances (run from the repository root):

    .venv/bin/python tests/data/utterances/make_utterances.py

Each utterance is spoken by piper (the bundled joe voice, at two paces) or espeak-ng (two
accents), resampled to 16 kHz mono, given 0.5 s of room before the speech and 0.2 s after, and
a faint seeded noise floor (about -60 dBFS) so that "silence" is not digital zero. Some are two
phrases with a hesitation between them (0.45 s), the pause a speaker makes mid-thought.

``manifest.json`` records, per file, the text and ``speech_end_s``: the end of the last voiced
sample, found on the clean speech before the noise is added (the last 10 ms window whose peak
reaches 2 % of the utterance's peak). The benchmark measures response latency from there.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from voice_companion.audio.chunk import STT_RATE_HZ, AudioChunk  # noqa: E402
from voice_companion.engines import bundled  # noqa: E402
from voice_companion.engines.decode import read_audio  # noqa: E402
from voice_companion.engines.resample import resample  # noqa: E402
from voice_companion.engines.tts import PiperSynthesizer  # noqa: E402

LEAD_S, TAIL_S, HESITATION_S = 0.5, 0.2, 0.45
NOISE_STD = 30.0

# (text, voice); "a | b" is two phrases with a hesitation between them.
UTTERANCES: list[tuple[str, str]] = [
    ("How are you today?", "piper"),
    ("What time is it?", "espeak:en-us"),
    ("Can you hear me?", "piper-slow"),
    ("Do you like music?", "espeak:en-gb"),
    ("I'm tired.", "piper"),
    ("Good morning.", "espeak:en-us"),
    ("I had a long day at work.", "piper-slow"),
    ("Thanks, that helps.", "espeak:en-gb"),
    ("Tell me something funny.", "piper"),
    ("I think I'm catching a cold.", "espeak:en-us"),
    ("What should I cook for dinner tonight?", "piper-slow"),
    ("I finally finished the book you recommended.", "espeak:en-gb"),
    (
        "Do you think I should call my sister tonight, or wait until the weekend "
        "when she is less busy?",
        "piper",
    ),
    ("What would be a good way to relax after a stressful week at the office?", "espeak:en-us"),
    ("Can you remember what I told you about my trip to the mountains last summer?", "piper"),
    (
        "If you could visit any city in the world, which one would you choose, and why?",
        "espeak:en-gb",
    ),
    (
        "My sister is getting married next month, and I still have to find a present for her.",
        "piper-slow",
    ),
    (
        "I went for a long walk by the river this morning, and the weather was really beautiful.",
        "espeak:en-us",
    ),
    (
        "Work has been stressful lately because my manager keeps changing the plans at the "
        "last minute.",
        "piper",
    ),
    (
        "I started learning to play the guitar, but my fingers hurt after only ten minutes.",
        "espeak:en-gb",
    ),
    ("I was thinking | that we could talk about my day.", "piper"),
    ("So yesterday | I met an old friend from school.", "espeak:en-us"),
    ("Do you know | how to make a good cup of tea?", "piper-slow"),
    ("Actually | never mind, just tell me a joke.", "espeak:en-gb"),
]


def speak(text: str, voice: str, piper: dict[str, PiperSynthesizer]) -> AudioChunk:
    if voice.startswith("piper"):
        audio = piper[voice].synthesize(text)
    else:
        lang = voice.split(":", 1)[1]
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "espeak.wav"
            subprocess.run(["espeak-ng", "-v", lang, "-s", "165", "-w", str(wav), text], check=True)
            audio = read_audio(wav, STT_RATE_HZ)
    return resample(audio, STT_RATE_HZ)


def trimmed(audio: AudioChunk) -> AudioChunk:
    """The speech without the synthesiser's own leading and trailing quiet."""
    x = np.abs(audio.samples.astype(np.int32))
    loud = np.flatnonzero(x >= 0.02 * x.max())
    return AudioChunk(audio.samples[loud[0] : loud[-1] + 1], audio.rate_hz)


def voiced_end(samples: np.ndarray, rate: int) -> int:
    """Index one past the last voiced sample (10 ms windows, 2 % of the peak)."""
    window = rate // 100
    x = np.abs(samples.astype(np.int32))
    threshold = 0.02 * x.max()
    last = 0
    for start in range(0, len(x), window):
        if x[start : start + window].max() >= threshold:
            last = min(len(x), start + window)
    return last


def main() -> None:
    voice_path = bundled.piper_voice_path()
    piper = {
        "piper": PiperSynthesizer(voice_path),
        "piper-slow": PiperSynthesizer(voice_path, length_scale=1.15),
    }
    rate = STT_RATE_HZ
    manifest = []
    for n, (text, voice) in enumerate(UTTERANCES, 1):
        phrases = [p.strip() for p in text.split("|")]
        parts: list[np.ndarray] = [np.zeros(round(LEAD_S * rate), np.int16)]
        for i, phrase in enumerate(phrases):
            if i:
                parts.append(np.zeros(round(HESITATION_S * rate), np.int16))
            parts.append(trimmed(speak(phrase, voice, piper)).samples)
        clean = np.concatenate(parts)
        end = voiced_end(clean, rate)
        clean = np.concatenate([clean, np.zeros(round(TAIL_S * rate), np.int16)])
        noise = np.random.default_rng(n).normal(0.0, NOISE_STD, len(clean))
        noisy = np.clip(clean.astype(np.float64) + noise, -32768, 32767).astype(np.int16)
        name = f"u{n:02d}.flac"
        with tempfile.TemporaryDirectory() as tmp:
            from voice_companion.engines.decode import write_wav

            wav = Path(tmp) / "u.wav"
            write_wav(wav, AudioChunk(noisy, rate))
            subprocess.run(["sox", str(wav), str(HERE / name)], check=True)
        kind = "question" if phrases[-1].endswith("?") else "statement"
        manifest.append(
            {
                "file": name,
                "text": " ".join(phrases),
                "voice": voice,
                "kind": kind,
                "hesitation": len(phrases) > 1,
                "duration_s": round(len(noisy) / rate, 3),
                "speech_start_s": LEAD_S,
                "speech_end_s": round(end / rate, 4),
            }
        )
        print(f"{name}: {manifest[-1]['speech_end_s']:.2f} s  {text}")
    (HERE / "manifest.json").write_text(
        json.dumps({"rate_hz": rate, "utterances": manifest}, indent=1) + "\n", encoding="utf-8"
    )


if __name__ == "__main__":
    main()
