"""Shopper histories (amazon-reviews format) split leave-last-out, as the serving code sees them.

    world = NextItemWorld.from_directory(DIR, settings, holdout=1)   # target: each shopper's last event
    val = world.earlier()                                            # target: the one before; last dropped
    profile, summary, request = world.request(user, settings)        # through shopsense.behavior/profile
    frame = training_frame(val, settings, max_users=30_000)          # train_ranker.TRAIN_USERS

A world holds only what is known before its targets: the histories (every event
before each shopper's target), the popularity and co-occurrence graph built from those
histories, and the targets themselves, kept apart. `earlier()` removes each shopper's
target and moves the target one event back, so a model fitted there never sees the
events evaluated in the later world.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from shopsense.behavior import summarize
from shopsense.bm25 import BM25Index
from shopsense.catalog import product_text
from shopsense.config import Settings
from shopsense.cooccurrence import CoOccurrence
from shopsense.datasets import amazon_reviews, interaction_events
from shopsense.index import CatalogIndex
from shopsense.pipeline import fuse_profile
from shopsense.ranking import Sources, attach_sources, candidate_features
from shopsense.schemas import Filters, RecommendRequest
from shopsense.text_models import Encoded

MAX_EXCLUDED = 1000  # the request schema's bound on exclude_items


def split_last(interactions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(history, targets): each shopper's last event (by time; ties in file order) and everything before."""
    ordered = interactions.sort_values(["user_id", "timestamp"], kind="stable")
    last = ~ordered["user_id"].duplicated(keep="last")
    return ordered[~last].reset_index(drop=True), ordered[last].reset_index(drop=True)


@dataclass
class NextItemWorld:
    products: pd.DataFrame
    vectors: np.ndarray
    bm25: BM25Index
    history: pd.DataFrame     # user_id, item_id, timestamp: everything before each target
    targets: pd.DataFrame     # one row per shopper with a non-empty history
    index: CatalogIndex = field(init=False)

    def __post_init__(self):
        popularity = self.history["item_id"].value_counts()
        self.index = CatalogIndex(self.products.assign(popularity=self.products["item_id"].map(popularity).fillna(0.0)),
                                  self.vectors)
        self.graph = CoOccurrence.build(self.history, self.products["item_id"])
        attach_sources(self.index, Sources(self.bm25, self.graph))
        self.targets = self.targets[self.targets["user_id"].isin(set(self.history["user_id"]))].reset_index(drop=True)
        self._rows_of_user = self.history.groupby("user_id", sort=False).indices
        self._events: dict[str, list] = {}

    @classmethod
    def from_directory(cls, directory: str | Path, settings: Settings, holdout: int = 1) -> "NextItemWorld":
        return cls.from_frames(*amazon_reviews(directory), settings, holdout)

    @classmethod
    def from_frames(cls, products: pd.DataFrame, interactions: pd.DataFrame, settings: Settings,
                    holdout: int = 1) -> "NextItemWorld":
        """`holdout`: which event from the end is each shopper's target (later ones are dropped)."""
        from train.vector_cache import encode_cached

        texts = [product_text(row) for row in products.to_dict("records")]
        world = cls(products, encode_cached(texts, settings.encoder), BM25Index.build(texts), *split_last(interactions))
        for _ in range(holdout - 1):
            world = world.earlier()
        return world

    def earlier(self) -> "NextItemWorld":
        """The world one event back: targets become each shopper's previous event; current targets vanish."""
        return NextItemWorld(self.products, self.vectors, self.bm25, *split_last(self.history))

    def events(self, user: str):
        """The shopper's history as events, newest first (as the stores return them); built on first use."""
        if user not in self._events:
            self._events[user] = list(interaction_events(self.history.iloc[self._rows_of_user[user]]))[::-1]
        return self._events[user]

    def request(self, user: str, settings: Settings, behavior: bool = True, k: int = 10):
        """(profile, summary, request) for recommending to `user` now (just after the last history event):
        the same summarize/fuse steps as serving; every history product is excluded from the answer."""
        events = self.events(user)
        summary = summarize(events if behavior else [], self.index, events[0].timestamp, settings.profile)
        profile = fuse_profile(Encoded(np.zeros((0, self.vectors.shape[1]), dtype=np.float32)), False, summary)
        seen = list(dict.fromkeys(e.item_id for e in events))[:MAX_EXCLUDED]
        return profile, summary, RecommendRequest(user_id=user, k=k, filters=Filters(exclude_items=seen))

    def sample_users(self, n: int | None, seed: int = 0) -> list[str]:
        users = self.targets["user_id"].tolist()
        if n is None or n >= len(users):
            return users
        return sorted(np.random.default_rng(seed).choice(users, n, replace=False).tolist())


def training_frame(world: NextItemWorld, settings: Settings, *, max_users: int | None, seed: int = 0,
                   behavior: bool = True) -> pd.DataFrame:
    """One row per (shopper, candidate): features, label 1 for the world's target, integer qid;
    shoppers whose target is not among the candidates are dropped (no ranking signal)."""
    target_of = dict(zip(world.targets["user_id"], world.targets["item_id"]))
    item_ids = world.index.products["item_id"].to_numpy()
    frames = []
    for qid, user in enumerate(world.sample_users(max_users, seed)):
        profile, summary, request = world.request(user, settings, behavior)
        rows, feats = candidate_features(world.index, profile, summary, request, settings.ranking)
        labels = (item_ids[rows] == target_of[user]).astype(np.int32)
        if labels.sum() == 0:
            continue
        frame = pd.DataFrame(feats)
        frame["label"], frame["qid"] = labels, qid
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
