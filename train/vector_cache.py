"""Encoder vectors and intent/demand probabilities for offline work (training, evaluation), cached on disk.

    from train.vector_cache import encode_cached, classify_cached
    vectors = encode_cached(texts, settings.encoder)   # (n, dim) float32; a second call reads artifacts/cache
    encoded = classify_cached(texts, vectors, settings) # Encoded with the intent/demand models' probabilities

The key is the model (its path and weights' mtime) and the exact texts, so a changed
text list or a retrained model never reuses stale vectors; the encoder is only loaded
on a miss. Both encoder backends give the same vectors for the same model, so offline
work always encodes with sentence-transformers (cheap to start on a CPU).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from shopsense.config import EncoderSettings, Settings
from shopsense.datasets import REPO_ROOT
from shopsense.encoders import Encoder, build_encoder, default_model_path
from shopsense.text_models import Encoded, classifier_paths

CACHE_DIR = REPO_ROOT / "artifacts" / "cache"


def model_stamp(model_dir: str | Path) -> str:
    """The model's path and its weights file's mtime: a model retrained in place gets a new cache key."""
    model_dir = Path(model_dir)
    weights = next(model_dir.glob("*.safetensors"), model_dir / "config.json")
    return f"{model_dir.resolve()}@{weights.stat().st_mtime_ns}"


def cache_key(model: str, texts: list[str]) -> str:
    digest = hashlib.sha256(model.encode())
    for text in texts:
        digest.update(b"\0" + text.encode())
    return digest.hexdigest()[:24]


_ENCODERS: dict[str, Encoder] = {}


def offline_encoder(settings: EncoderSettings) -> Encoder:
    model = settings.model or default_model_path()
    if model not in _ENCODERS:
        _ENCODERS[model] = build_encoder(settings.model_copy(update={"backend": "sentence-transformers"}))
    return _ENCODERS[model]


def _cached(path: Path, compute) -> np.ndarray:
    if path.exists():
        return np.load(path)
    values = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, values)
    tmp.replace(path)
    return values


def encode_cached(texts: list[str], settings: EncoderSettings, cache_dir: Path = CACHE_DIR,
                  batch_size: int = 1024) -> np.ndarray:
    def compute():
        encoder = offline_encoder(settings)
        chunks = [encoder.encode(texts[start:start + batch_size]) for start in range(0, len(texts), batch_size)]
        return np.concatenate(chunks) if chunks else np.zeros((0, encoder.dim), dtype=np.float32)

    return _cached(Path(cache_dir) / f"{cache_key(model_stamp(settings.model or default_model_path()), texts)}.npy",
                   compute)


def classify_cached(texts: list[str], vectors: np.ndarray, settings: Settings, cache_dir: Path = CACHE_DIR) -> Encoded:
    """`vectors` (the texts' encodings) with the probabilities of the intent/demand models that exist, computed
    with their PyTorch backend (equal to vLLM's, tests/test_e2e.py). A retrained model has a new weights file
    and so a new cache key."""
    from shopsense.query_models import QueryClassifier

    encoded = Encoded(vectors)
    for task, model_dir in classifier_paths(settings).items():
        # the model is loaded only on a cache miss
        probs = _cached(Path(cache_dir) / f"{task}-{cache_key(model_stamp(model_dir), texts)}.npy",
                        lambda: QueryClassifier(model_dir).predict(texts))
        labels = QueryClassifier.read_labels(model_dir)
        if task == "intent":
            encoded.intent, encoded.intent_labels = probs, labels
        else:
            encoded.demand, encoded.demand_labels = probs, labels
    return encoded
