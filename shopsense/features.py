"""Ranking features: defined once, used by the Ranking deployment, the in-process pipeline,
ranker training and evaluation alike (tests/test_features.py checks they agree).

    signals = request_signals(index, bm25, graph, query, summary)    # per request, over the whole catalogue
    feats = compute(index, rows, source_ranks, profile, summary, signals)   # {name: array over rows}

Every feature is a number per candidate row; one that does not apply (no query, no
history, no prices, no intent/demand model) is 0, so one model input serves search
and recommendation. FEATURE_GROUPS names the parts `--ablate` can switch off.

Behaviour features look at the whole profile (behavior_cos, affinities) and at where the
shopper is heading now: the last product (co-occurrence, follows, cosine, same brand), the
last few (recent_cos, follows_recent) and the two-hop co-occurrence (cooc_2hop).

Intent g and demand d enter as interactions with the product: purchase x query coverage
(exact matches) and x popularity (safe picks), browse x novelty; brand demand x the
product's brand named in the query (or, without one, in the recent searches) and x the
shopper's brand affinity; size/spec demand x the query's numbers found in the title;
price demand x price fit. A compare intent acts after scoring (ranking.diversify).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from shopsense.behavior import BehaviorSummary
from shopsense.bm25 import BM25Index, QueryMatch
from shopsense.catalog import words
from shopsense.cooccurrence import CoOccurrence
from shopsense.index import CatalogIndex
from shopsense.profile import Profile

SOURCES = ("ann", "bm25", "cooc", "cooc_2hop", "popular")

FEATURE_GROUPS = {
    "query": ("query_cos", "query_cos_gap", "bm25", "bm25_rel", "query_coverage", "number_match", "title_words"),
    "text": ("text_cos",),
    "behavior": ("behavior_cos", "behavior_cos_gap", "last_item_cos", "cooc_recent", "cooc_last", "cooc_last_rel",
                 "follows_last", "follows_recent", "cooc_2hop", "cooc_2hop_rel", "recent_cos", "same_brand_last",
                 "brand_affinity", "category_affinity", "price_fit"),
    "item": ("popularity", "trend"),
    "intent": ("intent_purchase_exact", "intent_purchase_popularity", "intent_browse_novelty"),
    "demand": ("demand_brand_match", "demand_brand_fit", "demand_spec_match", "demand_price_fit"),
    "retrieval": tuple(f"rr_{source}" for source in SOURCES),
}
FEATURES = tuple(name for names in FEATURE_GROUPS.values() for name in names)


@dataclass
class RequestSignals:
    """What a request scores against the whole catalogue once, for retrieval and features alike."""

    bm25: QueryMatch | None
    recent_rows: list[int]           # the shopper's recent products, newest first
    cooc_recent: np.ndarray | None   # co-occurrence with the recent products
    cooc_last: np.ndarray | None     # ... with the most recent one
    follows_last: np.ndarray | None  # P(next = row | most recent product)
    asked_text: str = ""             # the query, else the recent searches: where a shopper names brands and specs
    follows_recent: np.ndarray | None = None  # ... | each of the last few, recency-weighted
    cooc_2hop: np.ndarray | None = None       # co-occurrence with the recent products' neighbours


RECENT_VECTORS = 3   # the last products whose mean cosine is recent_cos
NUMBER = re.compile(r"\d+(?:[./]\d+)?")


@lru_cache(maxsize=1 << 16)   # brands and titles repeat across requests: parse each once
def padded(text: str) -> str:
    """The text's words joined by single spaces and padded, for whole-word `in` tests."""
    return " " + " ".join(words(text)) + " "


def request_signals(index: CatalogIndex, bm25: BM25Index, graph: CoOccurrence, query: str | None,
                    summary: BehaviorSummary) -> RequestSignals:
    match = bm25.match(query) if query else None
    asked_text = query or " ".join(summary.searches)
    recent_rows = index.rows(summary.recent_items)
    if not recent_rows:
        return RequestSignals(match, [], None, None, None, asked_text)
    cooc_last, follows_last = graph.last_item(recent_rows)
    cooc_recent = graph.scores(recent_rows)
    return RequestSignals(match, recent_rows, cooc_recent, cooc_last, follows_last, asked_text,
                          follows_recent=graph.follows_recent(recent_rows), cooc_2hop=graph.two_hop(cooc_recent))


