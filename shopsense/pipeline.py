"""The recommendation pipeline as plain function steps, and `Recommender`, which runs them in-process.

Each step is what one Serve deployment runs (serve/app.py calls the same functions):

    BehaviorFeatures   ingest(store, events, key_of)        load_behavior(store, index, key, now, cfg)
    Fusion             fuse_profile(...)   -> Profile + the profile record persisted in the store
    Ranking            rank_and_log(...)   -> RecommendResponse, with the click-through log written

`Recommender` wires them in one process without Ray: the embedded mode, the
benchmark's in-process baseline and the offline evaluation all use it.

    rec = Recommender.open(Settings.load())
    rec.ingest([Event(user_id="u1", type="purchase", item_id="B0001")])
    rec.recommend(RecommendRequest(user_id="u1", query="red lipstick", k=5))
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence

import numpy as np

from shopsense.behavior import BehaviorSummary, summarize
from shopsense.config import ProfileSettings, RankingSettings, Settings
from shopsense.encoders import Encoder
from shopsense.index import CatalogIndex
from shopsense.privacy import pseudonymize
from shopsense.profile import Profile, fuse
from shopsense.ranking import Ranker, build_ranker, rank
from shopsense.schemas import (EraseResult, Event, IngestResult, Interest, ProfileView, RecommendRequest,
                               RecommendResponse)
from shopsense.stores import Store, open_store
from shopsense.text_models import Encoded, TextModels


def ingest(store: Store, events: Sequence[Event], key_of: Callable[[str], str]) -> IngestResult:
    """Pseudonymise shopper ids, then store all events in one atomic write."""
    keyed = [e.keyed(key_of(e.user_id)) for e in events]
    return IngestResult(accepted=len(keyed), stored=store.add_events(keyed))


def load_behavior(store: Store, index: CatalogIndex, user_key: str, now: float, cfg: ProfileSettings) -> BehaviorSummary:
    limit = cfg.history_events + cfg.history_searches
    return summarize(store.recent_events(user_key, limit), index, now, cfg)


def profile_record(summary: BehaviorSummary, profile: Profile, index: CatalogIndex, cfg: ProfileSettings) -> dict:
    """The JSON profile summary kept in the store and shown by GET /v1/users/{id}/profile."""
    queries: dict[str, float] = {}
    for text, weight in zip(summary.searches, summary.search_weights):
        queries[text] = queries.get(text, 0.0) + float(weight)
    products = {index.titles[index.row_of[i]]: w for i, w in summary.item_weights.items() if i in index.row_of}
    interests = [{"kind": "query", "text": t, "weight": round(w, 4)} for t, w in queries.items()]
    interests += [{"kind": "product", "text": t, "weight": round(w, 4)} for t, w in products.items()]
    interests.sort(key=lambda i: -i["weight"])
    return {"counts": summary.counts, "top_interests": interests[: cfg.top_interests],
            "affinities": summary.affinities, "intent": profile.intent, "demand": profile.demand,
            "last_event_at": summary.last_event_at, "updated_at": time.time()}


def fuse_profile(texts: Encoded, has_query: bool, summary: BehaviorSummary) -> Profile:
    """`texts`: the current query (when `has_query`) then the recent searches, encoded. f_text averages the
    searches; intent g and demand d also count the current query, as the newest search (weight 1)."""
    searches = texts.rows(1) if has_query else texts
    weights = np.concatenate([[1.0], summary.search_weights]) if has_query else summary.search_weights
    return fuse(texts.vectors[0] if has_query else None, searches.vectors, summary.search_weights, summary.f_behavior,
                texts.intent, texts.demand, texts.intent_labels, texts.demand_labels, intent_weights=weights)


def rank_and_log(store: Store, index: CatalogIndex, ranker: Ranker, cfg: RankingSettings, request_id: str,
                 user_key: str, request: RecommendRequest, profile: Profile, summary: BehaviorSummary) -> RecommendResponse:
    items, feats = rank(index, profile, summary, request, cfg, ranker)
    logged = [{"item_id": item.item_id, "position": pos, "features": item.signals} for pos, item in enumerate(items)]
    store.log_ranking(request_id, user_key, request.query, logged, time.time())
    return RecommendResponse(request_id=request_id, mode="search" if request.query else "recommend", items=items)


def profile_view(user_id: str, record: dict) -> ProfileView:
    return ProfileView(user_id=user_id, counts=record["counts"],
                       top_interests=[Interest(**i) for i in record["top_interests"]],
                       affinities=record["affinities"], intent=record["intent"], demand=record["demand"],
                       last_event_at=record["last_event_at"])


def new_request_id() -> str:
    return uuid.uuid4().hex


class Recommender:
    """The whole pipeline in one process (no Ray): the same steps the Serve graph runs."""

    def __init__(self, settings: Settings, models: TextModels, store: Store, index: CatalogIndex):
        self.settings, self.models, self.store, self.index = settings, models, store, index
        self.ranker = build_ranker(settings.ranking)

    @classmethod
    def open(cls, settings: Settings, encoder: Encoder | None = None) -> "Recommender":
        """`encoder`: an already loaded sentence encoder to reuse (the classifiers are loaded from settings)."""
        return cls(settings, TextModels.load(settings, encoder), open_store(settings.store),
                   CatalogIndex.load(settings.artifacts / "catalog"))

    def key_of(self, user_id: str) -> str:
        return pseudonymize(user_id, self.settings.privacy.pseudonym_key)

    def ingest(self, events: Sequence[Event]) -> IngestResult:
        return ingest(self.store, events, self.key_of)

    def _profile(self, user_key: str, query: str | None) -> tuple[Profile, BehaviorSummary, dict]:
        """What the Fusion deployment returns: the profile, the behaviour summary and the persisted record."""
        summary = load_behavior(self.store, self.index, user_key, time.time(), self.settings.profile)
        profile = fuse_profile(self.models.encode(([query] if query else []) + summary.searches), bool(query), summary)
        record = profile_record(summary, profile, self.index, self.settings.profile)
        self.store.put_profile(user_key, record)
        return profile, summary, record

    def recommend(self, request: RecommendRequest) -> RecommendResponse:
        user_key = self.key_of(request.user_id)
        profile, summary, _ = self._profile(user_key, request.query)
        return rank_and_log(self.store, self.index, self.ranker, self.settings.ranking, new_request_id(), user_key,
                            request, profile, summary)

    def profile(self, user_id: str) -> ProfileView:
        _, _, record = self._profile(self.key_of(user_id), None)
        return profile_view(user_id, record)

    def erase(self, user_id: str) -> EraseResult:
        return EraseResult(erased_events=self.store.erase_user(self.key_of(user_id)))

    def close(self) -> None:
        self.store.close()
