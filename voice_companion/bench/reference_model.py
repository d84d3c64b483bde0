"""A scripted "capable model" for ``bench knows-me``: an OpenAI-compatible chat server that
answers from its prompt, faithfully and nothing more.

It is not a language model and does no reasoning. It stands for a model that reads what it
is handed: asked a question, it answers with the line of its prompt that shares the most
content words with the question (the user's words turned to the second person), or says it
doesn't know when nothing in the prompt is relevant; any other turn gets a short friendly
reply. So what the benchmark measures with it is what memory hands a model, not a model's
reasoning. The persona (the first system message) and the companion's own words (assistant
turns, "you said" recollections) are not read as facts about the user, and neither are the
user's earlier questions.

Standard library only: it runs as its own process (``python reference_model.py [PORT]``),
binds 127.0.0.1, prints its port on stdout once ready and serves
``POST /v1/chat/completions`` (streamed as server-sent events, or whole) until killed.
``GET /requests`` answers the bodies received so far (the last ``KEEP_REQUESTS``), as JSON.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import threading
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DONT_KNOW = "I don't think you've told me that yet. Will you tell me?"
FRIENDLY = "That's lovely to hear. Tell me more whenever you like."
KEEP_REQUESTS = 200
STEM_CHARS = 5


def _set(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _words_of(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_STOP = _set(
    """a an the and or but so if of to in on at for from with about into by as is are was were
    be been being am do does did doing have has had having i i'm im i've i'd i'll me my mine
    myself you you're your yours yourself we our us he she it its they them their his her him
    this that these those what what's whats where where's when when's who who's whom which why
    how how's can could would will should shall may might must not no yes yeah um uh er like
    well oh okay ok just really actually also too very much some any there here then than now
    tell told remember again please thanks thank know think say said get got go going one
    anything something everything thing things still ever never lol hey hi hello up down out
    off over back day days today tonight lately recently currently these those time"""
)
_QUESTION_START = _set(
    """what what's whats where where's when when's who who's whom which how how's why do does
    did is are was were can could would will have has am remind"""
)
_FILLERS = _set("um uh er so yeah like well oh okay ok no and also actually anyway")
_ABBREVIATIONS = _set("st mr mrs ms dr prof mt rd ave etc e.g i.e vs jr sr no")


def _same(words: str, as_word: str) -> dict[str, str]:
    return dict.fromkeys(words.split(), as_word)


# A few words a capable model takes as the same thing, so a question finds its answer when
# the user put it another way ("what's my dog called" / "his name is Biscuit").
_SAME = {
    **_same("name names named called call calls nickname", "name"),
    **_same("grow grew grown growing raised born hometown", "origin"),
    **_same("live lives lived home", "live"),
    **_same("work works working job jobs career profession living", "work"),
    **_same("allergy allergies allergic", "allergy"),
    **_same("hate hates dislike dislikes stand", "dislike"),
    **_same("pet pets", "pet"),
    **_same("puppy puppies", "dog"),
    **_same("kitten kittens kitty", "cat"),
    **_same("bunny bunnies", "rabbit"),
    **_same("hobby hobbies fun sport sports free spare", "hobby"),
    **_same("age old aged", "age"),
    **_same("appointment appointments appt", "appointment"),
    **_same("birthday birthdays bday", "birthday"),
}
_KINDS_OF = {"pet": "dog cat rabbit hamster parrot fish horse bird tortoise guinea lizard snake"}
"""A question word that a line answers with a kind of it ("what pet have I got": a rabbit)."""
_GENERIC = _set("name origin live work age hobby")
"""What a question asks for, not whom or what it is about: "what's my sister called" is
answered by a line about the sister, not by any line with a name in it."""
_SECOND_PERSON = {
    "i": "you",
    "i'm": "you're",
    "im": "you're",
    "i've": "you've",
    "i'd": "you'd",
    "i'll": "you'll",
    "me": "you",
    "my": "your",
    "mine": "yours",
    "myself": "yourself",
    "am": "are",
    "we": "you",
    "we're": "you're",
    "we've": "you've",
    "our": "your",
    "us": "you",
}
_QUOTED = re.compile(r"[“\"](.+?)[”\"]")
_DATED = re.compile(
    r"\b(\d{1,2}) (January|February|March|April|May|June|July|August|September|October|"
    r"November|December) (\d{4})\b"
)
_MONTHS = _words_of(
    "January February March April May June July August September October November December"
)
_SAID = re.compile(r"\b(?:said|says|told|wrote|asked|mentioned)\b\W*$", re.IGNORECASE)
_OWN_WORDS = re.compile(r"\b(?:you said|you told|you replied|assistant)\b", re.IGNORECASE)


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower().replace("’", "'"))


def content_words(text: str) -> set[str]:
    return {_key(w.removesuffix("'s")) for w in words(text) if w.removesuffix("'s") not in _STOP}


def _key(word: str) -> str:
    """A word as it is compared: one of a few synonyms, without its plural, crudely stemmed
    ("graduation" and "graduating", "teacher" and "teaching" meet)."""
    if word in _SAME:
        return _SAME[word]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    return _SAME.get(word, word[:STEM_CHARS])


_KINDS = {word: frozenset(_key(k) for k in kinds.split()) for word, kinds in _KINDS_OF.items()}


def _shared(wanted: set[str], line: set[str]) -> set[str]:
    return {w for w in wanted if w in line or _KINDS.get(w, frozenset()) & line}


def is_question(text: str) -> bool:
    spoken = [w for w in words(text) if w not in _FILLERS]
    if text.strip().endswith("?"):
        return True
    if not spoken:
        return False
    joined = " ".join(spoken)
    return spoken[0] in _QUESTION_START or "remember" in spoken or joined.startswith("tell me")


def second_person(text: str) -> str:
    """The user's first-person words said back to them ("my dog" -> "your dog"); notes that
    speak of "the user" said to them too ("the user lives in Leeds" -> "you live in Leeds")."""
    said = text.replace("’", "'")
    said = re.sub(r"\b[Tt]he user's\b", "your", said)
    said = re.sub(r"\b[Tt]he user (\w+)", lambda m: "you " + _verb(m[1]), said)
    out: list[str] = []
    for token in re.split(r"(\s+)", said):
        bare = token.strip(",.;:!?").lower()
        if bare in _SECOND_PERSON:
            token = token.lower().replace(bare, _SECOND_PERSON[bare])
        out.append(token)
    return re.sub(r"\byou was\b", "you were", "".join(out))


def _verb(word: str) -> str:
    """A verb after "the user" as it goes after "you" ("lives" -> "live")."""
    irregular = {"is": "are", "was": "were", "has": "have", "does": "do"}
    if word in irregular:
        return irregular[word]
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def _sentences(text: str) -> list[str]:
    """``text`` cut at its sentence ends (not after "St." or "Dr.")."""
    out: list[str] = []
    current: list[str] = []
    for word in text.split():
        current.append(word)
        bare = word.rstrip(".!?;").lower()
        if word[-1] in ".!?;" and not (word.endswith(".") and bare in _ABBREVIATIONS):
            out.append(" ".join(current))
            current = []
    if current:
        out.append(" ".join(current))
    return out


def _clean(sentence: str) -> str:
    """Without the leading fillers and the trailing punctuation."""
    kept = sentence.strip().rstrip(".!?;,… ").split()
    while kept and kept[0].lower().strip(",.") in _FILLERS:
        kept.pop(0)
    return " ".join(kept)


def candidates(messages: list[dict[str, Any]]) -> list[tuple[str, date | None]]:
    """Sentences of the prompt that could say something about the user, with the date the
    prompt gives them (None: undated, i.e. what the prompt says is so now)."""
    out: list[tuple[str, date | None]] = []
    for n, message in enumerate(messages[:-1]):
        role, content = message.get("role"), message.get("content")
        if not isinstance(content, str) or role == "assistant":
            continue
        if n == 0 and role == "system":
            continue  # the persona: about the companion, not the user
        for raw in content.splitlines():
            line = raw.strip().removeprefix("- ").strip()
            if not line or line.endswith(":"):
                continue  # a header
            quote = _QUOTED.search(line)
            when = None
            if quote and _SAID.search(line[: quote.start()]):  # a recollection: its words
                if _OWN_WORDS.search(line[: quote.start()]):
                    continue  # the companion's own earlier words
                when = _date_in(line[: quote.start()])  # when it was said
                line = quote.group(1)
            else:  # a note with quoted values: the whole line
                line = re.sub(r"[“”\"]", "", line)
            for sentence in _sentences(line):
                if not is_question(sentence):
                    out.append((sentence, when))
    return out


def _date_in(line: str) -> date | None:
    found = _DATED.search(line)
    if found is None:
        return None
    try:
        return date(int(found.group(3)), _MONTHS.index(found.group(2)) + 1, int(found.group(1)))
    except ValueError:
        return None


def answer(messages: list[dict[str, Any]]) -> str:
    """The reply to the last message of ``messages`` (OpenAI chat format)."""
    last = messages[-1].get("content", "") if messages else ""
    question = last if isinstance(last, str) else ""
    if not is_question(question):
        return FRIENDLY
    wanted = content_words(question)
    about = wanted - _GENERIC
    best: tuple[int, date, int] | None = None
    chosen = ""
    for position, (sentence, when) in enumerate(candidates(messages)):
        found = _shared(wanted, content_words(sentence))
        if not found or (about and not about & found):
            continue
        shared = len(found)
        # Most shared words first; then what the prompt says is so now (undated) over dated
        # quotes, newer quotes over older; then the later line.
        rank = (shared, when or date.max, position)
        if best is None or rank > best:
            best, chosen = rank, sentence
    if best is None:
        return DONT_KNOW
    said = second_person(_clean(chosen))
    return said[:1].upper() + said[1:] + "." if said else DONT_KNOW


# -- the server -----------------------------------------------------------------------------


def sse_chunk(delta: dict[str, Any], finish: str | None = None, model: str = "reference") -> bytes:
    """One server-sent event of a streamed OpenAI-compatible chat completion (also the
    scripted test server's, tests/engines/openai_server.py)."""
    event = {
        "id": f"chatcmpl-{model}",
        "object": "chat.completion.chunk",
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(event).encode() + b"\n\n"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/requests"):
            with self.server.lock:
                body = json.dumps(self.server.received).encode()
            self._send(200, "application/json", body)
        else:
            self._send(404, "text/plain", b"not found\n")

    def do_POST(self) -> None:
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send(404, "application/json", b'{"error": "not found"}')
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
            request = json.loads(self.rfile.read(length) or b"{}")
            messages = request["messages"]
            if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
                raise TypeError("messages")
        except (ValueError, KeyError, TypeError):
            self._send(400, "application/json", b'{"error": "expected a chat request"}')
            return
        with self.server.lock:
            self.server.received = [*self.server.received[-KEEP_REQUESTS + 1 :], request]
        reply = answer(messages)
        try:
            if request.get("stream"):
                self._stream(reply)
            else:
                body = {
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}}]
                }
                self._send(200, "application/json", json.dumps(body).encode())
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client left

    def _stream(self, reply: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._write(sse_chunk({"role": "assistant"}))
        for n, word in enumerate(reply.split(" ")):
            self._write(sse_chunk({"content": (" " if n else "") + word}))
        self._write(sse_chunk({}, finish="stop"))
        self._write(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _write(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.lock = threading.Lock()
        self.received: list[Any] = []


def main(argv: list[str]) -> int:
    try:
        port = int(argv[0]) if argv else 0
    except ValueError:
        print(f"reference_model: {argv[0]!r} is not a port number", file=sys.stderr)
        return 2
    server = Server(port)
    print(server.server_address[1], flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
