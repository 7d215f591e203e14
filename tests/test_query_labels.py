"""Label derivation of shopsense.query_labels on real queries and products from ../shared/data.

    .venv/bin/python -m pytest tests/test_query_labels.py -q
"""
from __future__ import annotations

import pytest

from shopsense.datasets import SHARED_DATA
from shopsense.query_labels import QueryLabeller, build_lexicons, normalize_text

pytestmark = pytest.mark.skipif(not (SHARED_DATA / "homedepot").exists(),
                                reason=f"needs the shared data sets at {SHARED_DATA} (not shipped with the repository)")


@pytest.fixture(scope="module")
def lexicons():
    return build_lexicons(SHARED_DATA)


@pytest.fixture(scope="module")
def labeller(lexicons):
    return QueryLabeller(lexicons)


@pytest.fixture(scope="module")
def evidence():
    from train.query_data import query_evidence

    return {query: found for query, _, found in query_evidence(SHARED_DATA)}


@pytest.fixture(scope="module")
def dataset():
    from train.query_data import build_dataset

    return build_dataset(SHARED_DATA)


def test_brand_lexicon_from_titles_keeps_brands_not_words(lexicons):
    for brand in ("dewalt", "hampton bay", "simpson strong tie", "black decker", "home decorators collection", "yeti"):
        assert brand in lexicons.brands
    for word in ("white", "outdoor", "light", "westinghouse ceiling fan", "char"):
        assert word not in lexicons.brands


def test_misspelt_brand_found_only_with_relevant_products(labeller, evidence):
    query = "rigid miter saw"  # Home Depot: relevant products are RIDGID saws
    assert "brand" not in labeller.label(query).demand
    with_evidence = labeller.label(query, evidence[query])
    assert "brand" in with_evidence.demand and "brand:misspelt:rigid~ridgid" in with_evidence.reasons
    assert with_evidence.intent == "purchase"


def test_lexicon_brand_rejected_when_relevant_products_lack_it(labeller, evidence):
    query = "stanley 25' pressure washer replacement hose"
    assert "brand" in labeller.label(query).demand
    assert "brand" not in labeller.label(query, evidence[query]).demand


def test_bare_number_is_a_size_when_relevant_titles_give_it_a_unit(labeller, evidence):
    query = "cree 60"  # relevant: "Cree 60W Equivalent ..." bulbs
    assert "size_spec" not in labeller.label(query).demand
    assert "size_spec" in labeller.label(query, evidence[query]).demand


def test_toddler_size_means_a_child_audience_when_products_say_so(labeller, evidence):
    query = "christmas dresses size 3t-4t"  # ESCI: the exact products are girls' dresses
    assert "audience" not in labeller.label(query).demand
    labels = labeller.label(query, evidence[query])
    assert "audience" in labels.demand and "size_spec" in labels.demand


def test_patterns_on_real_queries(labeller):
    assert labeller.label("top rated flush toilet").intent == "compare"
    assert labeller.label("brass tub or shower faucet").intent == "compare"
    assert "price" in labeller.label("window blinds cheap").demand
    assert labeller.label("wed4800bq dryer hose").intent == "purchase"  # model number
    assert labeller.label("microwaves").intent == "browse"
    black_and_decker = labeller.label("black and decker drill")
    assert "brand" in black_and_decker.demand and "style_colour" not in black_and_decker.demand
    assert "material" not in labeller.label("wood screws").demand  # what it works on, not what it is made of
    assert "quantity_pack" in labeller.label("intertape duct tape 3pk").demand
    assert "audience" in labeller.label("tennis lacoste hombre").demand


def test_esci_brand_field_is_evidence(labeller, evidence):
    query = "brumate hopsulator slim"  # ESCI: exact products by "BrüMate"
    labels = labeller.label(query, evidence[query])
    assert "brand" in labels.demand and labels.intent == "purchase"


def test_heldout_split_is_by_query_and_from_judged_queries(dataset):
    keys = dataset["query"].map(normalize_text)
    assert keys.is_unique  # one row per query, so no query sits in both splits
    heldout = dataset[dataset["split"] == "heldout"]
    assert (heldout["evidence"] == "judged").all()
    assert 0.1 < len(heldout) / (dataset["evidence"] == "judged").sum() < 0.2
    assert set(dataset["intent"]) <= {"purchase", "compare", "browse"}
