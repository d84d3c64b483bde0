"""`bench knows-me`: does the companion know its user? Scripted multi-session conversations
through the real ``chat`` path, then questions in fresh sessions, scored against answers
written in the scenario data.

Each user of the scenario gets a data folder of their own; each session is a fresh
``TextChat`` over ``app.build_dialogue`` and the model under test, so nothing carries over
but memory.db. The sessions happen on the scenario's dates: memory records each turn on its
session's day, so "next Friday" means what it meant then, and the benchmark works out the
expected day from that date itself.

A reply is *correct* when it contains an expected answer (case-insensitive, whole words, any
listed variant, not denied: "in Leeds, not Cork" does not answer Cork) and no wrong value (a
corrected or changed one, unless said as the past: "not Biscuit", "used to run"); *didn't
know* when it says it doesn't know (or that it wasn't told) and has no answer; *made up*
otherwise. For something never said, saying it doesn't know (and naming none of its wrong
values) is the correct answer and anything else is made up. Every reply, told or answered, is also
checked for talk *about* the user or the prompt's framing read aloud ("the user", "User:",
"data point", "instruction").

Two models in one run: the configured one, and ``reference_model`` (a scripted server that
answers from the prompt line matching the question: it measures what memory hands a model,
not a model's reasoning).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import selectors
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from voice_companion.config import BUNDLED, Config
from voice_companion.errors import CompanionError, UsageError

if TYPE_CHECKING:
    from voice_companion.dialogue.dialogue import Dialogue
    from voice_companion.engines import ChatModel

log = logging.getLogger(__name__)

KINDS: Final = ("fact", "correction", "change", "contradiction", "date", "never_said", "quoted")
CORRECT, DONT_KNOW, MADE_UP = "correct", "didn't know", "made up"
VERDICTS: Final = (CORRECT, DONT_KNOW, MADE_UP)
CONFIGURED, REFERENCE = "configured", "reference"
MAX_LINE_CHARS = 2000
SESSION_HOUR = 19
"""Sessions start at 19:00 on their day; questions at 20:00, five minutes apart."""


def _words_of(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_MONTHS: Final = _words_of(
    "january february march april may june july august september october november december"
)
_WEEKDAYS: Final = _words_of("monday tuesday wednesday thursday friday saturday sunday")
_ORDINAL_WORDS: Final = _words_of(
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth "
    "thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth twentieth "
    "twenty-first twenty-second twenty-third twenty-fourth twenty-fifth twenty-sixth "
    "twenty-seventh twenty-eighth twenty-ninth thirtieth thirty-first"
)
DONT_KNOW_PHRASES: Final = (
    "don't know",
    "do not know",
    "dont know",
    "not sure",
    "no idea",
    "haven't told me",
    "have not told me",
    "havent told me",
    "haven't said",
    "didn't tell me",
    "did not tell me",
    "never told me",
    "not told me",
    "haven't mentioned",
    "didn't mention",
    "never mentioned",
    "don't remember",
    "do not remember",
    "can't remember",
    "cannot remember",
    "don't recall",
    "can't recall",
    "do not recall",
    "don't think you've told me",
    "not something you've told me",
    "don't have that",
    "don't have any record",
    "i'm not aware",
    "you haven't shared",
    "haven't shared",
)
FRAMING: Final = {
    "the user": r"\bthe user\b|\buser's\b",
    "User:": r"\buser\s*:",
    "data point": r"\bdata points?\b",
    "instruction": r"\binstructions?\b",
    "quoted as data": r"\bquoted as data\b|\bas data\b",
}
"""Talk about "the user", or the prompt's framing read aloud."""
_PAST: Final = re.compile(
    r"\b(?:not|no|never|isn't|wasn't|no longer|instead of|rather than|used to|gave up|"
    r"give up|stopped|quit|corrected|renamed|changed)\b"
)
"""Said just before a wrong value, these make it the past ("not Biscuit"), not an answer."""
PAST_WINDOW_WORDS = 5
_NEGATION: Final = re.compile(
    r"\b(?:not|never|nor|isn't|wasn't|didn't|don't|doesn't|aren't|weren't|haven't)\b"
)
"""Just before an expected value, these deny it ("in Leeds, not Cork"): it is no answer."""
NEGATION_WINDOW_WORDS = 4


