"""Candidate retrieval, scoring and explanations: what the Ranking deployment runs.

    ranker = build_ranker(settings.ranking)
    items, feats = rank(index, profile, summary, request, settings.ranking, ranker)

Retrieval is hybrid: a search takes ANN neighbours of the query and the BM25 top
products; a recommendation takes ANN neighbours of the behaviour and search-interest
vectors, the co-occurrence neighbours of the shopper's recent products and the
neighbours of those neighbours (two hops: sparse logs often never paired the next
product with the last one), and popular and trending products (a cold-start shopper
gets those alone). Sources are merged and deduplicated; each candidate keeps its
rank in every source as a feature.
Filters restrict candidates, with an exact scan when they run short.

The BM25 index and co-occurrence graph live beside the catalogue artifact
(<catalog>/bm25/, <catalog>/cooccurrence.npz, see `save_sources`); offline code
attaches in-memory ones with `attach_sources`.

Rankers share one interface and are chosen by config: `learned` (LightGBM
lambdarank, one model for search and one for recommendation, hot-reloaded, reasons
from feature contributions), `simple` (weighted sum of signals), `noop` (retrieval
order) and `shuffle` (random order, an A/B control). Whatever the ranker, a shopper's
compare intent re-orders the top by maximal marginal relevance (`diversify`), so the
list offers alternatives instead of near-duplicates; the reason says so.
"""
from __future__ import annotations

import logging
import weakref
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from shopsense import features
from shopsense.behavior import BehaviorSummary
from shopsense.bm25 import BM25Index
from shopsense.catalog import product_text
from shopsense.config import RankingSettings
from shopsense.cooccurrence import CoOccurrence
from shopsense.index import CatalogIndex
from shopsense.ltr import LTRModel
from shopsense.profile import Profile
from shopsense.schemas import Filters, RankedItem, RecommendRequest

log = logging.getLogger(__name__)

MODES = ("search", "recommend")
MODEL_FILES = {"search": "ranker-search.txt", "recommend": "ranker-nextitem.txt"}

COMPARE_REASON = "another option to compare (compare intent)"
SIGNAL_REASONS = {
    "query_cos": "matches your search", "query_cos_gap": "matches your search", "bm25": "has your search words", "bm25_rel": "has your search words",
    "query_coverage": "has all your search words", "title_words": "matches your search",
    "number_match": "has the sizes or numbers you searched for",
    "text_cos": "close to your recent searches",
    "behavior_cos": "like products you viewed or bought", "behavior_cos_gap": "like products you viewed or bought",
    "last_item_cos": "like the product you just looked at", "cooc_last_rel": "often bought with your last product",
    "cooc_recent": "often bought with your recent products", "cooc_last": "often bought with your last product",
    "follows_last": "often bought next after your last product",
    "follows_recent": "often bought next after your recent products",
    "cooc_2hop": "bought by shoppers with tastes like yours", "cooc_2hop_rel": "bought by shoppers with tastes like yours",
    "recent_cos": "like the products you just looked at", "same_brand_last": "same brand as your last product",
    "brand_affinity": "a brand you favour", "category_affinity": "a category you favour",
    "price_fit": "in your usual price range",
    "popularity": "popular", "trend": "trending now",
    "intent_purchase_exact": "exactly what you searched for (buying intent)",
    "intent_purchase_popularity": "a safe pick (buying intent)",
    "intent_browse_novelty": "something new to explore (browsing intent)",
    "demand_brand_match": "the brand you asked for (brand demand)",
    "demand_brand_fit": "a brand you favour (brand demand)",
    "demand_spec_match": "the size or spec you asked for (spec demand)",
    "demand_price_fit": "in your price range (price demand)",
    "rr_ann": "matches your search", "rr_bm25": "has your search words",
    "rr_cooc": "often bought with your recent products", "rr_cooc_2hop": "bought by shoppers with tastes like yours",
    "rr_popular": "popular",
}


# ---- retrieval sources beside the catalogue --------------------------------------------------------------

@dataclass
class Sources:
    bm25: BM25Index
    graph: CoOccurrence


_SOURCES: "weakref.WeakKeyDictionary[CatalogIndex, Sources]" = weakref.WeakKeyDictionary()


def build_sources(index: CatalogIndex, interactions: pd.DataFrame | None = None) -> Sources:
    """BM25 over the product texts the encoder sees; co-occurrence from interactions (empty without)."""
    bm25 = BM25Index.build([product_text(row) for row in index.products.to_dict("records")])
    graph = CoOccurrence.build(interactions, index.products["item_id"]) if interactions is not None \
        else CoOccurrence.empty(len(index))
    return Sources(bm25, graph)


