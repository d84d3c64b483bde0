from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from voice_companion.bench.latency import default_utterances_dir, load_utterances
from voice_companion.engines import bundled
from voice_companion.engines.gguf import as_q8_0

# English conversation to predict: the benchmark's utterances, each said twice over.
TEXT = " ".join(u.text for u in load_utterances(default_utterances_dir()) for _ in range(2))


def _log_probs(path: Path) -> tuple[list[int], np.ndarray]:
    """The model's log-probabilities of each next token of ``TEXT``."""
    from llama_cpp import Llama

    llama = Llama(model_path=str(path), n_ctx=512, n_threads=2, logits_all=True, verbose=False)
    tokens = llama.tokenize(TEXT.encode())[:400]
    llama.eval(tokens)
    scores = np.array(llama.scores[: len(tokens)], dtype=np.float64)
    scores -= scores.max(axis=1, keepdims=True)
    return tokens, scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))


@pytest.mark.models
def test_the_bundled_model_as_q8_0_is_made_once_and_is_the_same_model(tmp_path: Path) -> None:
    source = bundled.smollm2_gguf_path()
    stale = tmp_path / f"{source.stem}.as-Q8_0.1-2.gguf"
    stale.write_bytes(b"an older copy")

    copy = as_q8_0(source, tmp_path)
    assert copy.parent == tmp_path and copy.is_file()
    assert not stale.exists()
    made = copy.stat().st_mtime_ns
    assert as_q8_0(source, tmp_path) == copy
    assert copy.stat().st_mtime_ns == made  # reused, not made again
    assert [p.name for p in tmp_path.iterdir()] == [copy.name]

    tokens, original = _log_probs(source)
    _, q8 = _log_probs(copy)
    steps = np.arange(len(tokens) - 1)
    nll_original = -original[steps, tokens[1:]].mean()
    nll_q8 = -q8[steps, tokens[1:]].mean()
    agree = (original.argmax(axis=1) == q8.argmax(axis=1)).mean()
    # Same weights held in more bits: the same predictions, up to rounding.
    assert abs(nll_q8 - nll_original) < 0.05 * nll_original
    assert agree > 0.85


def test_a_cache_that_cannot_be_written_keeps_the_original(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = tmp_path / "model.gguf"
    shutil.copyfile(bundled.smollm2_gguf_path(), source)
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache folder should be")
    with caplog.at_level(logging.WARNING):
        assert as_q8_0(source, blocked / "models") == source
    assert "cannot write its faster copy" in caplog.text


@pytest.mark.models
def test_a_file_the_quantizer_cannot_read_keeps_the_original(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = tmp_path / "broken.gguf"
    source.write_bytes(b"GGUF" + os.urandom(4096))
    with caplog.at_level(logging.WARNING):
        assert as_q8_0(source, tmp_path / "cache") == source
    assert "cannot write its faster copy" in caplog.text
    assert list((tmp_path / "cache").iterdir()) == []
