"""Adapters from the public data formats shopsense uses to its own products and events.

    amazon_reviews(dir)   items.parquet + interactions.parquet (McAuley 2014, 5-core; a review = a purchase)
    otto_sessions(path)   OTTO sessions JSONL (clicks / carts / orders, millisecond timestamps)
    homedepot(path)       Home Depot search relevance judgements (query, product title, relevance 1-3)
    esci_products(path)   ESCI rows with full product text (title, brand, colour, description)

`DEMO_DATA` is the small real subset bundled in the repository (see train/make_demo_data.py),
`QUERY_DATA` the bundled real queries labelled by train/query_data.py, `SHARED_DATA` the larger
sets beside the project when present.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from shopsense.catalog import normalize
from shopsense.schemas import Event, EventType

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_DATA = REPO_ROOT / "data" / "beauty-demo"
QUERY_DATA = REPO_ROOT / "data" / "queries" / "labelled_queries.parquet"
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

OTTO_TYPES = {"clicks": EventType.click, "carts": EventType.add_to_cart, "orders": EventType.purchase}


def amazon_reviews(directory: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(products, interactions); interactions have string user_id/item_id and Unix-second timestamps,
    sorted by shopper then time (ties keep file order, since order within a day is unknown)."""
    directory = Path(directory)
    products = normalize(pd.read_parquet(directory / "items.parquet"))
    interactions = pd.read_parquet(directory / "interactions.parquet")
    interactions = interactions.astype({"user_id": str, "item_id": str})
    interactions = interactions.sort_values(["user_id", "timestamp"], kind="stable").reset_index(drop=True)
    return products, interactions


def interaction_events(interactions: pd.DataFrame, event_type: EventType = EventType.purchase) -> Iterator[Event]:
    """Events from an interactions table (user_id, item_id, timestamp); the row index makes event ids unique."""
    for row in interactions.itertuples():
        yield Event(event_id=f"{row.user_id}:{row.item_id}:{row.timestamp}:{row.Index}", user_id=str(row.user_id),
                    type=event_type, item_id=str(row.item_id), timestamp=float(row.timestamp))


def otto_sessions(path: str | Path) -> Iterator[Event]:
    with open(path) as lines:
        for line in lines:
            session = json.loads(line)
            for n, event in enumerate(session["events"]):
                yield Event(event_id=f"otto:{session['session']}:{n}", user_id=f"otto-{session['session']}",
                            session_id=str(session["session"]), type=OTTO_TYPES[event["type"]],
                            item_id=str(event["aid"]), timestamp=event["ts"] / 1000.0)


def homedepot(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(products, judgements with columns query, item_id, relevance)."""
    frame = pd.read_parquet(path)
    products = normalize(frame[["product_uid", "product_title"]])
    judgements = pd.DataFrame({"query": frame["search_term"].astype(str), "item_id": frame["product_uid"].astype(str),
                               "relevance": frame["relevance"].astype(float)})
    return products, judgements


def esci_products(path: str | Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    frame = frame.rename(columns={"product_color": "colour"})
    products = normalize(frame)
    colours = frame.drop_duplicates("product_id").set_index(frame.drop_duplicates("product_id")["product_id"].astype(str))
    products["colour"] = products["item_id"].map(colours["colour"]).where(lambda c: c.notna(), None)
    return products