def save_sources(sources: Sources, catalog_dir: str | Path) -> None:
    sources.bm25.save(Path(catalog_dir) / "bm25")
    sources.graph.save(Path(catalog_dir) / "cooccurrence.npz")


def attach_sources(index: CatalogIndex, sources: Sources) -> None:
    _SOURCES[index] = sources


def sources_for(index: CatalogIndex) -> Sources:
    """The index's sources: attached, or loaded from beside its artifact, or built from its texts."""
    if index not in _SOURCES:
        directory = getattr(index, "directory", None)
        if directory is not None and (Path(directory) / "bm25").exists():
            graph_path = Path(directory) / "cooccurrence.npz"
            graph = CoOccurrence.load(graph_path) if graph_path.exists() else CoOccurrence.empty(len(index))
            _SOURCES[index] = Sources(BM25Index.load(Path(directory) / "bm25"), graph)
        else:
            log.warning("no BM25/co-occurrence artifacts beside the catalogue; BM25 built in memory, no graph")
            _SOURCES[index] = build_sources(index)
    return _SOURCES[index]


# ---- rankers ----------------------------------------------------------------------------------------------

class Ranker(ABC):
    name: str

    def attach(self, index: CatalogIndex) -> None:
        """Called with the catalogue before scoring (a ranker may locate artifacts beside it)."""

    @abstractmethod
    def score(self, feats: dict[str, np.ndarray], mode: str) -> np.ndarray:
        """Scores over candidates (in retrieval order); `mode` is "search" or "recommend"."""

    def contributions(self, feats: dict[str, np.ndarray], mode: str) -> dict[str, np.ndarray]:
        """Each signal's share of the score of the given rows (for reasons); empty when it has none."""
        return {}


class SimpleRanker(Ranker):
    """Weighted sum of the features, weights from config."""

    name = "simple"

    def __init__(self, cfg: RankingSettings):
        affinity = cfg.weight_affinity / 3  # spread over brand, category and price band
        self.weights = {"query_cos": cfg.weight_query, "text_cos": cfg.weight_text,
                        "behavior_cos": cfg.weight_behavior, "popularity": cfg.weight_popularity,
                        "brand_affinity": affinity, "category_affinity": affinity, "price_fit": affinity,
                        **{name: cfg.weight_intent for name in features.FEATURE_GROUPS["intent"]},
                        **{name: cfg.weight_demand for name in features.FEATURE_GROUPS["demand"]}}

    def contributions(self, feats, mode):
        return {name: self.weights[name] * feats[name] for name in self.weights}

    def score(self, feats, mode):
        return sum(self.contributions(feats, mode).values())


class NoopRanker(Ranker):
    """Keeps retrieval order (score = minus position): the baseline arm of an A/B test."""

    name = "noop"

    def score(self, feats, mode):
        n = len(next(iter(feats.values())))
        return -np.arange(n, dtype=np.float32)


class ShuffleRanker(Ranker):
    """Random order over the same candidates: the control arm that measures position bias."""

    name = "shuffle"

    def __init__(self, seed: int | None = None):
        self.rng = np.random.default_rng(seed)

    def score(self, feats, mode):
        n = len(next(iter(feats.values())))
        return self.rng.random(n).astype(np.float32)


class LearnedRanker(Ranker):
    """LightGBM lambdarank models, one per mode, from `model_dir` (default: <catalogue artifact>/../models).
    A mode without a model file falls back to the simple ranker, with a warning."""

    name = "learned"

    def __init__(self, cfg: RankingSettings, paths: dict[str, Path] | None = None):
        self.fallback = SimpleRanker(cfg)
        self.model_dir = Path(cfg.model_dir) if cfg.model_dir else None
        self.paths = paths
        self.models: dict[str, LTRModel | None] | None = None

    def attach(self, index):
        if self.models is not None:
            return
        if self.paths is None:
            directory = self.model_dir or (Path(index.directory).parent / "models"
                                           if getattr(index, "directory", None) else Path("artifacts/models"))
            self.paths = {mode: directory / MODEL_FILES[mode] for mode in MODES}
        self.models = {}
        for mode in MODES:
            path = self.paths.get(mode)
            self.models[mode] = LTRModel(path) if path is not None and Path(path).exists() else None
            if self.models[mode] is None and path is not None:
                log.warning("no learned %s model at %s; the simple ranker scores that mode", mode, path)

    def _model(self, mode: str) -> LTRModel | None:
        return (self.models or {}).get(mode)

    def score(self, feats, mode):
        model = self._model(mode)
        return model.predict(feats) if model else self.fallback.score(feats, mode)

    def contributions(self, feats, mode):
        model = self._model(mode)
        return model.contributions(feats) if model else self.fallback.contributions(feats, mode)


