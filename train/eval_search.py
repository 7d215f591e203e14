"""Search evaluation on human relevance judgements (Home Depot format), over the whole set of products.

    shopsense eval search --judgments PATH.parquet --json OUT [--queries N] [--ablate intent,demand]
                          [--encoder DIR|packaged]
    python -m train.eval_search --judgments ../shared/data/homedepot/judgments.parquet --json runs/search.json

For every query of the file, each system ranks every product in the file; gain =
relevance - 1, unjudged products gain 0. Reported: nDCG@10, MRR (first product with
gain > 0) and recall@100 (of the products with gain > 0), for the system (the learned
ranker through the serving `rank()`: hybrid ANN + BM25 candidates, lambdarank) and for
the baselines over the same products: BM25, the packaged encoder's cosine and, when the
system's encoder is fine-tuned, that encoder's cosine alone.

The system is what a shop serving search would run: the encoder fine-tuned on search
judgements (<artifacts>/models/encoder-search, train.train_encoder) and the ranker
trained on its features (<artifacts>/models/ranker-search.txt, train.train_ranker), both
trained on ../shared/data/homedepot when missing; `--encoder packaged` evaluates the
packaged weights instead (with a ranker trained on them). Queries either model was
trained or validated on (their hashes are in the ranker's meta and the encoder's
training.json) are never scored, so on the Home Depot file only its test split counts
and on any other file every query not seen in training does. `--ablate` refits the
ranker on the same training queries without a feature group (features.FEATURE_GROUPS)
and reports each one's delta.
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
from train.query_split import query_hash
from train.search_data import SearchSet, training_frames
from train.train_encoder import ENCODER_DIR
from train.train_ranker import encoder_name

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


def baseline_metrics(encoded_sets: dict[str, SearchSet], queries: list[str], settings: Settings) -> dict[str, dict]:
    """BM25, and the cosine of each encoding in `encoded_sets` (name -> the file encoded by one encoder), each
    over every product of the file."""
    first = next(iter(encoded_sets.values()))
    item_ids = first.index.products["item_id"].to_numpy()
    rows: dict[str, list[dict]] = {"bm25": [], **{name: [] for name in encoded_sets}}
    for query in queries:
        gains = first.gains(query)
        bm25 = sources_for(first.index).bm25.match(query)
        rows["bm25"].append(query_metrics(item_ids[bm25.top(DEPTH)].tolist(), gains))
        for name, search_set in encoded_sets.items():
            profile, _, _ = search_set.request(query, settings)
            cosine = search_set.index.vectors @ profile.query
            top = np.argpartition(-cosine, DEPTH)[:DEPTH]
            rows[name].append(query_metrics(item_ids[top[np.argsort(-cosine[top])]].tolist(), gains))
    return {name: {m: float(np.mean([r[m] for r in values])) for m in METRICS} for name, values in rows.items()}


def system_settings(settings: Settings, encoder: str | Path | None) -> Settings:
    """`settings` with the search encoder: `encoder` (a sentence-transformers directory, or "packaged" for the
    packaged weights), else the configured `encoder.model`, else <artifacts>/models/encoder-search, fine-tuned
    on the default judgements if missing."""
    if encoder is None and settings.encoder.model:
        return settings
    if encoder == "packaged":
        return settings.model_copy(update={"encoder": settings.encoder.model_copy(update={"model": None})})
    path = Path(encoder) if encoder else settings.artifacts / "models" / ENCODER_DIR
    if not (path / "config.json").exists():
        if encoder:
            raise FileNotFoundError(f"no encoder at {path}: train one with `shopsense train encoder`")
        from train.train_encoder import train_main as train_encoder
        from train.train_ranker import HOMEDEPOT

        train_encoder(HOMEDEPOT, path)
    return settings.model_copy(update={"encoder": settings.encoder.model_copy(update={"model": str(path)})})


def encoder_query_hashes(settings: Settings) -> set[str]:
    """The queries a fine-tuned encoder learned from (none for the packaged weights)."""
    if not settings.encoder.model:
        return set()
    info = Path(settings.encoder.model) / "training.json"
    return set(json.loads(info.read_text()).get("trained_query_hashes", [])) if info.exists() else set()


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
              settings: Settings | None = None, ablate: list[str] | tuple[str, ...] = (),
              encoder: str | Path | None = None) -> dict:
    """Evaluate on one judgements file; returns (and writes as JSON) the figures. report_dir (default:
    beside json_out, else runs/eval-search) gets report.md and metrics.png. max_queries samples queries."""
    base_settings = settings or Settings.load()
    ablated(ablate)   # unknown group names fail before any work
    settings = system_settings(base_settings, encoder)
    model_path = Path(model) if model else settings.artifacts / "models" / MODEL_FILES["search"]
    if not model_path.exists():
        from train.train_ranker import train_main

        train_main("search", out=model_path, settings=settings)
    meta = load_meta(model_path)
    if meta.get("encoder") != encoder_name(settings):
        raise ValueError(f"{model_path} was trained with encoder {meta.get('encoder')!r}, not {encoder_name(settings)!r}"
                         f": pass --encoder for its encoder, or retrain with `python -m train.train_ranker --task search`")
    seen = set(meta.get("trained_query_hashes", [])) | encoder_query_hashes(settings)

    search_set = SearchSet.load(judgments, settings)
    queries = [q for q in search_set.queries if query_hash(q) not in seen and search_set.gains(q)]
    if max_queries and max_queries < len(queries):
        queries = sorted(np.random.default_rng(seed).choice(queries, max_queries, replace=False))

    # the plain baseline is the packaged encoder; a fine-tuned one is also reported on its own
    if settings.encoder.model:
        encoded_sets = {"encoder_cosine": SearchSet.load(judgments, system_settings(base_settings, "packaged")),
                        "encoder_cosine_finetuned": search_set}
    else:
        encoded_sets = {"encoder_cosine": search_set}
    results = {"system": system_metrics(search_set, queries, LearnedRanker(settings.ranking,
                                                                           paths={"search": model_path}), settings),
               **baseline_metrics(encoded_sets, queries, settings)}
    ablations = {}
    if ablate:
        with tempfile.TemporaryDirectory() as directory:
            for group, ranker in ablation_rankers(list(ablate), settings, Path(directory)).items():
                figures = system_metrics(search_set, queries, ranker, settings)
                ablations[group] = {**figures, **{f"delta_{m}": figures[m] - results["system"][m] for m in METRICS}}
    summary = {"task": "search", "judgments": str(judgments), "model": str(model_path),
               "encoder": encoder_name(settings), "queries": len(queries),
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
    parser.add_argument("--encoder", help='a fine-tuned encoder directory, or "packaged" '
                                          '(default: artifacts/models/encoder-search, trained when missing)')
    args = parser.parse_args()
    summary = eval_main(args.judgments, args.json, args.model, args.max_queries, report_dir=args.report_dir,
                        ablate=[a for a in args.ablate.split(",") if a], encoder=args.encoder)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
