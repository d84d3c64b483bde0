"""Benchmarks that report numbers (tests never assert wall-clock times).

::

    latency.py  end of speech to first reply audio, per stage, beside the sequential baseline
    soak.py     the real pipeline for minutes or hours: memory, descriptors, threads, drift
    crash.py    kill -9 at random moments: every confirmed turn is still in memory.db
    recall.py   memory recall@k (evidence turns in the top k) and retrieval latency as the
                store grows, each ranking beside the BM25 floor
    locomo.py   the LoCoMo conversation format (Maharana et al. 2024), read for recall.py

The command line for each is in ``voice_companion/cli/bench.py`` (``voice-companion bench``).
"""
