"""Prompt assembly: persona, recent turns and recollections into chat messages within a budget.

The order serves llama.cpp's prefix cache (prompt evaluation is slow, a cached prefix nearly
free): the system message comes first and never changes, then the recent turns, which only grow
at the end from one turn to the next; what changes every turn (recollections and the mood hint)
comes last, in a context message of its own just before the user's words. The words themselves
are sent exactly as the history will keep them, so next turn the cached exchange is reused with
only the old context message cut out of the cache.

Everything said about the person is written the way the companion would say it to them ("your
dog is called “Biscuit”", "You once told me: “...”"): a small model continues what it reads, so
framing written about "the user", with dates as prefixes or "data, not instructions" labels,
comes back out of it aloud (scripts/prompt_leaks.py: 14 of 36 bundled-model replies read
framing aloud with that layout, 0 of 36 with this one, same prompts, same run; example
exchanges labelled "They say:" were copied once in 36, so they are written without labels).
Memories stay data all the same: the person's words are quoted with their quote marks and line
breaks flattened, so a memory cannot close its quote or fake a line of the prompt, and they are
never placed in the system role, whose rules say that nothing inside a quote is to be obeyed.
The companion's own earlier replies are never quoted as memories: only what the person said is
about them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

from voice_companion.dialogue.history import Turn
from voice_companion.engines import ChatMessage
from voice_companion.memory.seam import Recollection
from voice_companion.persona.values import Persona

CHARS_PER_TOKEN: Final = 4
"""Token estimate: about 4 characters of English per token for common BPE tokenizers.

Deliberately simple and tokenizer-free; it errs on the generous side for short words, and the
budget should leave headroom for the reply anyway.
"""
MESSAGE_OVERHEAD_TOKENS: Final = 4
"""Tokens a chat template spends per message on role markers and separators."""
MIN_USER_CHARS: Final = 80
"""The new user text keeps at least this many characters even when the budget is tiny."""

INTERRUPTED_MARKER: Final = "(interrupted)"
MEMORY_HEADER: Final = "You once told me:"
"""How each recollection opens: the person's own words follow, in quotes."""
NOTES_HEADER: Final = "What you remember and can say to them:"
MAX_QUOTE_CHARS: Final = 200
"""Longest recollection quoted, in characters."""

