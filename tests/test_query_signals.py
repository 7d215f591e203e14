"""Intent g and demand d change rankings the way the reasons say, on the bundled catalogue and real
encoder vectors: the same request ranked with and without a profile's intent/demand."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shopsense.behavior import summarize
from shopsense.catalog import brands, words
from shopsense.config import Settings
from shopsense.profile import Profile, unit
from shopsense.ranking import COMPARE_REASON, SimpleRanker, rank
from shopsense.schemas import RecommendRequest


@pytest.fixture(scope="module")
def ranked(demo_index, st_encoder):
    settings = Settings.load()
    summary = summarize([], demo_index, 0.0, settings.profile)

    def run(query: str, intent: dict | None = None, demand: dict | None = None, k: int = 10):
        profile = Profile(query=unit(st_encoder.encode([query])[0]), intent=intent or {}, demand=demand or {})
        request = RecommendRequest(user_id="shopper", query=query, k=k)
        items, _ = rank(demo_index, profile, summary, request, settings.ranking, SimpleRanker(settings.ranking))
        return items

    return run


def test_brands_come_from_the_field_or_from_titles_that_lead_with_them():
    products = pd.DataFrame({"title": ["Garnier Fructis Shampoo", "Garnier Olia Hair Color", "Hair Tamer Brush",
                                       "Silk Hair Serum", "Argan Hair Oil", "L'Oreal Paris Mascara",
                                       "L'Oreal Excellence Creme", "12 Pack Cotton Pads"],
                             "brand": [None, None, None, None, None, None, None, "Swisspers"]})
    assert brands(products) == ["garnier", "garnier", "", "", "", "loreal", "loreal", "Swisspers"]
    assert words("L'Oreal 3/4-Inch") == ["loreal", "3", "4", "inch"]


def test_brand_demand_lifts_the_named_brand_and_says_so(ranked, demo_index):
    query = "loreal hair color"
    plain, with_demand = ranked(query), ranked(query, demand={"brand": 0.9})
    is_brand = {item.item_id: demo_index.brands[demo_index.row_of[item.item_id]] == "loreal"
                for item in plain + with_demand}
    assert sum(is_brand[i.item_id] for i in with_demand) > sum(is_brand[i.item_id] for i in plain)
    for item in with_demand:
        assert ("(brand demand)" in item.reason) == is_brand[item.item_id], (item.title, item.reason)
    assert not any("demand" in item.reason for item in plain)


def test_spec_demand_lifts_products_with_the_asked_size(ranked):
    query = "conditioner 14 ounce"
    plain, with_demand = ranked(query), ranked(query, demand={"size_spec": 0.9})

    def best_position(items):
        return next((p for p, item in enumerate(items) if "14" in words(item.title)), len(items))

    assert best_position(with_demand) < best_position(plain)
    lifted = with_demand[best_position(with_demand)]
    assert "(spec demand)" in lifted.reason
    assert all("(spec demand)" not in item.reason for item in with_demand if "14" not in words(item.title))


def test_purchase_intent_favours_exact_matches(ranked):
    query = "eye shadow palette"
    plain, buying = ranked(query), ranked(query, intent={"purchase": 0.9})

    def discounted_coverage(items):   # share of the query's words each item has, weighted by position
        return sum(item.signals["query_coverage"] / np.log2(p + 2) for p, item in enumerate(items))

    assert discounted_coverage(buying) > discounted_coverage(plain)
    assert any("(buying intent)" in item.reason for item in buying)
    assert all(item.signals["query_coverage"] > 0 for item in buying if "(buying intent)" in item.reason)


def test_compare_intent_widens_the_choice(ranked, demo_index):
    query = "maybelline mascara"
    plain, comparing = ranked(query), ranked(query, intent={"compare": 1.0})

    def mean_similarity(items):
        vectors = demo_index.vectors[[demo_index.row_of[item.item_id] for item in items]]
        similarity = vectors @ vectors.T
        return (similarity.sum() - len(items)) / (len(items) * (len(items) - 1))

    assert mean_similarity(comparing) < mean_similarity(plain)
    assert [i.item_id for i in comparing] != [i.item_id for i in plain]
    assert any(item.reason.startswith(COMPARE_REASON) for item in comparing)
    assert comparing[0].item_id == plain[0].item_id   # the best match still leads
    assert not any(COMPARE_REASON in item.reason for item in plain)
