"""Retrieval and ranking benchmark: Ranking-step latency for 100 vs 1,000 candidates, and ANN vs exact
search over a 1,000,000-product index.

    .venv/bin/python -m train.bench_retrieval [--products 1000000] [--queries 200] [--ef-search 128 1024]
                                              [--shoppers 200] [--ranker-model PATH] [--json PATH]
    (or run(...) -> dict, which make bench calls)

(3) ranking, in-process (the Ranking deployment runs these same functions; its candidate count is fixed
    at deploy time, so the Serve graph is not used here). The bundled demo catalogue (data/beauty-demo,
    3,000 products) and its shoppers, each asking for a recommendation just after their last event, as
    the ranker is trained (train.nextitem_data); the learned LightGBM next-item ranker scores them
    (--ranker-model; default <artifacts>/models/ranker-nextitem.txt, or when there is none a small one
    trained into a temporary directory). Per candidate count N, two timings of the same requests:
    - features_and_score: features.compute + ranker.score on exactly N candidate rows (the first N of
      the request's merged retrieval);
    - rank: all of shopsense.ranking.rank (retrieval, features, scoring, reasons) with
      RankingSettings.candidates = N per source; the sources merge to more than N (mean reported).
(4) retrieval: `products` random unit vectors (dim 384, fixed seed) indexed by CatalogIndex (HNSW from
    HNSW_FROM products on, as served): build seconds; per-query ms, one query per call as the Ranking
    deployment searches, of the index at each --ef-search (the first is the serving default,
    HNSW_EF_SEARCH) and of exact search (faiss IndexFlatIP); recall@100 of the index against exact over
    random unit queries. Random vectors in 384 dimensions have no cluster structure: the hardest case
    for a graph index.
The machine is shared and noisy: compare the ratios, measured in the same run.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from shopsense import features
from shopsense.config import Settings
from shopsense.datasets import DEMO_DATA
from shopsense.index import HNSW_EF_SEARCH, CatalogIndex
from shopsense.ranking import MODEL_FILES, LearnedRanker, candidate_pool, rank
from train.nextitem_data import NextItemWorld
from train.train_ranker import train_main as train_ranker

CANDIDATES = (100, 1000)
DIM = 384
K = 100
WARM_UP = 5
console = Console(width=160)


def latency(ms: list[float]) -> dict:
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}


def timed_ms(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


# ---- (3) ranking latency ----------------------------------------------------------------------------------

def learned_ranker(settings: Settings, model: Path | None, workdir: Path, users: int) -> tuple[LearnedRanker, str]:
    """The next-item ranker to time, and where it came from."""
    path = model or settings.artifacts / "models" / MODEL_FILES["recommend"]
    if model is None and not path.exists():
        path = train_ranker("nextitem", DEMO_DATA, out=workdir / MODEL_FILES["recommend"], settings=settings,
                            max_users=users)
        source = f"trained for this run on {users} demo shoppers"
    elif not path.exists():
        raise FileNotFoundError(f"no ranker model at {path}")
    else:
        source = str(path)
    return LearnedRanker(settings.ranking, paths={"recommend": path}), source


def ranking_latency(shoppers: int, model: Path | None, ranker_users: int) -> dict:
    settings = Settings.load(overrides={"ranking": {"ranker": "learned"}})
    world = NextItemWorld.from_directory(DEMO_DATA, settings)
    index = world.index
    requests = [world.request(user, settings) for user in world.sample_users(shoppers)]
    with tempfile.TemporaryDirectory(prefix="bench-ranking-") as tmp:
        ranker, source = learned_ranker(settings, model, Path(tmp), ranker_users)
        ranker.attach(index)
        figures: dict = {"model": source, "products": len(index), "shoppers": len(requests)}
        for n in CANDIDATES:
            cfg = settings.ranking.model_copy(update={"candidates": n})
            for profile, summary, request in requests[:WARM_UP]:
                rank(index, profile, summary, request, cfg, ranker)
            exact_ms, rank_ms, merged = [], [], []
            for profile, summary, request in requests:
                rows, ranks, signals, graph = candidate_pool(index, profile, summary, request, cfg)
                merged.append(len(rows))
                if len(rows) >= n:  # exactly n rows: the first n of the merged retrieval
                    first = {source_name: r[:n] for source_name, r in ranks.items()}
                    exact_ms.append(timed_ms(lambda: ranker.score(
                        features.compute(index, rows[:n], first, profile, summary, signals, graph), "recommend")))
                rank_ms.append(timed_ms(lambda: rank(index, profile, summary, request, cfg, ranker)))
            figures[str(n)] = {"features_and_score": {**latency(exact_ms), "requests": len(exact_ms)},
                               "rank": {**latency(rank_ms), "candidates_mean": float(np.mean(merged))}}
    low, high = (figures[str(n)] for n in CANDIDATES)
    figures[f"ratio_{CANDIDATES[1]}_over_{CANDIDATES[0]}"] = {
        step: {q: high[step][q] / low[step][q] for q in ("p50_ms", "p99_ms")} for step in ("features_and_score", "rank")}
    return figures


# ---- (4) ANN vs exact retrieval ---------------------------------------------------------------------------

def unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    vectors = rng.standard_normal((n, DIM), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def searched(search, queries: np.ndarray) -> tuple[list[float], np.ndarray]:
    """Per-query ms and the rows found, one query per call."""
    ms, found = [], []
    for query in queries:
        start = time.perf_counter()
        _, rows = search(query)
        ms.append((time.perf_counter() - start) * 1000)
        found.append(rows[0])
    return ms, np.stack(found)


def ann_vs_exact(products: int, queries: int, ef_search: list[int], seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    vectors = unit_vectors(rng, products)
    catalogue = pd.DataFrame({"item_id": [f"p{i}" for i in range(products)], "title": ""})
    start = time.perf_counter()
    index = CatalogIndex(catalogue, vectors)
    build_s = time.perf_counter() - start
    exact = faiss.IndexFlatIP(DIM)
    exact.add(vectors)
    probes = unit_vectors(rng, queries)
    exact_ms, truth = searched(lambda q: exact.search(q[None], K), probes)
    figures: dict = {"products": products, "dim": DIM, "queries": queries, "k": K, "index": type(index.ann).__name__,
                     "build_s": build_s, "faiss_threads": faiss.omp_get_max_threads(), "exact": latency(exact_ms),
                     "ann_by_ef_search": {}}
    for ef in ef_search:
        ms, found = searched(lambda q: index.search(q, K, ef_search=ef), probes)
        ann = latency(ms)
        figures["ann_by_ef_search"][str(ef)] = {
            **ann, f"recall_at_{K}": float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth)])),
            "ratio_exact_over_ann_p50": figures["exact"]["p50_ms"] / ann["p50_ms"]}
    return figures


def run(products: int = 1_000_000, queries: int = 200, ef_search: list[int] | None = None, shoppers: int = 200,
        ranker_model: Path | None = None, ranker_users: int = 300) -> dict:
    return {"ranking_latency": ranking_latency(shoppers, ranker_model, ranker_users),
            "ann_vs_exact": ann_vs_exact(products, queries, ef_search or [HNSW_EF_SEARCH, 1024])}


def report(figures: dict) -> None:
    ranking = figures["ranking_latency"]
    table = Table(title=f"ranking step, {ranking['products']} products, {ranking['shoppers']} shoppers "
                        f"(ranker: {ranking['model']})")
    for column in ("candidates", "features+score p50 ms", "p99 ms", "rank() p50 ms", "p99 ms", "rank() scored"):
        table.add_column(column, justify="right", no_wrap=True)
    for n in CANDIDATES:
        exact, full = ranking[str(n)]["features_and_score"], ranking[str(n)]["rank"]
        table.add_row(f"{n}", f"{exact['p50_ms']:.2f}", f"{exact['p99_ms']:.2f}", f"{full['p50_ms']:.2f}",
                      f"{full['p99_ms']:.2f}", f"{full['candidates_mean']:.0f}")
    ratio = ranking[f"ratio_{CANDIDATES[1]}_over_{CANDIDATES[0]}"]
    table.add_row(f"ratio {CANDIDATES[1]}/{CANDIDATES[0]}", *(f"{ratio[step][q]:.2f}" for step in ratio
                                                              for q in ("p50_ms", "p99_ms")), "")
    console.print(table)

    ann = figures["ann_vs_exact"]
    table = Table(title=f"retrieval over {ann['products']:,} random unit vectors (dim {ann['dim']}): {ann['index']} "
                        f"built in {ann['build_s']:.0f} s vs exact IndexFlatIP, {ann['queries']} queries, "
                        f"{ann['faiss_threads']} faiss threads")
    for column in ("search", "p50 ms/query", "p99 ms/query", f"recall@{ann['k']}", "speed-up (exact/ANN p50)"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_row("exact", f"{ann['exact']['p50_ms']:.2f}", f"{ann['exact']['p99_ms']:.2f}", "1.000", "1.00")
    for ef, row in ann["ann_by_ef_search"].items():
        table.add_row(f"ANN efSearch {ef}", f"{row['p50_ms']:.2f}", f"{row['p99_ms']:.2f}",
                      f"{row[f'recall_at_{K}']:.3f}", f"{row['ratio_exact_over_ann_p50']:.1f}")
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=1_000_000, help="random vectors in the index")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ef-search", type=int, nargs="+", default=[HNSW_EF_SEARCH, 1024],
                        help="HNSW efSearch values to measure (the first: the serving default)")
    parser.add_argument("--shoppers", type=int, default=200, help="recommendation requests per candidate count")
    parser.add_argument("--ranker-model", type=Path, help="next-item ranker model file")
    parser.add_argument("--ranker-users", type=int, default=300, help="shoppers to train a ranker on, when needed")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    figures = run(args.products, args.queries, args.ef_search, args.shoppers, args.ranker_model, args.ranker_users)
    report(figures)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
