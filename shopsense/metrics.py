"""Ranking metrics over one ranked list: nDCG@k, MRR, recall@k, hit rate@k.

    ndcg_at_k(ranked_gains, all_gains, 10)   # gains of the ranked items, and of every judged item (the ideal)

Gains are linear (DCG = sum gain_i / log2(i + 1)), as the evaluations define them:
relevance - 1 for graded judgements, 1 for the held-out next item.
"""
from __future__ import annotations

import numpy as np


def dcg(gains) -> float:
    gains = np.asarray(gains, dtype=np.float64)
    return float((gains / np.log2(np.arange(2, len(gains) + 2))).sum())


def ndcg_at_k(ranked_gains, all_gains, k: int) -> float:
    ideal = dcg(np.sort(np.asarray(all_gains, dtype=np.float64))[::-1][:k])
    return dcg(np.asarray(ranked_gains, dtype=np.float64)[:k]) / ideal if ideal > 0 else 0.0


def reciprocal_rank(ranked_relevant) -> float:
    """1 / position of the first relevant item (0 when none is ranked)."""
    hits = np.flatnonzero(np.asarray(ranked_relevant, dtype=bool))
    return 1.0 / (hits[0] + 1) if len(hits) else 0.0


def recall_at_k(ranked_relevant, n_relevant: int, k: int) -> float:
    return float(np.asarray(ranked_relevant, dtype=bool)[:k].sum()) / n_relevant if n_relevant else 0.0


def hit_at_k(rank: int | None, k: int) -> float:
    """For one held-out item at 0-based `rank` (None: not ranked)."""
    return 1.0 if rank is not None and rank < k else 0.0


def ndcg_one_at_k(rank: int | None, k: int) -> float:
    """nDCG@k of a single relevant item at 0-based `rank`."""
    return 1.0 / np.log2(rank + 2) if rank is not None and rank < k else 0.0
