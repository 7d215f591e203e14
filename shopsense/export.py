"""Exports from the event store: the click-through log for ranker retraining, and per-item statistics.

    from shopsense.export import export_clickthrough, aggregate_stats
    export_clickthrough(Settings.load(), "runs/clickthrough.parquet")   # shopsense export clickthrough --out PATH
    aggregate_stats(Settings.load(), epsilon=1.0)                       # DataFrame: item_id + a count per type

Click-through parquet: one row per ranked item of every logged answer within retention, columns

    request_id, user_key (pseudonym), query, timestamp (when served), item_id, position (0 = top),
    events (list of the event types that followed with this request_id, oldest first),
    clicked (any of them other than a view), label (0 nothing/view, 1 click or dwell, 2 add_to_cart,
    3 purchase: the strongest follow-up, a graded relevance for lambdarank),
    feature_<name> (one float column per ranking feature logged with the item; missing -> NaN)

Aggregate statistics, optionally with differential privacy (the Laplace mechanism):

    noisy_count[item, type] = count[item, type] + Laplace(0, b),   b = sensitivity / epsilon
    sensitivity = store.max_events_per_user

A shopper keeps at most `max_events_per_user` events (the store's cap), so adding or removing one
shopper changes the whole table by at most that many events in total: it is both the largest change
to one count and the L1 sensitivity of the table, and so the whole release is epsilon-DP at the
level of shoppers. Smaller epsilon, more privacy, more noise: the error of each count has mean 0,
mean absolute value b and standard deviation sqrt(2) * b (with the default cap of 200 and epsilon 1,
b = 200). Counts are left unrounded and may be negative, so they stay unbiased. The set of items
itself is released too; pass `items` (e.g. the whole catalogue) so that exactly those rows appear,
unseen ones with noisy zeros, and presence in the table reveals nothing.
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import closing
from pathlib import Path

import numpy as np
import pandas as pd
import redis

from shopsense.config import Settings
from shopsense.schemas import ITEM_EVENTS, EventType
from shopsense.stores import open_store

BASE_COLUMNS = ("request_id", "user_key", "query", "timestamp", "item_id", "position", "events", "clicked", "label")
LABELS = {"click": 1, "dwell": 1, "add_to_cart": 2, "purchase": 3}
ITEM_TYPES = tuple(t.value for t in EventType if t in ITEM_EVENTS)


def clickthrough_frame(rows: Iterable[dict]) -> pd.DataFrame:
    """Store click-through rows (Store.clickthrough) as a flat table: features become feature_<name> columns."""
    flat = []
    for row in rows:
        record = {name: row[name] for name in BASE_COLUMNS if name in row}
        record["label"] = max((LABELS.get(t, 0) for t in row["events"]), default=0)
        record.update({f"feature_{name}": float(value) for name, value in row["features"].items()})
        flat.append(record)
    frame = pd.DataFrame(flat, columns=None if flat else list(BASE_COLUMNS))
    features = sorted(c for c in frame.columns if c.startswith("feature_"))
    types = {"timestamp": "float64", "position": "int64", "label": "int64", "clicked": "bool"}
    return frame[list(BASE_COLUMNS) + features].astype(types)


def export_clickthrough(settings: Settings, out_path: str | Path) -> int:
    """Write the joined click-through log to parquet at `out_path`; return the number of rows."""
    store = open_store(settings.store)
    try:
        frame = clickthrough_frame(store.clickthrough())
    finally:
        store.close()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(out_path.name + ".partial")
    frame.to_parquet(partial, index=False)
    os.replace(partial, out_path)  # readers never see half a file
    return len(frame)


def stored_item_events(settings: Settings) -> Iterator[tuple[str, str]]:
    """(item_id, event type) of every stored item event within retention, read straight from the store's
    documented layout (the Store interface has no full scan)."""
    cutoff = time.time() - settings.store.retention_days * 86_400
    if settings.store.backend == "sqlite":
        with closing(sqlite3.connect(f"file:{settings.store.sqlite_path}?mode=ro", uri=True)) as db:
            yield from db.execute("SELECT item_id, type FROM events WHERE item_id IS NOT NULL AND ts >= ?", (cutoff,))
        return
    from shopsense.stores.redis import _TYPES_BY_CODE, _events_key

    client = redis.Redis.from_url(settings.store.redis_url, decode_responses=True)
    try:
        for key in client.scan_iter(match=_events_key("*"), count=1000):
            for raw in client.lrange(key, 0, -1):
                record = json.loads(raw)
                if "i" in record and record["ts"] >= cutoff:
                    yield record["i"], _TYPES_BY_CODE[record["t"]].value
    finally:
        client.close()


def laplace_noise(counts: np.ndarray, sensitivity: float, epsilon: float, rng: np.random.Generator) -> np.ndarray:
    """counts + Laplace(0, sensitivity / epsilon) noise, element-wise."""
    if epsilon <= 0:
        raise ValueError("epsilon must be positive")
    return counts + rng.laplace(0.0, sensitivity / epsilon, size=counts.shape)


def aggregate_stats(settings: Settings, epsilon: float | None = None, items: Iterable[str] | None = None,
                    seed: int | None = None) -> pd.DataFrame:
    """Per-item event counts by type (columns item_id, view, click, add_to_cart, purchase, dwell), exact
    (int) or with Laplace noise (float) when `epsilon` is given; see the module docstring. The frame's
    attrs hold epsilon, sensitivity and the noise scale b."""
    counts = Counter(stored_item_events(settings))
    item_ids = sorted({item for item, _ in counts}) if items is None else list(dict.fromkeys(items))
    table = np.array([[counts.get((item, t), 0) for t in ITEM_TYPES] for item in item_ids],
                     dtype=np.int64).reshape(len(item_ids), len(ITEM_TYPES))
    sensitivity = settings.store.max_events_per_user
    values = table if epsilon is None else laplace_noise(table, sensitivity, epsilon, np.random.default_rng(seed))
    frame = pd.DataFrame(values, columns=list(ITEM_TYPES))
    frame.insert(0, "item_id", item_ids)
    frame.attrs.update(epsilon=epsilon, sensitivity=sensitivity,
                       scale=None if epsilon is None else sensitivity / epsilon)
    return frame
