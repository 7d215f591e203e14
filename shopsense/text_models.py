"""What the Encoder deployment hosts: the sentence encoder plus the intent and demand classifiers.

    models = TextModels.load(settings)
    encoded = models.encode(["dewalt 20v drill"])   # vectors, intent and demand probabilities per text

The classifiers are the fine-tuned checkpoints of train/train_query_model.py, looked up in
`<artifacts>/models/{intent,demand}` (or `query_models.*_path`); where one is missing the
profile simply has no g or d. They run on vLLM's pooling runner when the encoder does, on
PyTorch otherwise (the two agree to 1e-4, tests/test_query_models.py).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shopsense.config import Settings
from shopsense.encoders import Encoder, build_encoder


@dataclass
class Encoded:
    vectors: np.ndarray
    intent: np.ndarray | None = None            # (n, len(intent_labels))
    demand: np.ndarray | None = None            # (n, len(demand_labels))
    intent_labels: list[str] = field(default_factory=list)
    demand_labels: list[str] = field(default_factory=list)

    def rows(self, start: int, stop: int | None = None) -> "Encoded":
        cut = slice(start, stop)
        return Encoded(self.vectors[cut], None if self.intent is None else self.intent[cut],
                       None if self.demand is None else self.demand[cut], self.intent_labels, self.demand_labels)


def concat(first: Encoded, second: Encoded) -> Encoded:
    def stack(a, b):
        return None if a is None or b is None else np.concatenate([a, b])

    return Encoded(np.concatenate([first.vectors, second.vectors]), stack(first.intent, second.intent),
                   stack(first.demand, second.demand), first.intent_labels, first.demand_labels)


def classifier_paths(settings: Settings) -> dict[str, Path]:
    """The intent/demand checkpoints that exist, by task."""
    configured = {"intent": settings.query_models.intent_path, "demand": settings.query_models.demand_path}
    paths = {task: Path(p) if p else settings.artifacts / "models" / task for task, p in configured.items()}
    return {task: path for task, path in paths.items() if (path / "config.json").exists()}


def load_classifiers(settings: Settings) -> dict:
    from shopsense.query_models import QueryClassifier

    backend = "vllm" if settings.encoder.backend == "vllm" else "torch"
    return {task: QueryClassifier(path, backend=backend, memory_fraction=settings.encoder.vllm_memory_fraction)
            for task, path in classifier_paths(settings).items()}


class TextModels:
    def __init__(self, encoder: Encoder, classifiers: dict):
        self.encoder = encoder
        self.classifiers = classifiers  # task -> QueryClassifier; replaced whole by swap_classifiers
        self._lock = threading.Lock()  # vLLM's offline engines are not thread-safe

    @classmethod
    def load(cls, settings: Settings, encoder: Encoder | None = None) -> "TextModels":
        return cls(encoder or build_encoder(settings.encoder), load_classifiers(settings))

    def encode(self, texts: list[str]) -> Encoded:
        with self._lock:
            intent, demand = self.classifiers.get("intent"), self.classifiers.get("demand")
            return Encoded(self.encoder.encode(texts),
                           intent.predict(texts) if intent else None, demand.predict(texts) if demand else None,
                           intent.labels if intent else [], demand.labels if demand else [])

    def swap_classifiers(self, classifiers: dict) -> dict:
        """Install new classifiers between two calls; returns the replaced ones, which no call uses any more."""
        with self._lock:
            old, self.classifiers = self.classifiers, classifiers
        return old
