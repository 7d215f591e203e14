"""The shapes of everything that crosses the API: products, events, requests, answers.

Validation lives here so that every entry point (HTTP, bulk import, demo) rejects
the same bad input with the same message. Models forbid unknown fields so a typo
in a client is an error, not a silently ignored field.
"""
from __future__ import annotations

import hashlib
import time
from datetime import datetime
from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Product(_Strict):
    item_id: str = Field(min_length=1, max_length=128)
    title: str = Field(min_length=1)
    brand: str | None = None
    category: str | None = None
    price: float | None = Field(default=None, ge=0)
    description: str | None = None


class EventType(str, Enum):
    view = "view"
    click = "click"
    add_to_cart = "add_to_cart"
    purchase = "purchase"
    dwell = "dwell"
    search = "search"


ITEM_EVENTS = {EventType.view, EventType.click, EventType.add_to_cart, EventType.purchase, EventType.dwell}


class Event(_Strict):
    """One thing a shopper did. `timestamp` is Unix seconds (an ISO-8601 string is accepted)."""

    event_id: str | None = Field(default=None, max_length=128)
    user_id: str = Field(min_length=1, max_length=128)
    type: EventType
    timestamp: float = Field(default_factory=time.time)
    item_id: str | None = Field(default=None, min_length=1, max_length=128)
    query: str | None = Field(default=None, min_length=1, max_length=512)
    dwell_seconds: float | None = Field(default=None, ge=0, le=86_400)
    session_id: str | None = Field(default=None, max_length=128)
    request_id: str | None = Field(default=None, max_length=128)

    @field_validator("timestamp", mode="before")
    @classmethod
    def _parse_timestamp(cls, value):
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                raise ValueError("timestamp must be Unix seconds or an ISO-8601 string") from None
        return value

    @model_validator(mode="after")
    def _check_fields_for_type(self):
        if self.type in ITEM_EVENTS and not self.item_id:
            raise ValueError(f"a {self.type.value} event needs item_id")
        if self.type is EventType.search and not self.query:
            raise ValueError("a search event needs query")
        if self.type is EventType.dwell and self.dwell_seconds is None:
            raise ValueError("a dwell event needs dwell_seconds")
        if self.event_id is None:
            # Retries of the same event carry the same content, so a content hash makes them idempotent.
            self.event_id = self.content_id()
        return self

    def content_id(self) -> str:
        key = "|".join(str(v) for v in (self.user_id, self.type.value, self.timestamp, self.item_id,
                                       self.query, self.dwell_seconds, self.session_id, self.request_id))
        return hashlib.sha256(key.encode()).hexdigest()[:32]

    def keyed(self, user_key: str) -> "Event":
        """This event under the shopper's pseudonym. An id derived from content is derived again from the
        keyed content, so that no stored id is a hash of a raw shopper id."""
        keyed = self.model_copy(update={"user_id": user_key})
        if self.event_id == self.content_id():
            keyed.event_id = keyed.content_id()
        return keyed


class EventBatch(_Strict):
    events: list[Event] = Field(min_length=1)


class IngestResult(_Strict):
    accepted: int
    stored: int = Field(description="newly stored; the rest were retries of events already stored")


class Filters(_Strict):
    category: str | None = None
    brand: str | None = None
    price_min: float | None = Field(default=None, ge=0)
    price_max: float | None = Field(default=None, ge=0)
    exclude_items: list[str] = Field(default_factory=list, max_length=1000)


class RecommendRequest(_Strict):
    user_id: str = Field(min_length=1, max_length=128)
    query: str | None = Field(default=None, max_length=512)
    k: int = Field(default=10, ge=1, le=100)
    filters: Filters | None = None
    session_id: str | None = Field(default=None, max_length=128)

    @field_validator("query")
    @classmethod
    def _blank_query_is_none(cls, value):
        return value if value and value.strip() else None


class RankedItem(_Strict):
    item_id: str
    title: str
    score: float
    reason: str
    signals: dict[str, float] = Field(default_factory=dict)


class RecommendResponse(_Strict):
    request_id: str
    mode: Literal["search", "recommend"]
    items: list[RankedItem]


class Interest(_Strict):
    kind: Literal["query", "product"]
    text: str
    weight: float


class ProfileView(_Strict):
    user_id: str
    counts: dict[str, int]
    top_interests: list[Interest]
    affinities: dict[str, dict[str, float]]
    intent: dict[str, float] = Field(default_factory=dict)
    demand: dict[str, float] = Field(default_factory=dict)
    last_event_at: float | None = None


class EraseResult(_Strict):
    erased_events: int
