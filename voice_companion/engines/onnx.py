"""onnxruntime sessions, set up the same way for every model run on it (the voice, Silero,
the sentence embedder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load_session(path: Path, threads: int = 0) -> Any:
    """A CPU session for the model at ``path``; ``threads`` 0 leaves onnxruntime's default
    (one per core). Raises onnxruntime's own (untyped) errors: callers wrap them.

    Inputs change shape from call to call (a sentence's phonemes, a batch of texts), and with
    onnxruntime's defaults every new shape leaves memory behind: the arena keeps the largest
    block ever needed and grows by doubling (a 256 MB block appeared mid-soak), and a memory
    pattern is cached per shape. Both are off, so a tensor's memory goes back to the system
    allocator when the call ends (large blocks are unmapped then: see ``engines``)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads > 0:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.enable_cpu_mem_arena = False
    options.enable_mem_pattern = False
    return onnxruntime.InferenceSession(
        str(path), sess_options=options, providers=["CPUExecutionProvider"]
    )
