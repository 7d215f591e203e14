"""Search evaluation on human relevance judgements (Home Depot format), over the whole set of products.

    shopsense eval search --judgments PATH.parquet --json OUT [--queries N] [--ablate intent,demand]
    python -m train.eval_search --judgments ../shared/data/homedepot/judgments.parquet --json runs/search.json

For every query of the file, each system ranks every product in the file; gain =
relevance - 1, unjudged products gain 0. Reported: nDCG@10, MRR (first product with
gain > 0) and recall@100 (of the products with gain > 0), for the system (the learned
ranker through the serving `rank()`: hybrid ANN + BM25 candidates, lambdarank) and for
the BM25 and encoder-cosine baselines over the same products.

The system's model is <artifacts>/models/ranker-search.txt, trained on
../shared/data/homedepot (train.train_ranker) when missing. Queries the model was
trained or validated on (their hashes are in the model's meta) are never scored, so
on the Home Depot file only its test split counts and on any other file every query
not seen in training does. `--ablate` refits the model on the same training queries without a
feature group (features.FEATURE_GROUPS) and reports each one's delta.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from shopsense.config import Settings
from shopsense.features import FEATURES, ablated
from shopsense.ltr import load_meta, save_model
from shopsense.metrics import ndcg_at_k, reciprocal_rank, recall_at_k
from shopsense.ranking import MODEL_FILES, LearnedRanker, rank, sources_for
from train.report import publish
from train.search_data import SearchSet, query_hash, training_frames

METRICS = ["nDCG@10", "MRR", "recall@100"]
DEPTH = 100   # the deepest cut-off any metric needs (and the most a request may ask for)


def query_metrics(ranked_ids: list[str], gains: dict[str, float]) -> dict[str, float]:
    ranked_gains = [gains.get(i, 0.0) for i in ranked_ids]
    relevant = [g > 0 for g in ranked_gains]
    n_relevant = sum(g > 0 for g in gains.values())
    return {"nDCG@10": ndcg_at_k(ranked_gains, list(gains.values()), 10), "MRR": reciprocal_rank(relevant),
            "recall@100": recall_at_k(relevant, n_relevant, 100)}


def system_metrics(search_set: SearchSet, queries: list[str], ranker: LearnedRanker, settings: Settings) -> dict:
    """Mean metrics of the serving `rank()` with `ranker` over `queries`."""
    rows = []
    for query in queries:
        profile, summary, request = search_set.request(query, settings, k=DEPTH)
        items, _ = rank(search_set.index, profile, summary, request, settings.ranking, ranker)
        rows.append(query_metrics([item.item_id for item in items], search_set.gains(query)))
    return {m: float(np.mean([r[m] for r in rows])) for m in METRICS}


def baseline_metrics(search_set: SearchSet, queries: list[str], settings: Settings) -> dict[str, dict]:
    """BM25 and encoder cosine, each over every product of the file."""
    item_ids = search_set.index.products["item_id"].to_numpy()
    rows: dict[str, list[dict]] = {"bm25": [], "encoder_cosine": []}
    for query in queries:
        gains = search_set.gains(query)
        bm25 = sources_for(search_set.index).bm25.match(query)
        rows["bm25"].append(query_metrics(item_ids[bm25.top(DEPTH)].tolist(), gains))
        profile, _, _ = search_set.request(query, settings)
        cosine = search_set.index.vectors @ profile.query
        top = np.argpartition(-cosine, DEPTH)[:DEPTH]
        rows["encoder_cosine"].append(query_metrics(item_ids[top[np.argsort(-cosine[top])]].tolist(), gains))
    return {name: {m: float(np.mean([r[m] for r in values])) for m in METRICS} for name, values in rows.items()}


def ablation_rankers(groups: list[str], settings: Settings, directory: Path) -> dict[str, LearnedRanker]:
    """One search model per ablated group, fitted on the default training file's training queries (the
    features are computed once for all of them)."""
    from train.train_ranker import HOMEDEPOT, fit_lambdarank, search_params

    train, valid, _ = training_frames(SearchSet.load(HOMEDEPOT, settings), settings)
    rankers = {}
    for group in groups:
        names = [f for f in FEATURES if f not in ablated([group])]
        booster, metrics = fit_lambdarank(train, valid, names, search_params())
        path = directory / f"without-{group}.txt"
        save_model(booster, path, {"task": "search", "features": names, "metrics": metrics})
        rankers[group] = LearnedRanker(settings.ranking, paths={"search": path})
    return rankers


def eval_main(judgments: str | Path, json_out: str | Path | None = None, model: str | Path | None = None,
              max_queries: int | None = None, seed: int = 0, report_dir: str | Path | None = None,
              settings: Settings | None = None, ablate: list[str] | tuple[str, ...] = ()) -> dict:
    """Evaluate on one judgements file; returns (and writes as JSON) the figures. report_dir (default:
    beside json_out, else runs/eval-search) gets report.md and metrics.png. max_queries samples queries."""
    settings = settings or Settings.load()
    ablated(ablate)   # unknown group names fail before any work
    model_path = Path(model) if model else settings.artifacts / "models" / MODEL_FILES["search"]
    if not model_path.exists():
        from train.train_ranker import train_main

        train_main("search", out=model_path, settings=settings)
    seen = set(load_meta(model_path).get("trained_query_hashes", []))

    search_set = SearchSet.load(judgments, settings)
    queries = [q for q in search_set.queries if query_hash(q) not in seen and search_set.gains(q)]
    if max_queries and max_queries < len(queries):
        queries = sorted(np.random.default_rng(seed).choice(queries, max_queries, replace=False))

    results = {"system": system_metrics(search_set, queries, LearnedRanker(settings.ranking,
                                                                           paths={"search": model_path}), settings),
               **baseline_metrics(search_set, queries, settings)}
    ablations = {}
    if ablate:
        with tempfile.TemporaryDirectory() as directory:
            for group, ranker in ablation_rankers(list(ablate), settings, Path(directory)).items():
                figures = system_metrics(search_set, queries, ranker, settings)
                ablations[group] = {**figures, **{f"delta_{m}": figures[m] - results["system"][m] for m in METRICS}}
    summary = {"task": "search", "judgments": str(judgments), "model": str(model_path), "queries": len(queries),
               "queries_skipped_seen_in_training": sum(query_hash(q) in seen for q in search_set.queries),
               "products": len(search_set.index), "results": results, "ablations": ablations,
               "system_vs_bm25_nDCG@10": results["system"]["nDCG@10"] / max(results["bm25"]["nDCG@10"], 1e-12)}
    publish(summary, f"Search evaluation: {Path(judgments).name}", METRICS, json_out, report_dir,
            "runs/eval-search")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--judgments", required=True)
    parser.add_argument("--json")
    parser.add_argument("--model")
    parser.add_argument("--max-queries", type=int)
    parser.add_argument("--report-dir")
    parser.add_argument("--ablate", default="", help="comma-separated feature groups, e.g. intent,demand")
    args = parser.parse_args()
    summary = eval_main(args.judgments, args.json, args.model, args.max_queries, report_dir=args.report_dir,
                        ablate=[a for a in args.ablate.split(",") if a])
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
