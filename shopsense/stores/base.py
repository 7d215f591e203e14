"""The store interface every backend implements, and the test suite every backend must pass.

Events arrive validated (shopsense.schemas.Event) with `user_id` already replaced by
the shopper's pseudonym. A write is all-or-nothing: either every event of a call is
durably stored (or recognised as a retry by its event_id) or none is.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Iterator, Sequence

from shopsense.schemas import Event


class Store(ABC):
    @abstractmethod
    def add_events(self, events: Sequence[Event]) -> int:
        """Store events atomically; return how many were new (retried event_ids are not stored twice).

        Keeps at most `max_events_per_user` newest events per shopper and drops events older
        than the retention window."""

    @abstractmethod
    def recent_events(self, user_key: str, limit: int) -> list[Event]:
        """The shopper's newest events within retention, newest first."""

    @abstractmethod
    def put_profile(self, user_key: str, profile: dict) -> None:
        """Persist the shopper's profile summary (JSON-serialisable), replacing the previous one."""

    @abstractmethod
    def get_profile(self, user_key: str) -> dict | None: ...

    @abstractmethod
    def log_ranking(self, request_id: str, user_key: str, query: str | None, items: list[dict],
                    timestamp: float) -> None:
        """Click-through log: what was ranked for a request (items carry item_id, position, features)."""

    @abstractmethod
    def clickthrough(self) -> Iterator[dict]:
        """Logged rankings joined with later events that carry their request_id: one row per ranked item
        with request_id, user_key, query, item_id, position, features, and the event types that followed."""

    @abstractmethod
    def erase_user(self, user_key: str) -> int:
        """Remove the shopper's events, profile and click-through entries; return the number of events removed."""

    @abstractmethod
    def count_events(self) -> int: ...

    def close(self) -> None:
        pass


def clickthrough_rows(request_id: str, user_key: str, query: str | None, timestamp: float, items: list[dict],
                      followups: Sequence[tuple[str | None, str]]) -> Iterator[dict]:
    """One click-through row per ranked item, given the (item_id, event type) pairs of the shopper's
    events that carried this request_id, oldest first. Shared by every backend."""
    types_by_item: dict[str | None, list[str]] = defaultdict(list)
    for item_id, event_type in followups:
        types_by_item[item_id].append(event_type)
    for item in items:
        types = types_by_item.get(item["item_id"], [])
        yield {"request_id": request_id, "user_key": user_key, "query": query, "timestamp": timestamp,
               "item_id": item["item_id"], "position": item["position"], "features": item.get("features", {}),
               "events": types, "clicked": any(t != "view" for t in types)}