def build_ranker(cfg: RankingSettings) -> Ranker:
    if cfg.ranker == "learned":
        return LearnedRanker(cfg)
    if cfg.ranker == "simple":
        return SimpleRanker(cfg)
    if cfg.ranker == "noop":
        return NoopRanker()
    if cfg.ranker == "shuffle":
        return ShuffleRanker()
    raise ValueError(f"ranker {cfg.ranker!r} is not available")


# ---- candidates -------------------------------------------------------------------------------------------

def filter_mask(index: CatalogIndex, filters: Filters | None, exclude: set[str]) -> np.ndarray | None:
    """Boolean mask over catalogue rows, or None when nothing is filtered."""
    if filters is None and not exclude:
        return None
    products = index.products
    mask = np.ones(len(products), dtype=bool)
    if filters is not None:
        for attribute in ("category", "brand"):
            wanted = getattr(filters, attribute)
            if wanted is not None:
                mask &= products[attribute].fillna("").astype(str).str.lower().to_numpy() == wanted.lower()
        prices = products["price"].to_numpy(dtype=np.float64)
        if filters.price_min is not None:
            mask &= prices >= filters.price_min
        if filters.price_max is not None:
            mask &= prices <= filters.price_max
        exclude = exclude | set(filters.exclude_items)
    if exclude:
        mask[index.rows(exclude)] = False
    return mask


def top_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """Rows of the k highest positive scores, best first."""
    k = min(k, len(scores))
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    best = np.argpartition(-scores, k - 1)[:k]
    best = best[np.argsort(-scores[best], kind="stable")]
    return best[scores[best] > 0]


