"""Precision and recall of the mood reader on tests/dialogue/mood_sentences.tsv, per class.

    python scripts/mood_eval.py                  # this tree's code
    python scripts/mood_eval.py --before ../main # and another tree's, same run, side by side

The other tree runs in a subprocess with its own code first on the path; the sentences are
this tree's. Classes: distress (any unpleasant label), neutral (neutral, calm), happy.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
SENTENCES = Path(
    os.environ.get("MOOD_SENTENCES", HERE / "tests" / "dialogue" / "mood_sentences.tsv")
)
CLASSES = ("distress", "neutral", "happy")


def load(path: Path = SENTENCES) -> list[tuple[str, str, str]]:
    """(class, kind, sentence) rows."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            cls, kind, text = line.split("\t")
            rows.append((cls, kind, text))
    return rows


def predicted_class(label: str) -> str:
    from voice_companion.dialogue.mood import NEGATIVE_LABELS

    if label in NEGATIVE_LABELS:
        return "distress"
    return "happy" if label == "happy" else "neutral"


def predict(rows: list[tuple[str, str, str]]) -> list[str]:
    from voice_companion.dialogue.mood import MoodReader

    reader = MoodReader()
    return [reader.read(text).label for _, _, text in rows]


def scores(rows: list[tuple[str, str, str]], labels: list[str]) -> dict[str, tuple[float, float]]:
    """Per class: (precision, recall)."""
    hit: Counter[str] = Counter()
    said: Counter[str] = Counter()
    truth: Counter[str] = Counter()
    for (cls, _, _), label in zip(rows, labels, strict=True):
        got = predicted_class(label)
        truth[cls] += 1
        said[got] += 1
        hit[cls] += got == cls
    return {
        c: (hit[c] / said[c] if said[c] else 0.0, hit[c] / truth[c] if truth[c] else 0.0)
        for c in CLASSES
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", type=Path, help="another tree whose code to measure too")
    parser.add_argument("--labels", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--misses", action="store_true", help="list the sentences missed")
    args = parser.parse_args()
    rows = load()
    if args.labels:  # the subprocess side: print this code's labels
        print(json.dumps(predict(rows)))
        return
    runs = {}
    if args.before:
        env = {**os.environ, "PYTHONPATH": str(args.before.resolve())}
        out = subprocess.run(
            [sys.executable, __file__, "--labels"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
            cwd=args.before,
        ).stdout
        runs["before"] = json.loads(out)
    runs["after" if args.before else "this tree"] = predict(rows)
    print(
        f"{len(rows)} sentences: "
        + ", ".join(f"{c} {sum(r[0] == c for r in rows)}" for c in CLASSES)
    )
    print(f"{'class':<10}" + "".join(f"{name + ' P':>12}{name + ' R':>12}" for name in runs))
    table = {name: scores(rows, labels) for name, labels in runs.items()}
    for c in CLASSES:
        print(f"{c:<10}" + "".join(f"{table[n][c][0]:>12.2f}{table[n][c][1]:>12.2f}" for n in runs))
    if args.misses:
        last = list(runs.values())[-1]
        for (cls, kind, text), label in zip(rows, last, strict=True):
            if predicted_class(label) != cls:
                print(f"  {cls:<9}{kind:<9}{label:<9}{text}")


if __name__ == "__main__":
    main()