# -- the scenario ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Told:
    """Where a date was said: the session (1-based) and the phrase ("next friday")."""

    session: int
    when: str


@dataclass(frozen=True)
class Question:
    ask: str
    kind: str
    expect: tuple[str, ...] = ()
    wrong: tuple[str, ...] = ()
    told: Told | None = None

    @property
    def never_said(self) -> bool:
        return not self.expect and self.told is None


@dataclass(frozen=True)
class Session:
    day: date
    say: tuple[str, ...]


@dataclass(frozen=True)
class UserScript:
    id: str
    ask_on: date
    sessions: tuple[Session, ...]
    questions: tuple[Question, ...]

    def expected(self, question: Question) -> tuple[str, ...]:
        """What counts as the answer: the listed values, or the told day written out."""
        if question.told is None:
            return question.expect
        said_on = self.sessions[question.told.session - 1].day
        days = resolve_when(question.told.when, said_on)
        out = list(question.expect)
        for day in days:
            out += [v for v in date_variants(day, self.ask_on) if v not in out]
        return tuple(out)


@dataclass(frozen=True)
class Scenario:
    source: str
    users: tuple[UserScript, ...]

    @property
    def sessions(self) -> int:
        return sum(len(u.sessions) for u in self.users)

    @property
    def questions(self) -> int:
        return sum(len(u.questions) for u in self.users)


def default_scenario_path() -> Path:
    return Path(__file__).resolve().parent / "data" / "knows_me.toml"


