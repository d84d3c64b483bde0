"""What a forgetting will take, worked out before anything is deleted (so it can be shown).

By ids ("forget that", ``memory forget 35 36``): those turns and facts, and the facts whose
only receipts were those turns; a fact also learnt from another turn stays, with that one.

By topic ("forget about Biscuit", ``memory forget --match``): the turns about it
(``memory.topic``), whole when they say nothing else, otherwise rewritten without the
sentences and clauses about it; the facts about it; and the facts learnt from a touched turn
that no receipt still supports. A fact learnt from a rewritten turn keeps it as its receipt
when the rewritten words still say it ("I work at Acme" stays the receipt of "work: at Acme").

``MemoryDb.erase`` carries a plan out in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from voice_companion.memory.seam import TopicMatches
from voice_companion.memory.store import MemoryDb
from voice_companion.memory.topic import Topic


def plan_ids(db: MemoryDb, turn_ids: Sequence[int], fact_ids: Sequence[int] = ()) -> TopicMatches:
    """Forgetting these turns and facts: what goes (see the module docstring)."""
    turns = set(turn_ids)
    facts = set(fact_ids)
    for fact_id in db.facts_from_turns(sorted(turns)):
        if all(t in turns for t in db.fact(fact_id).source_turn_ids):
            facts.add(fact_id)
    return TopicMatches(tuple(sorted(turns)), tuple(sorted(facts)))


def plan_topic(db: MemoryDb, phrase: str) -> TopicMatches:
    """Forgetting everything about ``phrase``: what goes, and what is rewritten."""
    topic = Topic.of(phrase)
    if not topic:
        return TopicMatches()
    whole: list[int] = []
    rewritten: dict[int, str] = {}
    for turn in db.turns_about(topic):
        rest = topic.redact(turn.text)
        if rest:
            rewritten[turn.id] = rest
        else:
            whole.append(turn.id)
    facts = set(db.matching_fact_ids(topic))
    dropped: list[tuple[int, int]] = []
    for fact_id in db.facts_from_turns(sorted([*whole, *rewritten])):
        if fact_id in facts:
            continue
        fact = db.fact(fact_id)
        says = Topic.of(fact.value)
        kept = 0
        for source in fact.source_turn_ids:
            if source in whole:
                continue
            if source in rewritten and not says.matches(rewritten[source]):
                dropped.append((fact_id, source))  # the words it came from are gone
                continue
            kept += 1
        if not kept:
            facts.add(fact_id)
    return TopicMatches(
        tuple(sorted(whole)),
        tuple(sorted(facts)),
        tuple(sorted(rewritten.items())),
        tuple(sorted(p for p in dropped if p[0] not in facts)),
    )
