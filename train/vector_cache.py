"""Encoder vectors for offline work (training, evaluation), cached on disk by content.

    from train.vector_cache import encode_cached
    vectors = encode_cached(texts, settings.encoder)   # (n, dim) float32; a second call reads artifacts/cache

The key is the model and the exact texts, so a changed text list or model never
reuses stale vectors; the encoder is only loaded on a miss. Both encoder backends
give the same vectors for the same model, so offline work always encodes with
sentence-transformers (cheap to start on a CPU).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from shopsense.config import EncoderSettings
from shopsense.datasets import REPO_ROOT
from shopsense.encoders import Encoder, build_encoder, default_model_path

CACHE_DIR = REPO_ROOT / "artifacts" / "cache"


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


def encode_cached(texts: list[str], settings: EncoderSettings, cache_dir: Path = CACHE_DIR,
                  batch_size: int = 1024) -> np.ndarray:
    path = Path(cache_dir) / f"{cache_key(settings.model or default_model_path(), texts)}.npy"
    if path.exists():
        return np.load(path)
    encoder = offline_encoder(settings)
    chunks = [encoder.encode(texts[start:start + batch_size]) for start in range(0, len(texts), batch_size)]
    vectors = np.concatenate(chunks) if chunks else np.zeros((0, encoder.dim), dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vectors)
    tmp.replace(path)
    return vectors