def load_scenario(path: Path, only: Sequence[str] = ()) -> Scenario:
    """Read and check a scenario file; ``UsageError`` in one line when it is not one."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read the scenario {path}: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} is not a TOML scenario: {exc}") from exc
    try:
        users = tuple(_user(u) for u in _list(raw, "users", "the file"))
    except (TypeError, ValueError, KeyError) as exc:
        raise UsageError(f"{path}: {exc}") from exc
    if not users:
        raise UsageError(f"{path}: no [[users]]")
    ids = [u.id for u in users]
    if len(set(ids)) != len(ids):
        raise UsageError(f"{path}: two users with the same id")
    if only:
        unknown = sorted(set(only) - set(ids))
        if unknown:
            raise UsageError(f"no user {unknown[0]!r} in {path} (there are {', '.join(ids)})")
        users = tuple(u for u in users if u.id in only)
    return Scenario(str(path), users)


def _list(table: Any, key: str, where: str) -> list[dict[str, Any]]:
    items = table.get(key) if isinstance(table, dict) else None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ValueError(f"{where} needs a list of [[{key}]] tables")
    return items


def _text(table: dict[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_LINE_CHARS:
        raise ValueError(f"{where}: {key} must be text (1 to {MAX_LINE_CHARS} characters)")
    return value.strip()


def _day(table: dict[str, Any], key: str, where: str) -> date:
    value = table.get(key)
    if isinstance(value, datetime) or not isinstance(value, date):
        raise ValueError(f"{where}: {key} must be a date like 2026-04-13")
    return value


def _texts(table: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(
        isinstance(v, str) and v.strip() and len(v) <= MAX_LINE_CHARS for v in value
    ):
        raise ValueError(f"{where}: {key} must be a list of texts")
    return tuple(v.strip() for v in value)


def _user(raw: dict[str, Any]) -> UserScript:
    uid = _text(raw, "id", "a user")
    where = f"user {uid!r}"
    sessions = tuple(
        Session(_day(s, "date", f"{where}, a session"), _texts(s, "say", f"{where}, a session"))
        for s in _list(raw, "sessions", where)
    )
    if not sessions or any(not s.say for s in sessions):
        raise ValueError(f"{where}: needs sessions, each with lines to say")
    days = [s.day for s in sessions]
    if days != sorted(days):
        raise ValueError(f"{where}: sessions must be in date order")
    ask_on = _day(raw, "ask_on", where)
    if ask_on < days[-1]:
        raise ValueError(f"{where}: ask_on is before the last session")
    questions = []
    for q in _list(raw, "questions", where):
        ask = _text(q, "ask", f"{where}, a question")
        at = f"{where}, question {ask!r}"
        kind = q.get("kind", "fact")
        if kind not in KINDS:
            raise ValueError(f"{at}: kind must be one of {', '.join(KINDS)}")
        told = None
        if "told" in q:
            spec = q["told"]
            if not isinstance(spec, dict):
                raise ValueError(f'{at}: told must be {{ session = N, when = "..." }}')
            session = spec.get("session")
            if not isinstance(session, int) or not 1 <= session <= len(sessions):
                raise ValueError(f"{at}: told.session must be 1 to {len(sessions)}")
            told = Told(session, _text(spec, "when", at))
            resolve_when(told.when, sessions[session - 1].day)  # refuses a phrase it can't read
        questions.append(Question(ask, kind, _texts(q, "expect", at), _texts(q, "wrong", at), told))
    if not questions:
        raise ValueError(f"{where}: no questions")
    return UserScript(uid, ask_on, sessions, tuple(questions))


# -- dates -----------------------------------------------------------------------------------


def resolve_when(phrase: str, said_on: date) -> tuple[date, ...]:
    """The day(s) ``phrase`` meant on ``said_on``: "next friday" has two readings (the first
    Friday after, and the one a week later); ``ValueError`` for a phrase it cannot read."""
    p = " ".join(phrase.lower().replace(",", " ").split())
    p = re.sub(r"^(?:on|this coming|this) ", "", p)
    if p in ("today", "tonight"):
        return (said_on,)
    if p == "tomorrow":
        return (said_on + timedelta(days=1),)
    if m := re.fullmatch(r"in (\d+) (day|week)s?", p):
        return (said_on + timedelta(days=int(m[1]) * (7 if m[2] == "week" else 1)),)
    if m := re.fullmatch(r"(next )?(" + "|".join(_WEEKDAYS) + ")", p):
        ahead = (_WEEKDAYS.index(m[2]) - said_on.weekday()) % 7 or 7
        first = said_on + timedelta(days=ahead)
        return (first, first + timedelta(days=7)) if m[1] else (first,)
    months = "|".join(_MONTHS)
    m = re.fullmatch(rf"(?:the )?(\d{{1,2}})(?:st|nd|rd|th)? (?:of )?({months})", p)
    m = m or re.fullmatch(rf"({months}) (?:the )?(\d{{1,2}})(?:st|nd|rd|th)?", p)
    if m is None:
        raise ValueError(f"cannot read the date {phrase!r}")
    day_text, month = (m[1], m[2]) if m[1].isdigit() else (m[2], m[1])
    when = date(said_on.year, _MONTHS.index(month) + 1, int(day_text))  # ValueError if none
    return (when if when >= said_on else when.replace(year=said_on.year + 1),)


def date_variants(day: date, asked_on: date) -> list[str]:
    """``day`` as people write it ("24 April", "April 24th", "the 24th of April"), and as
    "today", "tomorrow", "yesterday" or the weekday when it is that close to ``asked_on``."""
    month = _MONTHS[day.month - 1]
    n = day.day
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    word = _ORDINAL_WORDS[n - 1]
    out = [
        f"{n} {month}",
        f"{n}{suffix} {month}",
        f"{n}{suffix} of {month}",
        f"{month} {n}",
        f"{month} {n}{suffix}",
        f"{month} the {n}{suffix}",
        f"{word} of {month}",
        f"{month} {word}",
        f"{month} the {word}",
        f"{word.replace('-', ' ')} of {month}",
    ]
    ahead = (day - asked_on).days
    out += {0: ["today", "tonight"], 1: ["tomorrow"], -1: ["yesterday"]}.get(ahead, [])
    if -6 <= ahead <= 6:
        out.append(_WEEKDAYS[day.weekday()])
    return out


# -- scoring ---------------------------------------------------------------------------------


def _normal(text: str) -> str:
    return " ".join(text.lower().replace("’", "'").replace("‘", "'").split())


def _found(value: str, text: str) -> list[int]:
    """Where ``value`` occurs in (normalised) ``text`` as whole words."""
    pattern = r"(?<!\w)" + re.escape(_normal(value)) + r"(?!\w)"
    return [m.start() for m in re.finditer(pattern, text)]


def says_dont_know(reply: str) -> bool:
    text = _normal(reply)
    return any(_found(phrase, text) for phrase in DONT_KNOW_PHRASES)


def framing(reply: str) -> list[str]:
    """Which framing patterns the reply contains (empty: it speaks to the user)."""
    text = _normal(reply)
    return [label for label, pattern in FRAMING.items() if re.search(pattern, text)]


def score(reply: str, expect: Sequence[str], wrong: Sequence[str] = ()) -> str:
    """CORRECT, DONT_KNOW or MADE_UP (see the module doc); no ``expect``: never said."""
    text = _normal(reply)
    has_wrong = any(not _as_past(text, at) for v in wrong for at in _found(v, text))
    if not expect:
        return CORRECT if says_dont_know(reply) and not has_wrong else MADE_UP
    has_answer = any(not _negated(text, at) for v in expect for at in _found(v, text))
    if has_answer and not has_wrong:
        return CORRECT
    if has_wrong or has_answer:
        return MADE_UP
    return DONT_KNOW if says_dont_know(reply) else MADE_UP


def _as_past(text: str, at: int) -> bool:
    before = text[:at].split()[-PAST_WINDOW_WORDS:]
    return bool(_PAST.search(" ".join(before)))


def _negated(text: str, at: int) -> bool:
    before = text[:at].split()[-NEGATION_WINDOW_WORDS:]
    return bool(_NEGATION.search(" ".join(before)))


# -- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    user: str
    kind: str
    question: str
    asked_on: date
    reply: str
    verdict: str
    expected: tuple[str, ...]
    wrong: tuple[str, ...]
    framing: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "kind": self.kind,
            "question": self.question,
            "asked_on": self.asked_on.isoformat(),
            "reply": self.reply,
            "verdict": self.verdict,
            "expected": list(self.expected),
            "wrong": list(self.wrong),
            "framing": list(self.framing),
        }


@dataclass(frozen=True)
class ToldTurn:
    user: str
    session: int
    day: date
    said: str
    reply: str
    framing: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "session": self.session,
            "date": self.day.isoformat(),
            "said": self.said,
            "reply": self.reply,
            "framing": list(self.framing),
        }


@dataclass
class ModelRun:
    label: str
    description: str
    answers: list[Answer] = field(default_factory=list)
    told: list[ToldTurn] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self, answers: Sequence[Answer] | None = None) -> dict[str, float | int]:
        """Shares (0..1) of the answers by verdict, of all replies with framing, and of the
        answers both correct and spoken to the user."""
        chosen = self.answers if answers is None else answers
        n = len(chosen)
        replies = [a.framing for a in chosen] + (
            [t.framing for t in self.told] if answers is None else []
        )

        def share(count: int, of: int) -> float:
            return round(count / of, 4) if of else 0.0

        return {
            "questions": n,
            CORRECT: share(sum(a.verdict == CORRECT for a in chosen), n),
            DONT_KNOW: share(sum(a.verdict == DONT_KNOW for a in chosen), n),
            MADE_UP: share(sum(a.verdict == MADE_UP for a in chosen), n),
            "framing": share(sum(bool(f) for f in replies), len(replies)),
            "replies": len(replies),
            "correct_and_clean": share(
                sum(a.verdict == CORRECT and not a.framing for a in chosen), n
            ),
        }

    def by_kind(self) -> dict[str, dict[str, float | int]]:
        kinds = [k for k in KINDS if any(a.kind == k for a in self.answers)]
        return {k: self.summary([a for a in self.answers if a.kind == k]) for k in kinds}

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "description": self.description,
            "seconds": round(self.seconds, 1),
            "summary": self.summary(),
            "by_kind": self.by_kind(),
            "answers": [a.as_dict() for a in self.answers],
            "told": [t.as_dict() for t in self.told],
        }


@dataclass
class Report:
    scenario: Scenario
    runs: list[ModelRun] = field(default_factory=list)
    recall: dict[str, Any] | None = None
    recall_source: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario.source,
            "users": len(self.scenario.users),
            "sessions": self.scenario.sessions,
            "questions": self.scenario.questions,
            "seconds": round(self.seconds, 1),
            "reference_model": REFERENCE_NOTE,
            "models": [r.as_dict() for r in self.runs],
            "recall": self.recall,
            "recall_source": self.recall_source,
        }


REFERENCE_NOTE: Final = (
    "a scripted server, not a language model: asked a question, it answers with the prompt "
    "line sharing the most content words with it (in the second person), or says it doesn't "
    "know; it measures what memory hands a model, not a model's reasoning"
)


# -- running ---------------------------------------------------------------------------------


class _Clock:
    """The scenario's time: the day set, from a given hour, running at the real pace."""

    def __init__(self) -> None:
        self._start = datetime.now().astimezone()
        self._since = time.monotonic()

    def set(self, day: date, at: day_time) -> None:
        self._start = datetime.combine(day, at).astimezone()
        self._since = time.monotonic()

    def __call__(self) -> datetime:
        return self._start + timedelta(seconds=time.monotonic() - self._since)


