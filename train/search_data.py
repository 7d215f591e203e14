"""Search judgements (Home Depot format) as a catalogue, queries and ranker training groups.

    search_set = SearchSet.load("judgments.parquet", settings)      # index over every product in the file
    rows, feats = search_set.features("cordless drill", settings)     # the Ranking deployment's own code path
    train, valid, trained = training_frames(search_set, settings)

A file has columns `id, product_uid, product_title, search_term, relevance` (1-3).
Queries are split by train.query_split (a hash of their text), so one query's judgements
all land on one side.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from shopsense.behavior import summarize
from shopsense.catalog import product_text
from shopsense.config import Settings
from shopsense.datasets import homedepot
from shopsense.index import CatalogIndex
from shopsense.pipeline import fuse_profile
from shopsense.ranking import attach_sources, build_sources, candidate_features
from shopsense.schemas import RecommendRequest
from shopsense.text_models import Encoded
from train.query_split import query_hash, query_split
from train.vector_cache import classify_cached, encode_cached

def grade(relevance: float) -> int:
    """Lambdarank label: (relevance - 1) in thirds, 0..6."""
    return int(round((relevance - 1.0) * 3))


@dataclass
class SearchSet:
    path: Path
    index: CatalogIndex
    judgements: pd.DataFrame          # query, item_id, relevance
    queries: list[str]
    query_texts: Encoded              # row i: queries[i] encoded, with intent/demand when those models exist

    def __post_init__(self):
        self.position_of = {q: i for i, q in enumerate(self.queries)}
        self._gains = {q: dict(zip(g["item_id"], g["relevance"] - 1.0)) for q, g in self.judgements.groupby("query")}

    @classmethod
    def load(cls, path: str | Path, settings: Settings) -> "SearchSet":
        products, judgements = homedepot(path)
        vectors = encode_cached([product_text(row) for row in products.to_dict("records")], settings.encoder)
        index = CatalogIndex(products.assign(popularity=0.0), vectors)
        attach_sources(index, build_sources(index))
        queries = sorted(set(judgements["query"]))
        return cls(Path(path), index, judgements, queries,
                   classify_cached(queries, encode_cached(queries, settings.encoder), settings))

    def request(self, query: str, settings: Settings, k: int = 10):
        """(profile, summary, request) of an anonymous shopper searching `query`, built by the serving code."""
        summary = summarize([], self.index, 0.0, settings.profile)
        position = self.position_of[query]
        profile = fuse_profile(self.query_texts.rows(position, position + 1), True, summary)
        return profile, summary, RecommendRequest(user_id="search-eval", query=query, k=k)

    def features(self, query: str, settings: Settings) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        profile, summary, request = self.request(query, settings)
        return candidate_features(self.index, profile, summary, request, settings.ranking)

    def gains(self, query: str) -> dict[str, float]:
        """item_id -> relevance - 1 for the query's judged products."""
        return self._gains.get(query, {})


def labelled_frame(search_set: SearchSet, queries: list[str], settings: Settings) -> pd.DataFrame:
    """One row per (query, candidate): features, graded label, integer qid; queries whose candidates
    hold no relevant product are dropped (they carry no ranking signal)."""
    frames = []
    item_ids = search_set.index.products["item_id"].to_numpy()
    for qid, query in enumerate(queries):
        rows, feats = search_set.features(query, settings)
        gains = search_set.gains(query)
        labels = np.array([grade(gains[i] + 1.0) if i in gains else 0 for i in item_ids[rows]], dtype=np.int32)
        if len(rows) == 0 or labels.max() <= 0:
            continue
        frame = pd.DataFrame(feats)
        frame["label"], frame["qid"] = labels, qid
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def training_frames(search_set: SearchSet, settings: Settings, max_queries: int | None = None,
                    seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, set[str]]:
    """(train, valid, hashes of every query either frame used)."""
    rng = np.random.default_rng(seed)
    split = {q: query_split(q) for q in search_set.queries}
    train = [q for q in search_set.queries if split[q] == "train"]
    valid = [q for q in search_set.queries if split[q] == "valid"]
    if max_queries:
        train = sorted(rng.choice(train, min(max_queries, len(train)), replace=False))
        valid = sorted(rng.choice(valid, min(max(max_queries // 7, 1), len(valid)), replace=False))
    return (labelled_frame(search_set, train, settings), labelled_frame(search_set, valid, settings),
            {query_hash(q) for q in train + valid})