def retrieval_sources(index: CatalogIndex, profile: Profile, signals: features.RequestSignals,
                      graph: CoOccurrence, n: int) -> dict[str, list[int]]:
    """Each source's rows, best first (an ANN source may hold several vectors' neighbours)."""
    found: dict[str, list[int]] = {}
    vectors = [profile.query] if profile.query is not None else \
        [v for v in (profile.f_behavior, profile.f_text) if v is not None]
    for vector in vectors:
        _, rows = index.search(vector, n)
        found.setdefault("ann", []).extend(int(r) for r in rows[0] if r >= 0)
    if signals.bm25 is not None:
        found["bm25"] = signals.bm25.top(n).tolist()
    if profile.query is None:
        if signals.cooc_recent is not None:
            found["cooc"] = top_rows(signals.cooc_recent + signals.follows_last, n).tolist()
            found["cooc_2hop"] = top_rows(signals.cooc_2hop, n).tolist()
        few = max(n // 4, 10)
        found["popular"] = list(dict.fromkeys(np.argsort(-index.popularity, kind="stable")[:few].tolist()
                                              + top_rows(graph.trend, few).tolist()))
    return found


def candidates(index: CatalogIndex, profile: Profile, signals: features.RequestSignals, graph: CoOccurrence,
               mask: np.ndarray | None, k: int, n: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Merged, deduplicated candidate rows (in source order) and each one's rank in every source (-1: absent)."""
    found = retrieval_sources(index, profile, signals, graph, n)
    rows = list(dict.fromkeys(r for source_rows in found.values() for r in source_rows))
    if mask is not None:
        rows = [r for r in rows if mask[r]]
        if len(rows) < k:
            # The sources ran short under the filters: scan the matching products exactly.
            primary = next((v for v in (profile.query, profile.f_behavior, profile.f_text) if v is not None), None)
            matching = np.flatnonzero(mask)
            order = np.argsort(-(index.vectors[matching] @ primary)) if primary is not None \
                else np.argsort(-index.popularity[matching], kind="stable")
            rows = list(dict.fromkeys(rows + matching[order[:n]].tolist()))
    rows = np.asarray(rows, dtype=np.int64)
    ranks = {}
    for source, source_rows in found.items():
        rank_of = {}
        for position, row in enumerate(source_rows):
            rank_of.setdefault(row, position)
        ranks[source] = np.array([rank_of.get(int(r), -1) for r in rows], dtype=np.int64)
    return rows, ranks


def candidate_pool(index: CatalogIndex, profile: Profile, summary: BehaviorSummary, request: RecommendRequest,
                   cfg: RankingSettings) -> tuple[np.ndarray, dict[str, np.ndarray], features.RequestSignals,
                                                  CoOccurrence]:
    """What a request retrieves: candidate rows, each one's rank per source, the request's signals, the graph."""
    sources = sources_for(index)
    signals = features.request_signals(index, sources.bm25, sources.graph, request.query, summary)
    exclude = summary.purchased if (request.query is None and cfg.exclude_purchased) else set()
    mask = filter_mask(index, request.filters, exclude)
    rows, ranks = candidates(index, profile, signals, sources.graph, mask, request.k, cfg.candidates)
    return rows, ranks, signals, sources.graph


def candidate_features(index: CatalogIndex, profile: Profile, summary: BehaviorSummary, request: RecommendRequest,
                       cfg: RankingSettings) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Candidate rows and their features for a request: the part of `rank` that training reuses."""
    rows, ranks, signals, graph = candidate_pool(index, profile, summary, request, cfg)
    if len(rows) == 0:
        return rows, {}
    return rows, features.compute(index, rows, ranks, profile, summary, signals, graph)


# ---- ranking and reasons ----------------------------------------------------------------------------------

def explain(contributions: dict[str, float]) -> str:
    reasons = []
    for _, name in sorted(((v, name) for name, v in contributions.items() if v > 0.01), reverse=True):
        if SIGNAL_REASONS[name] not in reasons:
            reasons.append(SIGNAL_REASONS[name])
    return "; ".join(reasons[:2]) or "fills the list (weak match)"


def diversify(scores: np.ndarray, vectors: np.ndarray, weight: float, k: int) -> np.ndarray:
    """k picks from the 4k best-scored, by greedy maximal marginal relevance: each pick maximises
    (1 - weight) * score - weight * (highest cosine to the items already picked), scores scaled to [0, 1]."""
    pool = np.argsort(-scores, kind="stable")[: 4 * k]
    relevance = scores[pool] - scores[pool].min()
    relevance = relevance / relevance.max() if relevance.max() > 0 else relevance
    similarity = vectors[pool] @ vectors[pool].T
    closest = np.zeros(len(pool))
    free = np.ones(len(pool), dtype=bool)
    picked = []
    for _ in range(min(k, len(pool))):
        value = np.where(free, (1 - weight) * relevance - weight * closest, -np.inf)
        best = int(np.argmax(value))
        picked.append(best)
        free[best] = False
        closest = np.maximum(closest, similarity[best])
    return pool[picked]


def rank(index: CatalogIndex, profile: Profile, summary: BehaviorSummary, request: RecommendRequest,
         cfg: RankingSettings, ranker: Ranker) -> tuple[list[RankedItem], dict[str, np.ndarray]]:
    """The top-k items with scores and reasons, and the features of those items (for logging)."""
    rows, feats = candidate_features(index, profile, summary, request, cfg)
    if len(rows) == 0:
        return [], {}
    mode = "search" if request.query else "recommend"
    ranker.attach(index)
    scores = ranker.score(feats, mode)
    by_score = np.argsort(-scores, kind="stable")
    diversity = profile.intent.get("compare", 0.0) * cfg.compare_diversity
    top = diversify(scores, index.vectors[rows], diversity, request.k) if diversity > 0.01 else by_score[: request.k]
    score_position = np.empty(len(scores), dtype=np.int64)
    score_position[by_score] = np.arange(len(scores))
    top_feats = {name: values[top] for name, values in feats.items()}
    contributions = ranker.contributions(top_feats, mode)
    items = []
    for position, i in enumerate(top):
        signals = {name: round(float(values[position]), 4) for name, values in top_feats.items()}
        # Only signals the item actually has can be its reason: a tree model also credits absent (zero) features.
        reason = explain({n: float(c[position]) for n, c in contributions.items() if signals.get(n, 0.0) != 0.0}) \
            if contributions else f"{ranker.name} ranker order"
        if score_position[i] > position:   # lifted by the compare intent's variety
            reason = f"{COMPARE_REASON}; {reason}"
        items.append(RankedItem(item_id=index.products["item_id"].iat[rows[i]], title=index.titles[rows[i]],
                                score=round(float(scores[i]), 4), reason=reason, signals=signals))
    return items, top_feats
