"""Behaviour features: a shopper's recent events folded into the behaviour vector and affinities.

    summary = summarize(events, index, now, settings.profile)

f_behavior is the weighted mean of the vectors of the products acted on, each event
weighted by type x dwell x time decay (shopsense.profile.event_weight). Affinities are
the same weights summed per category, brand and price band, as shares that add to 1.
Events for products not in the catalogue still count (counts, recency) but add no vector.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

from shopsense.config import ProfileSettings
from shopsense.index import CatalogIndex
from shopsense.profile import event_weight, search_history, weighted_mean
from shopsense.schemas import ITEM_EVENTS, Event, EventType

AFFINITY_ATTRIBUTES = ("category", "brand", "price_band")


@dataclass
class BehaviorSummary:
    f_behavior: np.ndarray | None = None
    searches: list[str] = field(default_factory=list)
    search_weights: np.ndarray = field(default_factory=lambda: np.zeros(0))
    item_weights: dict[str, float] = field(default_factory=dict)   # product -> summed event weight
    recent_items: list[str] = field(default_factory=list)           # distinct, newest first
    purchased: set[str] = field(default_factory=set)
    affinities: dict[str, dict[str, float]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    last_event_at: float | None = None


def summarize(events: list[Event], index: CatalogIndex, now: float, cfg: ProfileSettings) -> BehaviorSummary:
    """`events` newest first, as the stores return them."""
    searches, search_weights = search_history(events, now, cfg)
    item_events = [e for e in events if e.type in ITEM_EVENTS][: cfg.history_events]
    weights = np.array([event_weight(e, now, cfg) for e in item_events], dtype=np.float64)

    item_weights: dict[str, float] = defaultdict(float)
    for event, weight in zip(item_events, weights):
        item_weights[event.item_id] += weight
    known = [(index.row_of[e.item_id], w) for e, w in zip(item_events, weights) if e.item_id in index.row_of]
    f_behavior = weighted_mean(index.vectors[[r for r, _ in known]], np.array([w for _, w in known])) if known else None

    return BehaviorSummary(
        f_behavior=f_behavior, searches=searches, search_weights=search_weights, item_weights=dict(item_weights),
        recent_items=list(dict.fromkeys(e.item_id for e in item_events)),
        purchased={e.item_id for e in item_events if e.type is EventType.purchase},
        affinities=affinities(known, index), counts=dict(Counter(e.type.value for e in events)),
        last_event_at=max((e.timestamp for e in events), default=None))


def affinities(rows_and_weights: list[tuple[int, float]], index: CatalogIndex) -> dict[str, dict[str, float]]:
    """Per attribute, each value's share of the shopper's event weight (only attributes the catalogue has)."""
    result = {}
    for attribute in AFFINITY_ATTRIBUTES:
        if attribute not in index.products:
            continue
        column = index.products[attribute]
        totals: dict[str, float] = defaultdict(float)
        for row, weight in rows_and_weights:
            value = column.iat[row]
            if value is not None and value == value:  # skips None and NaN
                totals[str(value)] += weight
        total = sum(totals.values())
        if total > 0:
            result[attribute] = {k: round(v / total, 4) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])[:5]}
    return result