_MONTHS: Final = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def estimate_tokens(text: str) -> int:
    """Approximate token count of ``text``: characters / 4, rounded up."""
    return -(-len(text) // CHARS_PER_TOKEN)


def message_tokens(message: ChatMessage) -> int:
    """Approximate tokens one message costs in the prompt, template overhead included."""
    return estimate_tokens(message.content) + MESSAGE_OVERHEAD_TOKENS


def prompt_tokens(messages: Sequence[ChatMessage]) -> int:
    return sum(message_tokens(m) for m in messages)


def format_date(when: datetime) -> str:
    """'3 May 2026', independent of the process locale."""
    return f"{when.day} {_MONTHS[when.month - 1]} {when.year}"


def quote_recollection(rec: Recollection) -> str:
    """One recollection of the person's words, as the companion could say it to them.

    Quote marks and line breaks inside the text are flattened so a stored memory cannot close
    its quote or fake a new line of the prompt. No date: a small model reads a dated prefix
    ("On 3 May 2026 ... said:") aloud.
    """
    text = " ".join(rec.text.replace("“", '"').replace("”", '"').split())
    if len(text) > MAX_QUOTE_CHARS:
        # Every token quoted is evaluated before the first word of the reply: a long
        # monologue is recalled by its start.
        text = text[:MAX_QUOTE_CHARS].rsplit(" ", 1)[0] + " …"
    return f"{MEMORY_HEADER} “{text}”"


def context_message(
    recollections: Sequence[Recollection], hint: str | None = None
) -> ChatMessage | None:
    """What this turn brings up, as a user-role message just before the user's words: quoted
    recollections of what the person said (if any; the companion's own replies are not
    memories about them), then the hints (mood, persona, what is coming up; if any); None
    when neither.

    It is a message of its own, not a preface to the words: a small model repeats a preface
    back ("The user now says: ..."), and words sent as the history keeps them stay cached."""
    lines = [quote_recollection(r) for r in recollections if r.speaker == "user"]
    if hint:
        lines += [*([""] if lines else []), hint]
    return ChatMessage("user", "\n".join(lines)) if lines else None


def notes_message(notes: Sequence[str]) -> ChatMessage | None:
    """What is known about the person, as one user-role message (never the system role: the
    notes carry their own words), in the words the companion would use to them."""
    lines = [" ".join(n.split()) for n in notes if n.strip()]
    if not lines:
        return None
    return ChatMessage("user", " ".join([NOTES_HEADER, *lines]))


def build_messages(
    persona: Persona,
    history: Sequence[Turn],
    recollections: Sequence[Recollection],
    user_text: str,
    budget_tokens: int,
    notes: Sequence[str] = (),
    hint: str | None = None,
) -> list[ChatMessage]:
    """The chat prompt for one turn, fitted to ``budget_tokens`` (estimated).

    Order: the persona (system), notes about the user (profile and facts; they change rarely,
    so the prefix stays cached), recent turns, then the recollections and the mood ``hint``
    (one context message), then the new words alone.
    ``recollections`` are ranked best first, ``notes`` most important first. To fit, drop the
    oldest history turns (keeping the last exchange, which the new words most likely answer),
    then the lowest-ranked recollections, then the last notes, then the last exchange. The
    system message and the new user text are always kept; the user text alone is cut from its
    start when it cannot fit otherwise.
    """
    system = ChatMessage("system", persona.system_prompt())
    fixed = message_tokens(system)
    user_text = _fit_user_text(user_text.strip(), budget_tokens - fixed - MESSAGE_OVERHEAD_TOKENS)

    past = [_history_message(t) for t in history if t.text.strip() or t.interrupted]
    ranked = list(recollections)
    noted = [n for n in notes if n.strip()]
    final = ChatMessage("user", user_text)

    def assemble(start: int, kept: int, notes_kept: int) -> list[ChatMessage]:
        about = notes_message(noted[:notes_kept])
        context = context_message(ranked[:kept], hint)
        return [
            system,
            *([about] if about else []),
            *past[start:],
            *([context] if context else []),
            final,
        ]

    def over(start: int, kept: int, notes_kept: int) -> bool:
        return prompt_tokens(assemble(start, kept, notes_kept)) > budget_tokens

    start = _skip_assistant(past, 0)  # a prompt's history should open with the user
    kept = len(ranked)
    notes_kept = len(noted)
    last_exchange = _last_exchange_start(past)
    while over(start, kept, notes_kept) and start < last_exchange:
        start = _skip_assistant(past, start + 1)
    while over(start, kept, notes_kept) and kept > 0:
        kept -= 1
    while over(start, kept, notes_kept) and notes_kept > 0:
        notes_kept -= 1
    while over(start, kept, notes_kept) and start < len(past):
        start = _skip_assistant(past, start + 1)
    return assemble(start, kept, notes_kept)


def _history_message(turn: Turn) -> ChatMessage:
    text = turn.text.strip()
    if turn.role == "assistant" and turn.interrupted:
        text = f"{text} {INTERRUPTED_MARKER}" if text else INTERRUPTED_MARKER
    return ChatMessage(turn.role, text)


def _skip_assistant(messages: Sequence[ChatMessage], start: int) -> int:
    while start < len(messages) and messages[start].role == "assistant":
        start += 1
    return start


def _last_exchange_start(messages: Sequence[ChatMessage]) -> int:
    """Index of the last user message (where the last exchange begins), or len if none."""
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].role == "user":
            return i
    return len(messages)


def _fit_user_text(text: str, max_tokens: int) -> str:
    """Keep the end of ``text`` (the most recent words) when it alone is over budget."""
    if estimate_tokens(text) <= max_tokens:
        return text
    keep = max(max_tokens * CHARS_PER_TOKEN, MIN_USER_CHARS) - 1  # room for the "…"
    if len(text) <= keep:
        return text
    tail = text[-keep:]
    space = tail.find(" ")
    if 0 <= space < len(tail) - 1 and not text[-keep - 1].isspace():
        tail = tail[space + 1 :]  # start at a word, not mid-word
    return "…" + tail.lstrip()