def _date_memory(dialogue: Dialogue, clock: Callable[[], datetime]) -> None:
    """Memory records the session's turns on the scenario's day (and reads "next Friday"
    from it). The composition root gives memory the wall clock; this is the one place that
    changes it, for the benchmark only."""
    from voice_companion.memory.longterm import LongTermMemory

    memory = dialogue.memory
    if isinstance(memory, LongTermMemory):
        memory._clock = clock


def _say(config: Config, model: ChatModel, dialogue: Dialogue, lines: Sequence[str]) -> list[str]:
    """One chat session: each line typed in turn; the replies as ``chat`` prints them."""
    from voice_companion.runtime.runner import TextChat

    chat = TextChat(config, model, dialogue)

    async def answer(line: str) -> str:
        pieces = [sentence async for sentence in chat.reply(line)]
        return " ".join(" ".join(pieces).split())

    try:
        return [asyncio.run(answer(line)) for line in lines]
    finally:
        chat.close()


def run_model(
    config: Config,
    model: ChatModel,
    scenario: Scenario,
    label: str,
    description: str,
    progress: Callable[[str], None] = lambda _: None,
) -> ModelRun:
    """Every user's sessions, then their questions, with ``model``; a data folder each."""
    from voice_companion import app

    result = ModelRun(label, description)
    started = time.monotonic()
    clock = _Clock()
    for user in scenario.users:
        with tempfile.TemporaryDirectory(prefix=f"vc-knows-me-{user.id}-") as tmp:
            own = dataclasses.replace(config, data_dir=Path(tmp))
            for n, session in enumerate(user.sessions, 1):
                progress(f"{label}: {user.id}, session {n}/{len(user.sessions)} ({session.day})")
                dialogue = app.build_dialogue(own)
                clock.set(session.day, day_time(SESSION_HOUR))
                _date_memory(dialogue, clock)
                replies = _say(own, model, dialogue, session.say)
                for said, reply in zip(session.say, replies, strict=True):
                    log.debug("%s told %r, replied %r", user.id, said, reply)
                    result.told.append(
                        ToldTurn(user.id, n, session.day, said, reply, tuple(framing(reply)))
                    )
            for i, question in enumerate(user.questions):
                progress(f"{label}: {user.id}, question {i + 1}/{len(user.questions)}")
                dialogue = app.build_dialogue(own)
                clock.set(user.ask_on, day_time(SESSION_HOUR + 1, (5 * i) % 60))
                _date_memory(dialogue, clock)
                (reply,) = _say(own, model, dialogue, [question.ask])
                expected = user.expected(question)
                verdict = score(reply, expected, question.wrong)
                log.debug("%s asked %r: %r (%s)", user.id, question.ask, reply, verdict)
                result.answers.append(
                    Answer(
                        user.id,
                        question.kind,
                        question.ask,
                        user.ask_on,
                        reply,
                        verdict,
                        expected,
                        question.wrong,
                        tuple(framing(reply)),
                    )
                )
    result.seconds = time.monotonic() - started
    return result


