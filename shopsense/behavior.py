"""Behaviour features: a shopper's recent events folded into the behaviour vector, affinities, views and recency.

    summary = summarize(events, index, now, settings.profile)   # events newest first, as the stores return them

Formulas (defaults in shopsense.config.ProfileSettings; `now` is the request time):

    w_j          = type_weight(b_j) * dwell_factor(b_j) * 0.5 ** (age_j / half_life)
                   type_weight: view 1, click 2, add_to_cart 4, purchase 8, dwell 1 (a view, scaled by its seconds)
                   dwell_factor = 1 + ln(1 + seconds / 30)  (dwell events; 1 otherwise)
    f_behavior   = sum_j w_j v(b_j) / sum_j w_j       v: the product's encoder vector (catalogue products only)
    affinity[a][x] = sum_{j: a(b_j) = x} w_j / sum_{j: a(b_j) known} w_j
                   for a in category, brand, price band; the top 5 values per attribute, as shares

Each sum runs over the item events (view, click, add_to_cart, purchase, dwell) of one view, at most
`history_events` of them, newest first:

    top-level fields   every event given, half_life = half_life_hours (72 h): the profile's default blend,
                       what ranking uses
    long_term          the same events, half_life = views.long_term_half_life_hours (720 h): stable tastes
                       that a burst of recent activity does not wash out
    session            the current session: the events carrying the session_id of the newest event that
                       has one; when no event has a session id, the events of the last
                       views.session_window_minutes (30 min) before `now`; half_life = half_life_hours

Counts and recency, over every event given (searches included):

    counts[type]              events of each type
    events_last_hour / _day   events with now - timestamp <= 3600 s / 86400 s (future timestamps count as now)
    seconds_since_last_event  max(0, now - newest timestamp), None without events

Events for products not in the catalogue still count (counts, recency, item weights) but add no vector
and no affinity. Searches shape f_text (shopsense.profile.search_history), not f_behavior.
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
HOUR_S, DAY_S = 3600.0, 86_400.0


@dataclass
class BehaviorView:
    """The behaviour features of one slice of a shopper's events (see the module docstring)."""

    f_behavior: np.ndarray | None = None
    item_weights: dict[str, float] = field(default_factory=dict)   # product -> summed event weight
    items: list[str] = field(default_factory=list)                  # distinct products, newest first
    affinities: dict[str, dict[str, float]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)            # events of each type, searches included
    first_event_at: float | None = None
    last_event_at: float | None = None


@dataclass
class SessionView(BehaviorView):
    session_id: str | None = None   # None: the session is the time window, events carried no session id


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
    session: SessionView = field(default_factory=SessionView)
    long_term: BehaviorView = field(default_factory=BehaviorView)
    events_last_hour: int = 0
    events_last_day: int = 0
    seconds_since_last_event: float | None = None


def summarize(events: list[Event], index: CatalogIndex, now: float, cfg: ProfileSettings) -> BehaviorSummary:
    """`events` newest first, as the stores return them."""
    searches, search_weights = search_history(events, now, cfg)
    blend = view(events, index, now, cfg)
    session_id, session_events = current_session(events, now, cfg.views.session_window_minutes * 60.0)
    session = SessionView(**vars(view(session_events, index, now, cfg)), session_id=session_id)
    slow = cfg.model_copy(update={"half_life_hours": cfg.views.long_term_half_life_hours})
    long_term = view(events, index, now, slow)
    ages = [now - e.timestamp for e in events]
    return BehaviorSummary(
        f_behavior=blend.f_behavior, searches=searches, search_weights=search_weights,
        item_weights=blend.item_weights, recent_items=blend.items,
        purchased={e.item_id for e in item_events(events, cfg) if e.type is EventType.purchase},
        affinities=blend.affinities, counts=blend.counts, last_event_at=blend.last_event_at,
        session=session, long_term=long_term,
        events_last_hour=sum(age <= HOUR_S for age in ages), events_last_day=sum(age <= DAY_S for age in ages),
        seconds_since_last_event=max(0.0, now - blend.last_event_at) if events else None)


def item_events(events: list[Event], cfg: ProfileSettings) -> list[Event]:
    """The newest `history_events` events that act on a product."""
    return [e for e in events if e.type in ITEM_EVENTS][: cfg.history_events]


def view(events: list[Event], index: CatalogIndex, now: float, cfg: ProfileSettings) -> BehaviorView:
    """Behaviour vector, item weights, affinities, counts and time span of `events` (newest first)."""
    acted = item_events(events, cfg)
    weights = [event_weight(e, now, cfg) for e in acted]
    item_weights: dict[str, float] = defaultdict(float)
    for event, weight in zip(acted, weights):
        item_weights[event.item_id] += weight
    known = [(index.row_of[e.item_id], w) for e, w in zip(acted, weights) if e.item_id in index.row_of]
    f_behavior = weighted_mean(index.vectors[[r for r, _ in known]], np.array([w for _, w in known])) if known else None
    timestamps = [e.timestamp for e in events]
    return BehaviorView(f_behavior=f_behavior, item_weights=dict(item_weights),
                        items=list(dict.fromkeys(e.item_id for e in acted)), affinities=affinities(known, index),
                        counts=dict(Counter(e.type.value for e in events)),
                        first_event_at=min(timestamps, default=None), last_event_at=max(timestamps, default=None))


def current_session(events: list[Event], now: float, window_s: float) -> tuple[str | None, list[Event]]:
    """(session id, events) of the shopper's current session; see the module docstring."""
    latest = next((e.session_id for e in events if e.session_id), None)
    if latest is not None:
        return latest, [e for e in events if e.session_id == latest]
    return None, [e for e in events if now - e.timestamp <= window_s]


def affinities(rows_and_weights: list[tuple[int, float]], index: CatalogIndex) -> dict[str, dict[str, float]]:
    """Per attribute, each value's share of the shopper's event weight (only attributes the catalogue has)."""
    result = {}
    for attribute in AFFINITY_ATTRIBUTES:
        if attribute not in index.products:
            continue
        # One gather of just these rows: quicker than a lookup per row, and O(rows), not O(catalogue).
        values = index.products[attribute].iloc[[row for row, _ in rows_and_weights]].tolist()
        totals: dict[str, float] = defaultdict(float)
        for value, (_, weight) in zip(values, rows_and_weights):
            if value is not None and value == value:  # skips None and NaN
                totals[str(value)] += weight
        total = sum(totals.values())
        if total > 0:
            result[attribute] = {k: round(v / total, 4) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])[:5]}
    return result
