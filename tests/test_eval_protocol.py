"""The evaluation protocols: leave-last-out without history leakage, query splits without test peeking,
and the metrics they report. Runs on the bundled data/beauty-demo (real Amazon beauty shoppers)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shopsense.config import Settings
from shopsense.datasets import DEMO_DATA, SHARED_DATA
from shopsense.metrics import ndcg_at_k, ndcg_one_at_k, recall_at_k, reciprocal_rank
from train.nextitem_data import NextItemWorld, split_last, training_frame
from train.query_split import QUERY_SPLITS, query_hash, query_split


@pytest.fixture(scope="module")
def worlds():
    test = NextItemWorld.from_directory(DEMO_DATA, Settings.load(), holdout=1)
    return test, test.earlier()


def event_keys(frame: pd.DataFrame) -> set[tuple]:
    return set(zip(frame["user_id"], frame["item_id"], frame["timestamp"]))


def test_held_out_event_is_each_shoppers_last():
    interactions = pd.read_parquet(DEMO_DATA / "interactions.parquet").astype({"user_id": str, "item_id": str})
    history, targets = split_last(interactions)
    assert len(targets) == interactions["user_id"].nunique()
    last_time = interactions.groupby("user_id")["timestamp"].max()
    assert (targets.set_index("user_id")["timestamp"] == last_time.loc[targets["user_id"]].to_numpy()).all()
    assert len(history) + len(targets) == len(interactions)
    assert not event_keys(history) & event_keys(targets)


def test_nothing_fitted_sees_a_held_out_event(worlds):
    test, validation = worlds
    held_out = event_keys(test.targets)
    # the validation world (where the ranker and the blend are fitted) holds no test target...
    assert not held_out & event_keys(validation.history)
    assert not held_out & event_keys(validation.targets)
    # ...and its targets are each shopper's second-to-last event, already part of the test history
    assert event_keys(validation.targets) <= event_keys(test.history)
    # popularity and the co-occurrence graph of a world count its history only
    counts = validation.history["item_id"].value_counts()
    row = validation.index.row_of[counts.index[0]]
    assert validation.index.products["popularity"].iat[row] == counts.iloc[0]
    assert validation.graph.similar.nnz <= test.graph.similar.nnz


def test_training_labels_are_validation_targets_and_history_is_excluded(worlds):
    test, validation = worlds
    settings = Settings.load()
    frame = training_frame(validation, settings, max_users=200)
    users = validation.sample_users(200)
    # one positive per shopper: the validation target (the test target is never a label)
    assert frame.groupby("qid")["label"].sum().eq(1).all()
    test_events = event_keys(test.targets)
    for user in users[:50]:
        _, _, request = validation.request(user, settings)
        history = {(user, e.item_id, e.timestamp) for e in validation.events(user)}
        assert not history & test_events                       # the test target is not in what is fed
        assert set(request.filters.exclude_items) == {e.item_id for e in validation.events(user)}


def test_sampling_is_seeded(worlds):
    test, _ = worlds
    assert test.sample_users(100, seed=0) == test.sample_users(100, seed=0)
    assert test.sample_users(100, seed=0) != test.sample_users(100, seed=1)


def test_query_split_is_by_query_text():
    assert query_split("Angle  Bracket") == query_split("angle bracket")
    assert query_hash("Angle  Bracket") == query_hash("angle bracket")
    assert sorted(set(QUERY_SPLITS.values())) == ["test", "train", "valid"]
    shares = pd.Series([query_split(f"query {i}") for i in range(5000)]).value_counts(normalize=True)
    assert abs(shares["test"] - 0.2) < 0.03


@pytest.mark.skipif(not (SHARED_DATA / "homedepot" / "judgments.parquet").exists(),
                    reason="needs ../shared/data/homedepot/judgments.parquet (not part of the repository)")
def test_search_training_never_uses_test_queries():
    judgements = pd.read_parquet(SHARED_DATA / "homedepot" / "judgments.parquet")
    queries = judgements["search_term"].astype(str).unique()
    test = {q for q in queries if query_split(q) == "test"}
    fitted = {q for q in queries if query_split(q) != "test"}
    assert test and not {query_hash(q) for q in test} & {query_hash(q) for q in fitted}


def test_metrics():
    assert ndcg_at_k([2, 0, 1], [2, 1, 0], 10) == pytest.approx((2 + 1 / np.log2(4)) / (2 + 1 / np.log2(3)))
    assert ndcg_at_k([0, 0], [], 10) == 0.0
    assert reciprocal_rank([False, True]) == 0.5 and reciprocal_rank([False]) == 0.0
    assert recall_at_k([True, False, True], 4, 2) == 0.25
    assert ndcg_one_at_k(0, 10) == 1.0 and ndcg_one_at_k(10, 10) == 0.0 and ndcg_one_at_k(None, 10) == 0.0