@lru_cache(maxsize=1 << 16)
def numbers_in(text: str) -> frozenset[str]:
    return frozenset(NUMBER.findall(text))


def number_match(index: CatalogIndex, rows: np.ndarray, text: str) -> np.ndarray:
    """Share of the numbers in `text` (sizes, volts, model numbers: "3/4", "20", "1.5") found in each title;
    BM25's tokeniser drops most of them."""
    wanted = numbers_in(text)
    if not wanted:
        return np.zeros(len(rows), dtype=np.float32)
    return np.array([len(wanted & numbers_in(index.titles[r])) / len(wanted) for r in rows], dtype=np.float32)


def brand_named(index: CatalogIndex, rows: np.ndarray, text: str) -> np.ndarray:
    """1 where the candidate's brand is named, as whole words, in `text`."""
    if not text:
        return np.zeros(len(rows), dtype=np.float32)
    asked = padded(text)
    return np.array([bool(index.brands[r]) and padded(index.brands[r]) in asked for r in rows], dtype=np.float32)


def cosine(index: CatalogIndex, rows: np.ndarray, vector: np.ndarray | None) -> np.ndarray:
    if vector is None or len(rows) == 0:
        return np.zeros(len(rows), dtype=np.float32)
    return index.vectors[rows] @ vector


def at(values: np.ndarray | None, rows: np.ndarray) -> np.ndarray:
    return np.zeros(len(rows), dtype=np.float32) if values is None else values[rows].astype(np.float32)


def share(index: CatalogIndex, rows: np.ndarray, summary: BehaviorSummary, attribute: str) -> np.ndarray:
    """The shopper's share of event weight on each candidate's brand / category / price band."""
    shares = summary.affinities.get(attribute)
    if not shares or attribute not in index.products:
        return np.zeros(len(rows), dtype=np.float32)
    values = index.products[attribute].to_numpy()[rows]
    return np.array([shares.get(str(v), 0.0) for v in values], dtype=np.float32)


def same_brand(index: CatalogIndex, rows: np.ndarray, row: int | None) -> np.ndarray:
    """1 where the candidate has the (known) brand of catalogue row `row`."""
    brand = index.brands[row] if row is not None else ""
    if not brand:
        return np.zeros(len(rows), dtype=np.float32)
    return np.array([index.brands[r] == brand for r in rows], dtype=np.float32)


def gap(values: np.ndarray) -> np.ndarray:
    """Distance below the best candidate of this request: comparable across requests whose scores sit on
    different levels (a vague query's cosines are all low)."""
    return values - values.max() if len(values) and values.any() else np.zeros(len(values), dtype=np.float32)


def relative(values: np.ndarray) -> np.ndarray:
    """Share of the best candidate's value (0 where no candidate has any)."""
    top = values.max(initial=0.0)
    return values / top if top > 0 else np.zeros(len(values), dtype=np.float32)


