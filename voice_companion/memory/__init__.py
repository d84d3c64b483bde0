"""Long-term memory: every turn kept in SQLite on the user's disk, recalled by words and meaning.

::

    store.py      memory.db: schema migrations, turns, facts, cached embeddings, real deletion
    retrieval.py  hybrid search: BM25 (FTS5) + dense vectors + recency fused, then re-ranked
    timewords.py  the period a question names ("last summer", "in May"), for retrieval
    factkeys.py   facts as extra search keys for the turns they came from
    facts.py      durable facts about the user from what they said (rules; optionally the LLM)
    topic.py      what is "about" a topic: the one matcher (database, history, CLI) and redaction
    forgetting.py what a forgetting takes (by ids or by topic), worked out before it is done
    profile.py    who the user is to the companion: name, reply length, tone, topics, mood
    seam.py       MemoryStore: what the dialogue needs of a memory (and NoMemory, the default)
    longterm.py   LongTermMemory: the dialogue's MemoryStore over all of the above
    transfer.py   export / import (JSON); LoCoMo data and the recall benchmark are in bench/
"""