def describe_model(config: Config) -> str:
    llm = config.llm
    if llm.backend == "openai":
        return f"{llm.model or 'default model'} at {llm.base_url}"
    if llm.model_path == BUNDLED:
        return "bundled SmolLM2-135M (llama.cpp)"
    return f"{Path(llm.model_path).name} (llama.cpp)"


class ReferenceServer:
    """``reference_model`` as its own process on 127.0.0.1, for as long as the ``with``."""

    def __init__(self, start_timeout_s: float = 30.0) -> None:
        self._timeout_s = start_timeout_s
        self._proc: subprocess.Popen[str] | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> ReferenceServer:
        from voice_companion.bench import reference_model

        proc = subprocess.Popen(
            [sys.executable, reference_model.__file__],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._proc = proc
        assert proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            ready = selector.select(timeout=self._timeout_s)
        line = proc.stdout.readline().strip() if ready else ""
        if not line.isdigit():
            self.__exit__()
            raise CompanionError(f"the reference model server did not start ({line!r})")
        self.port = int(line)
        return self

    def __exit__(self, *_: object) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=10)

    def config(self, config: Config) -> Config:
        """``config`` with the language model this server; the LLM fact extractor off (the
        reference reads prompts, it does not extract facts)."""
        llm = dataclasses.replace(
            config.llm, backend="openai", base_url=self.base_url, model="reference", api_key_env=""
        )
        memory = dataclasses.replace(config.memory, llm_facts=False)
        return dataclasses.replace(config, llm=llm, memory=memory)


