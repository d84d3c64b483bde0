"""How often the bundled model reads the prompt's framing aloud, for two code trees.

    PYTHONPATH=. python scripts/prompt_leaks.py --base /path/to/old/tree [--reps 3]

(with XDG_CONFIG_HOME, XDG_DATA_HOME and XDG_CACHE_HOME set to temporary folders)

Each tree builds its prompts in a subprocess of its own (its own prompt layout, notes and
recall, through ``app.build_dialogue`` on a real memory.db seeded with a rich memory: earlier
sessions, facts, one invented reply of the companion's), for the same fixed turns. This
process then answers every prompt with the bundled model as ``app.build_model`` makes it
(temperature as configured), alternating the trees, and counts the replies that leak framing
(LEAK below), before and after this tree's spoken check, and how often the check fired.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from datetime import timedelta
from pathlib import Path

TURNS = (
    "hi",
    "good morning robin",
    "i'm so nervous",
    "i had a rough day at work",
    "whats my dog called",
    "where did I grow up",
    "i was thinking about home today",
    "um my mum's birthday is coming up you know",
    "tell me something nice",
    "i cant sleep",
    "do you remember what I told you about work",
    "what should i cook tonight",
)
EARLIER = (
    ("My name is Margaret but everyone calls me Maggie.", "Lovely to meet you, Maggie!"),
    ("I work as a nurse at St Mary's hospital.", "That must keep you busy."),
    ("I have a dog called Biscuit, he's a brown spaniel.", "Your dog Rex sounds like a poodle!"),
    ("I grew up in Cork, right by the sea, but I live in Leeds now.", "The sea must be missed."),
    ("I hate olives, honestly.", "Noted, no olives!"),
    ("My driving test is tomorrow and I'm terrified.", "You'll do great."),
)
LEAK = re.compile(
    r"the user|\buser\s*:|\bassistant\s*:|data point|instruction|\bnotes?\b"
    r"|\bon \d{1,2} \w+ \d{4}\b.{0,60}\bsaid\b|what you remember and can say|in this reply"
    r"|\b(?:they|you) say\s*:",
    re.I,
)
"""Framing read aloud: the markers of issue 16, and the new layout's own headers."""


def build(out: Path) -> None:
    """In the tree on PYTHONPATH: seed a memory, then the prompt for each turn."""
    from voice_companion import app
    from voice_companion.config import load_config
    from voice_companion.dialogue.history import Turn

    data = Path(tempfile.mkdtemp(prefix="leaks-"))
    config = load_config(Path(app.__file__).parents[1] / "config/companion.toml", env={},
                         data_dir=data)  # fmt: skip
    dialogue = app.build_dialogue(config)
    memory = dialogue.memory
    for user, reply in EARLIER:
        dialogue.record_exchange(user, reply, False)
    db = memory.db  # type: ignore[attr-defined]
    ids = [t.id for t in db.turns() if t.speaker == "user"]
    at = db.turns()[-1].at
    tomorrow = (at + timedelta(days=1)).date()
    for kind, key, value, when in (
        ("name", "name", "Margaret", None),
        ("preferred_name", "preferred_name", "Maggie", None),
        ("relation", "relation:dog", "Biscuit", None),
        ("work", "work", "a nurse", None),
        ("location", "home", "Leeds", None),
        ("dislike", "taste:olives", "olives", None),
        ("event", "event:driving test", "driving test", tomorrow),
    ):
        if not db.facts(valid_only=True, key=key):
            db.add_fact(kind, key, value, at, ids[:1], "rules", event_date=when)
    memory.wait_idle()  # type: ignore[attr-defined]
    prompts = []
    for text in TURNS:
        session = app.build_dialogue(config)  # a fresh session on the same memory.db
        turn = session.prepare_user(text)
        assert isinstance(turn, Turn)
        messages = session.messages_for(text, turn)
        prompts.append({"turn": text, "messages": [[m.role, m.content] for m in messages]})
    out.write_text(json.dumps({"persona": dialogue.persona.name, "prompts": prompts}))
    os._exit(0)  # the stores' background threads need not wind down


def measure(base: Path, reps: int) -> None:
    from voice_companion import app
    from voice_companion.config import load_config
    from voice_companion.dialogue.sentences import SentenceSplitter
    from voice_companion.dialogue.spoken import SpokenCheck
    from voice_companion.engines import ChatMessage

    here = Path(__file__).resolve().parents[1]
    trees = {"before": base.resolve(), "after": here}
    built = {}
    for name, tree in trees.items():
        out = Path(tempfile.mkstemp(suffix=".json")[1])
        env = {**os.environ, "PYTHONPATH": str(tree)}
        subprocess.run([sys.executable, __file__, "--build", str(out)], env=env, check=True)
        built[name] = json.loads(out.read_text())
    config = load_config(here / "config/companion.toml", env={}, data_dir=Path(tempfile.mkdtemp()))
    model = app.build_model(config)
    persona = app.current_persona(config)
    counts = {n: {"replies": 0, "leaks": 0, "leaks_checked": 0, "fired": 0} for n in trees}
    for rep in range(reps):
        for i, text in enumerate(TURNS):
            for name in trees:
                messages = [ChatMessage(r, c) for r, c in built[name]["prompts"][i]["messages"]]
                reply = "".join(model.stream(messages, threading.Event())).strip()
                check = SpokenCheck.for_prompt(messages, persona)
                splitter = SentenceSplitter(max_chars=config.dialogue.sentence_max_chars)
                parts = [*splitter.feed(reply), splitter.flush() or ""]
                spoken = [s for p in parts if p.strip() and (s := check(p)) is not None]
                c = counts[name]
                c["replies"] += 1
                c["leaks"] += bool(LEAK.search(reply))
                c["leaks_checked"] += bool(LEAK.search(" ".join(spoken)))
                c["fired"] += check.fired
                print(json.dumps({"rep": rep, "tree": name, "turn": text, "reply": reply,
                                  "spoken": " ".join(spoken), "fired": check.fired}),
                      flush=True)  # fmt: skip
    print(json.dumps(counts), file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, help="the tree to compare with (before)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--build", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        build(args.build)
    else:
        measure(args.base, args.reps)


if __name__ == "__main__":
    main()
