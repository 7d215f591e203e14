"""The split of a judgements file's queries into train / valid / test, by a hash of their text.

    from train.query_split import query_split, query_hash
    query_split("cordless drill")   # "train", "valid" or "test", the same on every machine and run

Queries are split by a hash of their normalised text, never by row, so one query's
judgements all land on one side. The search ranker (train.search_data) and the search
encoder (train.train_encoder) share this split, and evaluations skip the hashes the
models list as trained on. Kept apart from search_data so the encoder job imports
nothing of the ranking stack.
"""
from __future__ import annotations

import hashlib

# hash bucket (0-9) -> split: 70% train, 10% valid (reported while training), 20% test
QUERY_SPLITS = {**{b: "train" for b in range(7)}, 7: "valid", 8: "test", 9: "test"}


def query_hash(query: str) -> str:
    return hashlib.sha1(" ".join(query.lower().split()).encode()).hexdigest()


def query_split(query: str) -> str:
    return QUERY_SPLITS[int(query_hash(query), 16) % 10]