def recall_figures(
    config: Config, locomo: Path, k: int, progress: Callable[[str], None]
) -> dict[str, Any]:
    """The LoCoMo-format retrieval figures (the recall benchmark, bench/recall.py) at the
    conversations' own size: recall@1, 3, 5, 10 and ``k`` for each method."""
    from voice_companion.bench import recall as recall_bench
    from voice_companion.bench.locomo import read_locomo
    from voice_companion.config import threads_for
    from voice_companion.memory.longterm import shared_minilm

    embedder = shared_minilm(threads_for(config.memory.embed_threads))
    ks = tuple(sorted({1, 3, 5, 10, k}))
    report = recall_bench.run(read_locomo(locomo), ks, (), embedder, config.memory, progress)
    return dict(report.as_dict())


def run(
    config: Config,
    scenario: Scenario,
    models: Sequence[str] = (CONFIGURED, REFERENCE),
    locomo: Path | None = None,
    k: int = 5,
    progress: Callable[[str], None] = lambda _: None,
) -> Report:
    """The benchmark: each of ``models`` through every user's sessions and questions, then
    the recall benchmark on ``locomo`` (None: skipped)."""
    from voice_companion import app

    report = Report(scenario)
    started = time.monotonic()
    if CONFIGURED in models:
        progress(f"loading the configured model ({describe_model(config)})")
        model = app.build_model(config)
        report.runs.append(
            run_model(config, model, scenario, CONFIGURED, describe_model(config), progress)
        )
    if REFERENCE in models:
        with ReferenceServer() as server:
            progress(f"reference model server on {server.base_url}")
            own = server.config(config)
            report.runs.append(
                run_model(
                    own,
                    app.build_model(own),
                    scenario,
                    REFERENCE,
                    "scripted prompt reader (reference_model.py)",
                    progress,
                )
            )
    if locomo is not None:
        progress(f"recall benchmark on {locomo}")
        report.recall = recall_figures(config, locomo, k, progress)
        report.recall_source = str(locomo)
    report.seconds = time.monotonic() - started
    return report


def default_locomo_path() -> Path:
    """The LoCoMo-format sample in the source tree (tests/data), where there is one."""
    return Path(__file__).resolve().parents[2] / "tests" / "data" / "locomo_mini.json"
