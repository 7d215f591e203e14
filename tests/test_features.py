"""Feature parity: the features the in-process pipeline (Recommender: store -> summarize -> encoder ->
fuse -> rank, with the SQLite store) computes for a real request equal what the training code computes for the same
query or shopper. Runs on the bundled data/beauty-demo (real Amazon beauty shoppers)."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from shopsense.config import Settings, StoreSettings
from shopsense.cooccurrence import CoOccurrence
from shopsense.datasets import DEMO_DATA, amazon_reviews
from shopsense.features import FEATURES, FEATURE_GROUPS, ablated, matrix
from shopsense.pipeline import Recommender
from shopsense.ranking import candidate_features
from shopsense.schemas import RecommendRequest
from shopsense.stores import open_store
from shopsense.text_models import Encoded, TextModels
from train.nextitem_data import NextItemWorld
from train.search_data import SearchSet
from train.vector_cache import classify_cached

QUERY = "vitamin c serum for face"


@pytest.fixture(scope="module")
def world():
    """The demo shop with its log moved to end an hour ago, so the pipeline's clock (time.time()) and the
    training code's (the shopper's last event) both see recent events; decay scales every weight alike."""
    products, interactions = amazon_reviews(DEMO_DATA)
    shift = time.time() - 3600 - interactions["timestamp"].max()
    interactions = interactions.assign(timestamp=interactions["timestamp"] + shift)
    return NextItemWorld.from_frames(products, interactions, Settings.load())


@pytest.fixture(scope="module")
def recommender(world, st_encoder, tmp_path_factory):
    store = open_store(StoreSettings(sqlite_path=str(tmp_path_factory.mktemp("store") / "events.sqlite")))
    yield Recommender(Settings.load(), TextModels(st_encoder, {}), store, world.index)
    store.close()


def assert_same(items, rows, feats, index):
    assert items, "the pipeline returned nothing"
    position = {int(r): i for i, r in enumerate(rows)}
    for item in items:
        i = position[index.row_of[item.item_id]]      # the pipeline's item is a training candidate too
        assert set(item.signals) == set(FEATURES)
        for name in FEATURES:
            assert item.signals[name] == pytest.approx(float(feats[name][i]), abs=2e-4), (item.item_id, name)


def test_search_features_match_training(world, recommender, st_encoder):
    settings = Settings.load()
    answer = recommender.recommend(RecommendRequest(user_id="first-time-visitor", query=QUERY, k=10))
    search_set = SearchSet(DEMO_DATA, world.index, pd.DataFrame(columns=["query", "item_id", "relevance"]),
                           [QUERY], Encoded(st_encoder.encode([QUERY])))
    rows, feats = search_set.features(QUERY, settings)
    assert_same(answer.items, rows, feats, world.index)
    assert max(item.signals["bm25"] for item in answer.items) > 0
    assert max(item.signals["query_cos"] for item in answer.items) > 0.3


def test_intent_and_demand_features_match_training(world, st_encoder, query_models, tmp_path):
    """With the intent/demand models (trained by the session fixture): the pipeline's classifiers and the
    training code's cached probabilities give the same g/d features."""
    settings = Settings.load(overrides={"encoder": {"backend": "sentence-transformers"},
                                        "query_models": {"intent_path": str(query_models["dir"] / "intent"),
                                                         "demand_path": str(query_models["dir"] / "demand")}})
    store = open_store(StoreSettings(sqlite_path=str(tmp_path / "events.sqlite")))
    recommender = Recommender(settings, TextModels.load(settings, st_encoder), store, world.index)
    assert set(recommender.models.classifiers) == {"intent", "demand"}
    answer = recommender.recommend(RecommendRequest(user_id="first-time-visitor", query=QUERY, k=10))
    store.close()
    query_texts = classify_cached([QUERY], st_encoder.encode([QUERY]), settings, cache_dir=tmp_path)
    search_set = SearchSet(DEMO_DATA, world.index, pd.DataFrame(columns=["query", "item_id", "relevance"]),
                           [QUERY], query_texts)
    rows, feats = search_set.features(QUERY, settings)
    assert_same(answer.items, rows, feats, world.index)
    assert any(item.signals["intent_purchase_popularity"] > 0 for item in answer.items)


def test_recommendation_features_match_training(world, recommender):
    settings = Settings.load()
    user = world.targets["user_id"].iloc[0]
    events = world.events(user)[::-1]
    recommender.ingest(events)
    answer = recommender.recommend(RecommendRequest(user_id=user, k=10))
    profile, summary, request = world.request(user, settings)
    rows, feats = candidate_features(world.index, profile, summary, request, settings.ranking)
    assert_same(answer.items, rows, feats, world.index)
    # a shopper with history gets behaviour signals, and none of the products already bought
    assert max(item.signals["behavior_cos"] for item in answer.items) > 0
    assert not {item.item_id for item in answer.items} & {e.item_id for e in events}


def test_features_without_history_or_query_are_zero(world):
    settings = Settings.load()
    user = world.targets["user_id"].iloc[1]
    profile, summary, request = world.request(user, settings, behavior=False)
    rows, feats = candidate_features(world.index, profile, summary, request, settings.ranking)
    assert len(rows) >= 10
    for name in FEATURE_GROUPS["behavior"] + FEATURE_GROUPS["query"][:-1]:
        assert not feats[name].any(), name
    assert feats["popularity"].max() > 0


def test_matrix_and_ablation():
    feats = {name: np.full(3, i, dtype=np.float32) for i, name in enumerate(FEATURES)}
    off = ablated(["behavior"])
    x = matrix(feats, FEATURES, off)
    assert x.shape == (3, len(FEATURES))
    assert not x[:, [FEATURES.index(n) for n in off]].any()
    with pytest.raises(ValueError, match="unknown feature group"):
        ablated(["nonsense"])


def test_two_hop_reaches_products_never_bought_beside_the_last():
    # shoppers: a-b, b-c, d-e; a shopper who just bought a reaches c through b, never d or e
    interactions = pd.DataFrame({"user_id": ["u1", "u1", "u2", "u2", "u3", "u3"],
                                 "item_id": ["a", "b", "b", "c", "d", "e"],
                                 "timestamp": [1.0, 2.0, 1.0, 2.0, 1.0, 2.0]})
    graph = CoOccurrence.build(interactions, ["a", "b", "c", "d", "e"])
    recent = graph.scores([0])
    assert recent[2] == 0 and recent[1] > 0
    reach = graph.two_hop(recent)
    assert reach[2] > 0 and not reach[3:].any()
    # the last products, newest first, b then a: c follows b and b follows a
    follows = graph.follows_recent([1, 0])
    assert follows[2] > 0 and follows[1] > 0 and not follows[3:].any()
