"""Next-item evaluation on shopper histories (amazon-reviews format), leave-last-out, full catalogue.

    shopsense eval nextitem --data DIR --json OUT [--users N] [--ablate behavior,intent,demand]
    python -m train.eval_nextitem --data ../shared/data/amazon-reviews/amazon2014-toy --users 2000

Protocol: each shopper's last event is held out; the events before it are the history,
fed through the serving profile code (shopsense.behavior.summarize, shopsense.profile).
Everything fitted — popularity, the co-occurrence graph, the blend weights and the
learned ranker — is fitted on histories only: the ranker and the blend on a validation
split that moves every target one event back (train.nextitem_data.NextItemWorld.earlier).
Each system ranks the full catalogue with the shopper's history products excluded;
HR@10 and NDCG@10 over `--users` shoppers sampled with a fixed seed (all by default).

Systems: the learned ranker through the serving `rank()`; baselines popularity,
last-item co-occurrence, encoder profile (the recency-weighted mean of history vectors,
i.e. f_behavior), and a linear blend of the three with weights fitted on the validation
split. `--ablate` retrains without a feature group (behavior: also an empty profile) and
reports each delta. Nothing here depends on the data set: the same settings run on any
category.
"""
from __future__ import annotations

import argparse
import itertools
import json
import tempfile
from pathlib import Path

import numpy as np

from shopsense.config import Settings
from shopsense.features import FEATURES, ablated
from shopsense.ltr import save_model
from shopsense.metrics import hit_at_k, ndcg_one_at_k
from shopsense.ranking import LearnedRanker, rank
from train.nextitem_data import NextItemWorld, training_frame
from train.report import publish
from train.train_ranker import TRAIN_USERS, fit_lambdarank, nextitem_params

K = 10
BLEND_STEP = 0.1
VALIDATION_USERS = 2000
BATCH = 256


def baseline_scores(world: NextItemWorld, users: list[str], settings: Settings) -> dict[str, np.ndarray]:
    """(users, catalogue) score matrices of the plain baselines, history products set to -inf."""
    index, n = world.index, len(world.index)
    popularity = np.tile(index.popularity, (len(users), 1)).astype(np.float64)
    cooc = np.zeros((len(users), n))
    profile = np.zeros((len(users), n))
    seen = np.zeros((len(users), n), dtype=bool)
    for i, user in enumerate(users):
        prof, summary, request = world.request(user, settings)
        rows = index.rows(summary.recent_items)
        if rows:
            cooc[i] = world.graph.similar[rows[0]].toarray().ravel()
        if prof.f_behavior is not None:
            profile[i] = index.vectors @ prof.f_behavior
        seen[i, index.rows(request.filters.exclude_items)] = True
    # popularity breaks ties among products that never co-occurred with the last one
    scores = {"popularity": popularity, "cooccurrence": cooc + 1e-6 * popularity, "encoder_profile": profile}
    for matrix in scores.values():
        matrix[seen] = -np.inf
    return scores


def target_ranks(scores: np.ndarray, target_rows: np.ndarray) -> np.ndarray:
    """0-based rank of each user's target (ties: lower row first, as a stable sort); -1 if not in the catalogue."""
    ranks = np.full(len(target_rows), -1)
    for i, row in enumerate(target_rows):
        if row >= 0:
            s = scores[i, row]
            ranks[i] = int((scores[i] > s).sum() + (scores[i, :row] == s).sum())
    return ranks


def metrics_of(ranks) -> dict[str, float]:
    ranks = [None if r < 0 else int(r) for r in ranks]
    return {"HR@10": float(np.mean([hit_at_k(r, K) for r in ranks])),
            "NDCG@10": float(np.mean([ndcg_one_at_k(r, K) for r in ranks]))}


def normalised(matrix: np.ndarray) -> np.ndarray:
    """Per-user min-max to [0, 1] over the catalogue; excluded products get -1, below any blend of the rest."""
    allowed = np.isfinite(matrix)
    finite = np.where(allowed, matrix, np.nan)
    low, high = np.nanmin(finite, axis=1, keepdims=True), np.nanmax(finite, axis=1, keepdims=True)
    return np.where(allowed, (finite - low) / np.maximum(high - low, 1e-12), -1.0)


def blend_grid() -> list[tuple[float, float, float]]:
    steps = np.round(np.arange(0, 1 + 1e-9, BLEND_STEP), 6)
    return [(a, b, round(1 - a - b, 6)) for a, b in itertools.product(steps, steps) if a + b <= 1 + 1e-9]


def baseline_ranks(world: NextItemWorld, users: list[str], settings: Settings,
                   weights: tuple[float, float, float] | None) -> dict[str, np.ndarray]:
    """Target ranks of every baseline (and of the blend when weights are given), in user batches."""
    names = ["popularity", "cooccurrence", "encoder_profile"]
    target_row = dict(zip(world.targets["user_id"], world.targets["item_id"]))
    ranks: dict[str, list] = {name: [] for name in names + (["blend"] if weights else [])}
    for start in range(0, len(users), BATCH):
        batch = users[start:start + BATCH]
        scores = baseline_scores(world, batch, settings)
        targets = np.array([world.index.row_of.get(target_row[u], -1) for u in batch])
        for name in names:
            ranks[name].extend(target_ranks(scores[name], targets))
        if weights:
            blended = sum(w * normalised(scores[name]) for w, name in zip(weights, names))
            ranks["blend"].extend(target_ranks(blended, targets))
    return {name: np.array(r) for name, r in ranks.items()}


