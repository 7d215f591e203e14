"""Profile math of DESIGN.md against values computed by hand."""
import math

import numpy as np
import pandas as pd
import pytest

from shopsense.behavior import summarize
from shopsense.config import ProfileSettings
from shopsense.index import CatalogIndex
from shopsense.profile import decay, dwell_factor, event_weight, fuse, search_history, unit, weighted_mean
from shopsense.schemas import Event

NOW = 1_000_000.0
CFG = ProfileSettings(half_life_hours=1.0)  # one hour half-life keeps the arithmetic readable


def ev(type_, age_h, item=None, query=None, dwell=None, user="u"):
    return Event(user_id=user, type=type_, item_id=item, query=query, dwell_seconds=dwell, timestamp=NOW - age_h * 3600)


def test_decay_halves_every_half_life():
    assert decay(0, 1.0) == 1.0
    assert decay(3600, 1.0) == pytest.approx(0.5)
    assert decay(7200, 1.0) == pytest.approx(0.25)
    assert decay(-50, 1.0) == 1.0  # clock skew: a future event counts as now


def test_event_weight_is_type_times_dwell_times_decay():
    assert event_weight(ev("view", 0, "a"), NOW, CFG) == 1.0
    assert event_weight(ev("purchase", 1, "a"), NOW, CFG) == pytest.approx(8 * 0.5)
    assert event_weight(ev("add_to_cart", 2, "a"), NOW, CFG) == pytest.approx(4 * 0.25)
    # dwell of 30 s with a 30 s unit: 1 + ln 2
    assert dwell_factor(30, 30) == pytest.approx(1 + math.log(2))
    assert event_weight(ev("dwell", 0, "a", dwell=30), NOW, CFG) == pytest.approx(1 + math.log(2))
    assert event_weight(ev("search", 0, query="x"), NOW, CFG) == 0.0  # searches shape f_text, not f_behavior


def test_weighted_mean_by_hand():
    vectors = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert weighted_mean(vectors, np.array([3.0, 1.0])) == pytest.approx([0.75, 0.25])
    assert weighted_mean(vectors, np.array([0.0, 0.0])) is None
    assert weighted_mean(np.zeros((0, 2)), np.zeros(0)) is None


def test_fuse_text_interest_intent_and_demand():
    searches = np.array([[1.0, 0.0], [0.0, 1.0]])
    weights = np.array([1.0, 0.5])  # newest search, and one a half-life older
    profile = fuse(np.array([0.0, 2.0]), searches, weights, np.array([3.0, 4.0]),
                   intent_probs=np.array([[0.9, 0.1], [0.3, 0.7]]), intent_labels=["purchase", "browse"])
    assert profile.query == pytest.approx([0.0, 1.0])
    expected = np.array([1.0, 0.5]) / np.linalg.norm([1.0, 0.5])  # (1*[1,0] + 0.5*[0,1]) / 1.5, normalised
    assert profile.f_text == pytest.approx(expected, rel=1e-6)
    assert profile.f_behavior == pytest.approx([0.6, 0.8])
    assert profile.intent == pytest.approx({"purchase": (0.9 + 0.5 * 0.3) / 1.5, "browse": (0.1 + 0.5 * 0.7) / 1.5},
                                           abs=1e-4)
    assert unit(np.zeros(2)) is None


def test_search_history_newest_first_with_recency_weights():
    events = [ev("search", 0, query="new"), ev("click", 0.5, "a"), ev("search", 1, query="old")]
    texts, weights = search_history(events, NOW, CFG)
    assert texts == ["new", "old"]
    assert weights == pytest.approx([1.0, 0.5])


def tiny_index():
    products = pd.DataFrame({"item_id": ["a", "b", "c"], "title": ["A", "B", "C"], "brand": ["x", "y", None],
                             "category": [None, None, None], "price": [1.0, 2.0, None],
                             "price_band": ["budget", "premium", None], "popularity": [0.0, 1.0, 0.0]})
    vectors = np.eye(3, dtype=np.float32)
    return CatalogIndex(products, vectors)


def test_behaviour_vector_and_affinities_by_hand():
    events = [ev("purchase", 0, "a"), ev("view", 1, "b"), ev("click", 0, "zzz-not-in-catalogue")]
    summary = summarize(events, tiny_index(), NOW, CFG)
    # weights: purchase a = 8, view b = 1 * 0.5; the unknown product adds no vector
    assert summary.f_behavior == pytest.approx([8 / 8.5, 0.5 / 8.5, 0.0])
    assert summary.affinities["brand"] == pytest.approx({"x": round(8 / 8.5, 4), "y": round(0.5 / 8.5, 4)})
    assert summary.purchased == {"a"}
    assert summary.counts == {"purchase": 1, "view": 1, "click": 1}
    assert summary.recent_items == ["a", "b", "zzz-not-in-catalogue"]
    assert summary.last_event_at == NOW
