"""The shopper profile of DESIGN.md, as plain numpy: weights, decay, and the fused profile.

For shopper u with search texts t_i and behaviour events b_j:

    decay(age)    = 0.5 ** (age / half_life)
    w_j           = type_weight(b_j) * dwell_factor(b_j) * decay(now - ts_j)
    dwell_factor  = 1 + ln(1 + seconds / dwell_unit)        (dwell events; 1 otherwise)
    f_text        = sum_i r_i M(t_i) / sum_i r_i            r_i = decay(now - ts_i)
    f_behavior    = sum_j w_j v(b_j) / sum_j w_j            v: the product's encoder vector
    g, d          = recency-weighted means of intent / demand probabilities, like f_text
    profile f     = [f_text, f_behavior, g, d]

Every function here is used unchanged by the serving graph, the in-process
pipeline, the evaluation and the benchmarks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from shopsense.config import ProfileSettings
from shopsense.schemas import Event, EventType


def decay(age_seconds: float, half_life_hours: float) -> float:
    """Exponential time decay: 1 now, 0.5 one half-life ago. Future timestamps count as now."""
    return 0.5 ** (max(age_seconds, 0.0) / (half_life_hours * 3600.0))


def dwell_factor(seconds: float | None, dwell_unit_s: float) -> float:
    return 1.0 if seconds is None else 1.0 + math.log1p(seconds / dwell_unit_s)


def event_weight(event: Event, now: float, cfg: ProfileSettings) -> float:
    """Weight of one behaviour event: type weight x dwell factor x time decay."""
    base = cfg.event_weights.get(event.type.value, 0.0)
    return base * dwell_factor(event.dwell_seconds, cfg.dwell_unit_s) * decay(now - event.timestamp, cfg.half_life_hours)


def weighted_mean(vectors: np.ndarray, weights: np.ndarray) -> np.ndarray | None:
    """sum_j w_j v_j / sum_j w_j, or None when there is nothing (or no weight) to average."""
    weights = np.asarray(weights, dtype=np.float64)
    if len(vectors) == 0 or weights.sum() <= 0:
        return None
    return (weights[:, None] * np.asarray(vectors, dtype=np.float64)).sum(0) / weights.sum()


def unit(vector: np.ndarray | None) -> np.ndarray | None:
    """L2-normalised copy (float32), so that a dot product with product vectors is a cosine."""
    if vector is None:
        return None
    norm = float(np.linalg.norm(vector))
    return None if norm == 0 else (np.asarray(vector, dtype=np.float64) / norm).astype(np.float32)


@dataclass
class Profile:
    """The fused profile f = [f_text, f_behavior, g, d] plus the query of the current request."""

    query: np.ndarray | None = None
    f_text: np.ndarray | None = None
    f_behavior: np.ndarray | None = None
    intent: dict[str, float] = field(default_factory=dict)
    demand: dict[str, float] = field(default_factory=dict)


def fuse(query_vector: np.ndarray | None, search_vectors: np.ndarray, search_weights: np.ndarray,
         f_behavior: np.ndarray | None, intent_probs: np.ndarray | None = None,
         demand_probs: np.ndarray | None = None, intent_labels: list[str] = (),
         demand_labels: list[str] = (), intent_weights: np.ndarray | None = None) -> Profile:
    """Combine the query vector, the encoded search history and the behaviour vector into a Profile.

    `search_weights` are the recency weights r_i of the searches; intent/demand probabilities
    (one row per text) are averaged with `intent_weights` (default: the same r_i).
    """
    intent_weights = search_weights if intent_weights is None else intent_weights
    profile = Profile(query=unit(query_vector), f_text=unit(weighted_mean(search_vectors, search_weights)),
                      f_behavior=unit(f_behavior))
    for probs, labels, target in ((intent_probs, intent_labels, profile.intent),
                                  (demand_probs, demand_labels, profile.demand)):
        mean = weighted_mean(probs, intent_weights) if probs is not None else None
        if mean is not None:
            target.update({label: round(float(p), 4) for label, p in zip(labels, mean)})
    return profile


def search_history(events: list[Event], now: float, cfg: ProfileSettings) -> tuple[list[str], np.ndarray]:
    """The shopper's recent search texts (newest first, at most history_searches) and their recency weights."""
    searches = [e for e in events if e.type is EventType.search][: cfg.history_searches]
    weights = np.array([decay(now - e.timestamp, cfg.half_life_hours) for e in searches], dtype=np.float64)
    return [e.query for e in searches], weights