def fit_blend(world: NextItemWorld, users: list[str], settings: Settings) -> tuple[tuple[float, float, float], float]:
    """Blend weights (popularity, co-occurrence, encoder profile) with the best validation NDCG@10."""
    names = ["popularity", "cooccurrence", "encoder_profile"]
    target_row = dict(zip(world.targets["user_id"], world.targets["item_id"]))
    batches = []
    for start in range(0, len(users), BATCH):
        batch = users[start:start + BATCH]
        scores = baseline_scores(world, batch, settings)
        batches.append(([normalised(scores[n]) for n in names],
                        np.array([world.index.row_of.get(target_row[u], -1) for u in batch])))
    best, best_ndcg = (1.0, 0.0, 0.0), -1.0
    for weights in blend_grid():
        ranks = np.concatenate([target_ranks(sum(w * m for w, m in zip(weights, mats)), targets)
                                for mats, targets in batches])
        ndcg = metrics_of(ranks)["NDCG@10"]
        if ndcg > best_ndcg:
            best, best_ndcg = weights, ndcg
    return best, best_ndcg


def train_system(validation: NextItemWorld, settings: Settings, off: frozenset[str], behavior: bool,
                 train_users: int, model_path: Path) -> LearnedRanker:
    """Fit the lambdarank model on the validation world (history only) without the `off` features."""
    frame = training_frame(validation, settings, max_users=train_users, behavior=behavior)
    names = [f for f in FEATURES if f not in off]
    booster, metrics = fit_lambdarank(frame, None, names, nextitem_params())
    save_model(booster, model_path, {"task": "nextitem", "features": names, "rows": len(frame), "metrics": metrics})
    return LearnedRanker(settings.ranking, paths={"recommend": model_path})


def system_ranks(world: NextItemWorld, users: list[str], settings: Settings, ranker: LearnedRanker,
                 behavior: bool) -> np.ndarray:
    """Target ranks through the serving rank(): only its top K count (beyond K: a miss)."""
    target_of = dict(zip(world.targets["user_id"], world.targets["item_id"]))
    ranks = []
    for user in users:
        profile, summary, request = world.request(user, settings, behavior=behavior, k=K)
        items, _ = rank(world.index, profile, summary, request, settings.ranking, ranker)
        ids = [item.item_id for item in items]
        ranks.append(ids.index(target_of[user]) if target_of[user] in ids else -1)
    return np.array(ranks)


def eval_main(data: str | Path, json_out: str | Path | None = None, users: int | None = None,
              ablate: list[str] | tuple[str, ...] = (), seed: int = 0, train_users: int = TRAIN_USERS,
              report_dir: str | Path | None = None, settings: Settings | None = None) -> dict:
    """Run the protocol on one amazon-reviews directory; returns (and writes as JSON) the figures.
    report_dir (default: beside json_out, else runs/eval-nextitem) gets report.md and metrics.png."""
    settings = settings or Settings.load()
    off_groups = {group: ablated([group]) for group in ablate}
    test = NextItemWorld.from_directory(data, settings, holdout=1)
    validation = test.earlier()
    eval_users = test.sample_users(users, seed)

    weights, validation_ndcg = fit_blend(validation, validation.sample_users(VALIDATION_USERS, seed), settings)
    baselines = baseline_ranks(test, eval_users, settings, weights)
    results = {name: metrics_of(r) for name, r in baselines.items()}

    with tempfile.TemporaryDirectory() as tmp:
        ranker = train_system(validation, settings, frozenset(), True, train_users, Path(tmp) / "system.txt")
        results["system"] = metrics_of(system_ranks(test, eval_users, settings, ranker, True))
        ablations = {}
        for group in ablate:
            behavior = group != "behavior"
            ranker = train_system(validation, settings, off_groups[group], behavior, train_users,
                                  Path(tmp) / f"without-{group}.txt")
            figures = metrics_of(system_ranks(test, eval_users, settings, ranker, behavior))
            ablations[group] = {**figures, "delta_NDCG@10": figures["NDCG@10"] - results["system"]["NDCG@10"],
                                "delta_HR@10": figures["HR@10"] - results["system"]["HR@10"]}

    best_baseline = max((n for n in results if n != "system"), key=lambda n: results[n]["NDCG@10"])
    summary = {
        "task": "nextitem", "data": str(data), "users": len(eval_users), "seed": seed,
        "catalogue": len(test.index), "results": results, "ablations": ablations,
        "blend_weights": dict(zip(["popularity", "cooccurrence", "encoder_profile"], weights)),
        "blend_validation_NDCG@10": validation_ndcg, "best_baseline": best_baseline,
        "system_vs_best_baseline_NDCG@10": results["system"]["NDCG@10"] / max(results[best_baseline]["NDCG@10"], 1e-12),
    }
    publish(summary, f"Next-item evaluation: {Path(data).name}", ["HR@10", "NDCG@10"], json_out, report_dir,
            "runs/eval-nextitem")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--json")
    parser.add_argument("--users", type=int)
    parser.add_argument("--ablate", default="", help="comma-separated: behavior,intent,demand")
    parser.add_argument("--train-users", type=int, default=TRAIN_USERS)
    parser.add_argument("--report-dir")
    args = parser.parse_args()
    summary = eval_main(args.data, args.json, args.users, [a for a in args.ablate.split(",") if a],
                        train_users=args.train_users, report_dir=args.report_dir)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