def compute(index: CatalogIndex, rows, source_ranks: dict[str, np.ndarray], profile: Profile,
            summary: BehaviorSummary, signals: RequestSignals, graph: CoOccurrence) -> dict[str, np.ndarray]:
    """Features of candidate `rows`; `source_ranks[s]` is each row's rank in retrieval source s (-1: absent)."""
    rows = np.asarray(rows, dtype=np.int64)
    bm25 = at(signals.bm25.scores if signals.bm25 else None, rows)
    top_bm25 = float(signals.bm25.scores.max(initial=0.0)) if signals.bm25 else 0.0
    query_cos = cosine(index, rows, profile.query)
    cooc_last = at(signals.cooc_last, rows)
    last_row = signals.recent_rows[0] if signals.recent_rows else None
    last_vector = index.vectors[last_row] if last_row is not None else None
    # the mean cosine to the last few products (not the whole history): where the shopper is heading now
    recent_vector = index.vectors[signals.recent_rows[:RECENT_VECTORS]].mean(axis=0) if signals.recent_rows else None
    cooc_2hop = at(signals.cooc_2hop, rows)
    behavior_cos = cosine(index, rows, profile.f_behavior)
    intent, demand = profile.intent, profile.demand
    popularity = index.popularity[rows]
    brand = share(index, rows, summary, "brand")
    price_fit = share(index, rows, summary, "price_band")
    coverage = at(signals.bm25.coverage if signals.bm25 else None, rows)
    numbers = number_match(index, rows, signals.asked_text)
    feats = {
        "query_cos": query_cos,
        "query_cos_gap": gap(query_cos),
        "bm25": bm25,
        "bm25_rel": bm25 / top_bm25 if top_bm25 > 0 else np.zeros(len(rows), dtype=np.float32),
        "query_coverage": coverage,
        "title_words": np.array([len(index.titles[r].split()) for r in rows], dtype=np.float32),
        "number_match": numbers if signals.bm25 else np.zeros(len(rows), dtype=np.float32),
        "text_cos": cosine(index, rows, profile.f_text),
        "behavior_cos": behavior_cos,
        "behavior_cos_gap": gap(behavior_cos),
        "last_item_cos": cosine(index, rows, last_vector),
        "cooc_recent": at(signals.cooc_recent, rows),
        "cooc_last": cooc_last,
        "cooc_last_rel": relative(cooc_last),
        "follows_last": at(signals.follows_last, rows),
        "follows_recent": at(signals.follows_recent, rows),
        "cooc_2hop": cooc_2hop,
        "cooc_2hop_rel": relative(cooc_2hop),
        "recent_cos": cosine(index, rows, recent_vector),
        "same_brand_last": same_brand(index, rows, last_row),
        "brand_affinity": brand,
        "category_affinity": share(index, rows, summary, "category"),
        "price_fit": price_fit,
        "popularity": popularity,
        "trend": at(graph.trend, rows),
        # intent g and demand d (0 without those models) meet the product: a buyer wants the exact match and
        # the safe pick, a browser something new; a brand / spec / price demand wants products that answer it.
        "intent_purchase_exact": intent.get("purchase", 0.0) * coverage,
        "intent_purchase_popularity": intent.get("purchase", 0.0) * popularity,
        "intent_browse_novelty": intent.get("browse", 0.0) * (1.0 - np.clip(behavior_cos, 0.0, 1.0)),
        "demand_brand_match": demand.get("brand", 0.0) * brand_named(index, rows, signals.asked_text),
        "demand_brand_fit": demand.get("brand", 0.0) * brand,
        # a spec counts on products that otherwise match: "5" alone does not make a nail file a 5-blade razor
        "demand_spec_match": demand.get("size_spec", 0.0) * numbers * (coverage if signals.bm25 else 1.0),
        "demand_price_fit": demand.get("price", 0.0) * price_fit,
    }
    for source in SOURCES:
        ranks = source_ranks.get(source)
        feats[f"rr_{source}"] = np.zeros(len(rows), dtype=np.float32) if ranks is None else \
            np.where(ranks >= 0, 1.0 / (1.0 + np.maximum(ranks, 0)), 0.0).astype(np.float32)
    return {name: np.asarray(feats[name], dtype=np.float32) for name in FEATURES}


def matrix(feats: dict[str, np.ndarray], names=FEATURES, off: frozenset[str] = frozenset()) -> np.ndarray:
    """Features as a (rows, len(names)) float32 matrix in `names` order; names in `off` are zeroed."""
    n = len(next(iter(feats.values()))) if feats else 0
    return np.column_stack([np.zeros(n, dtype=np.float32) if name in off else feats[name] for name in names]) \
        if names else np.zeros((n, 0), dtype=np.float32)


def ablated(groups) -> frozenset[str]:
    """Feature names switched off by ablating the named FEATURE_GROUPS."""
    unknown = set(groups) - set(FEATURE_GROUPS)
    if unknown:
        raise ValueError(f"unknown feature group(s) {sorted(unknown)}; choose from {sorted(FEATURE_GROUPS)}")
    return frozenset(name for group in groups for name in FEATURE_GROUPS[group])
