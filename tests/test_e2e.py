"""End to end through HTTP against the running Serve graph (Ray, vLLM encoder, SQLite store)."""
from __future__ import annotations

import time
import uuid

import numpy as np
import pytest
from ray import serve

from shopsense.config import Settings
from shopsense.features import FEATURE_GROUPS
from shopsense.pipeline import Recommender
from shopsense.privacy import pseudonymize
from shopsense.ranking import SIGNAL_REASONS
from shopsense.schemas import RecommendRequest
from shopsense.stores import open_store

PERFUME_WORDS = ("perfume", "parfum", "eau de", "fragrance", "cologne", "spray")


def new_user() -> str:
    return f"shopper-{uuid.uuid4().hex[:8]}"


def titles(answer: dict) -> list[str]:
    return [item["title"].lower() for item in answer["items"]]


def recommend(client, user, query=None, k=10) -> dict:
    response = client.post("/v1/recommend", json={"user_id": user, "query": query, "k": k})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def store(serve_app):
    s = open_store(serve_app["settings"].store)
    yield s
    s.close()


def items_with(demo_index, word: str, n: int) -> list[str]:
    mask = demo_index.products["title"].str.lower().str.contains(word)
    return demo_index.products.loc[mask, "item_id"].head(n).tolist()


def test_health_reports_vllm_encoder_and_catalogue(client):
    health = client.get("/healthz").json()
    assert health == {"status": "ok", "encoder": "vllm", "products": 3000}


def test_openapi_lists_the_endpoints(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/events", "/v1/recommend", "/v1/users/{user_id}/profile", "/v1/users/{user_id}", "/healthz"} <= set(paths)


def test_search_finds_matching_products_for_a_new_shopper(client):
    answer = recommend(client, new_user(), "perfume for women", k=5)
    assert answer["mode"] == "search" and len(answer["items"]) == 5
    assert sum(any(w in t for w in PERFUME_WORDS) for t in titles(answer)) >= 4, titles(answer)
    assert all(item["reason"].startswith("matches your search") for item in answer["items"])


def test_encoder_deployment_matches_sentence_transformers(serve_app, st_encoder, demo_index):
    texts = demo_index.titles[:32]
    served = serve.get_deployment_handle("Encoder", app_name="shopsense").encode.remote(texts).result().vectors
    reference = st_encoder.encode(texts)
    assert served.shape == reference.shape
    assert np.min(np.sum(served * reference, axis=1)) > 0.9999


def test_an_event_moves_the_very_next_answer_on_every_replica(client, demo_index):
    user = new_user()
    cold = recommend(client, user)
    assert cold["mode"] == "recommend" and all("popular" in item["reason"] for item in cold["items"])
    nail_items = items_with(demo_index, "nail polish", 3)
    events = [{"user_id": user, "type": "purchase", "item_id": i, "timestamp": time.time() - n} for n, i in
              enumerate(nail_items)]
    response = client.post("/v1/events", json={"events": events})
    assert response.status_code == 202 and response.json() == {"accepted": 3, "stored": 3}
    # two BehaviorFeatures and two Fusion replicas: every answer after the 202 must reflect the events
    for _ in range(4):
        warm = recommend(client, user)
        assert titles(warm) != titles(cold)
        assert sum("nail" in t for t in titles(warm)) >= 5, titles(warm)
        assert not set(nail_items) & {item["item_id"] for item in warm["items"]}  # purchased items are not re-offered
        assert "like products you viewed or bought" in warm["items"][0]["reason"]


def test_behaviour_reorders_a_search(client, demo_index):
    user = new_user()
    before = recommend(client, user, "shampoo", k=10)
    events = [{"user_id": user, "type": "add_to_cart", "item_id": i} for i in items_with(demo_index, "dry", 3)]
    assert client.post("/v1/events", json={"events": events}).status_code == 202
    after = recommend(client, user, "shampoo", k=10)
    assert [i["item_id"] for i in after["items"]] != [i["item_id"] for i in before["items"]]
    assert any("like products you viewed or bought" in i["reason"] for i in after["items"])


def test_profile_shows_searches_products_and_counts(client, demo_index):
    user = new_user()
    item = items_with(demo_index, "lipstick", 1)[0]
    events = [{"user_id": user, "type": "search", "query": "red lipstick"},
              {"user_id": user, "type": "click", "item_id": item},
              {"user_id": user, "type": "dwell", "item_id": item, "dwell_seconds": 45}]
    assert client.post("/v1/events", json={"events": events}).status_code == 202
    profile = client.get(f"/v1/users/{user}/profile").json()
    assert profile["user_id"] == user
    assert profile["counts"] == {"search": 1, "click": 1, "dwell": 1}
    interests = {(i["kind"], i["text"]) for i in profile["top_interests"]}
    assert ("query", "red lipstick") in interests
    assert ("product", demo_index.titles[demo_index.row_of[item]]) in interests


def test_retried_events_are_not_stored_twice(client):
    event = {"event_id": f"retry-{uuid.uuid4().hex}", "user_id": new_user(), "type": "view", "item_id": "1234"}
    assert client.post("/v1/events", json=event).json() == {"accepted": 1, "stored": 1}
    assert client.post("/v1/events", json=event).json() == {"accepted": 1, "stored": 0}


def test_erase_removes_events_profile_and_log(client, store, serve_app, demo_index):
    user = new_user()
    key = pseudonymize(user, serve_app["settings"].privacy.pseudonym_key)
    events = [{"user_id": user, "type": "click", "item_id": i} for i in items_with(demo_index, "cream", 4)]
    client.post("/v1/events", json={"events": events}).raise_for_status()
    recommend(client, user, "face cream")
    assert len(store.recent_events(key, 100)) == 4 and store.get_profile(key) is not None
    assert any(row["user_key"] == key for row in store.clickthrough())

    response = client.delete(f"/v1/users/{user}")
    assert response.status_code == 200 and response.json() == {"erased_events": 4}
    assert store.recent_events(key, 100) == [] and store.get_profile(key) is None
    assert not any(row["user_key"] == key for row in store.clickthrough())
    assert client.get(f"/v1/users/{user}/profile").json()["counts"] == {}


@pytest.mark.parametrize("body, status, names", [
    ({"user_id": "u", "type": "teleport", "item_id": "1"}, 422, "type"),
    ({"type": "click", "item_id": "1"}, 422, "user_id"),
    ({"user_id": "u", "type": "click"}, 422, "item_id"),
    ({"user_id": "u", "type": "search"}, 422, "query"),
    ({"user_id": "u", "type": "dwell", "item_id": "1"}, 422, "dwell_seconds"),
    ({"user_id": "u", "type": "click", "item_id": "1", "timestamp": "yesterday"}, 422, "timestamp"),
    ({"user_id": ["u"], "type": "click", "item_id": "1"}, 422, "user_id"),
    ({"user_id": "u", "type": "click", "item_id": "1", "colour": "red"}, 422, "colour"),
    ({"events": [{"user_id": "u", "type": "click", "item_id": "1"},
                 {"user_id": "u", "type": "click", "item_id": "2"},
                 {"user_id": "u", "type": "click", "item_id": 3.5}]}, 422, "events[2].item_id"),
    ({"events": [{"user_id": "u", "type": "view", "item_id": str(i)} for i in range(51)]}, 413, "51 events"),
    ({"events": []}, 422, "events"),
    ([1, 2], 422, "event object"),
])
def test_bad_events_are_refused_and_nothing_is_stored(client, store, body, status, names):
    before = store.count_events()
    response = client.post("/v1/events", json=body)
    assert response.status_code == status, response.text
    assert names in response.text
    assert store.count_events() == before
    assert client.get("/healthz").status_code == 200


def test_malformed_json_oversized_body_and_missing_key(client, serve_app, store):
    before = store.count_events()
    assert client.post("/v1/events", content=b"{not json", headers={"content-type": "application/json"}).status_code == 400
    huge = b'{"user_id": "u", "type": "search", "query": "' + b"x" * 1_100_000 + b'"}'
    response = client.post("/v1/events", content=huge, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "limit" in response.text
    response = client.post("/v1/events", json={"user_id": "u", "type": "view", "item_id": "1"},
                           headers={"X-API-Key": "wrong"})
    assert response.status_code == 401 and "X-API-Key" in response.text
    assert client.delete("/v1/users/u", headers={"X-API-Key": ""}).status_code == 401
    assert store.count_events() == before


@pytest.mark.parametrize("body, names", [
    ({"user_id": "u", "k": 0}, "k"),
    ({"user_id": "u", "k": 101}, "k"),
    ({"user_id": "u", "k": "ten"}, "k"),
    ({"query": "soap"}, "user_id"),
    ({"user_id": "u", "filters": {"price_min": -1}}, "filters.price_min"),
])
def test_bad_recommend_requests_get_422_naming_the_field(client, body, names):
    response = client.post("/v1/recommend", json=body)
    assert response.status_code == 422 and names in response.text, response.text


def test_filters_restrict_candidates(client, demo_index):
    excluded = items_with(demo_index, "perfume", 3)
    answer = recommend(client, new_user(), "perfume", k=5)
    response = client.post("/v1/recommend", json={"user_id": new_user(), "query": "perfume", "k": 5,
                                                  "filters": {"exclude_items": excluded}})
    assert not set(excluded) & {i["item_id"] for i in response.json()["items"]}
    assert len(response.json()["items"]) == 5 and len(answer["items"]) == 5


def test_http_answers_equal_the_in_process_pipeline(client, serve_app, st_encoder, tmp_path):
    """The graph and the in-process Recommender run the same steps: same items for the same shopper. The
    Recommender loads the same intent/demand checkpoints with PyTorch (equal to vLLM's, tested below)."""
    settings = Settings.load(overrides={**serve_app["overrides"], "encoder": {"backend": "sentence-transformers"},
                                        "store": {"backend": "sqlite", "sqlite_path": str(tmp_path / "s.db")}})
    local = Recommender.open(settings, encoder=st_encoder)
    try:
        for query in ("hair dryer", "vitamin c serum", None):
            user = new_user()
            http_items = [i["item_id"] for i in recommend(client, user, query)["items"]]
            local_items = [i.item_id for i in local.recommend(RecommendRequest(user_id=user, query=query)).items]
            assert http_items == local_items
    finally:
        local.close()


def test_profile_shows_intent_and_demand_from_searches(client):
    user = new_user()
    searches = ["olay vs neutrogena moisturizer", "red nail polish set of 12"]
    events = [{"user_id": user, "type": "search", "query": q, "timestamp": time.time() - n} for n, q in
              enumerate(searches)]
    assert client.post("/v1/events", json={"events": events}).status_code == 202
    profile = client.get(f"/v1/users/{user}/profile").json()
    assert set(profile["intent"]) == {"purchase", "compare", "browse"}
    assert sum(profile["intent"].values()) == pytest.approx(1.0, abs=1e-3)
    assert set(profile["demand"]) == {"brand", "style_colour", "size_spec", "price", "material", "quantity_pack",
                                      "audience"}
    assert all(0.0 < p < 1.0 for p in profile["demand"].values())


def test_search_reasons_name_the_intent_and_demand_they_follow(client):
    """Through the graph, with the served classifiers: the query's brand demand meets the products of the brand
    it names, and a reason names intent or demand only where the item has the matching signal."""
    items = recommend(client, new_user(), "maybelline mascara")["items"]
    branded = [item for item in items if item["signals"]["demand_brand_match"] > 0]
    assert branded and all(item["title"].lower().startswith("maybelline") for item in branded)
    for signal in FEATURE_GROUPS["intent"] + FEATURE_GROUPS["demand"]:
        assert all(item["signals"][signal] > 0 for item in items if SIGNAL_REASONS[signal] in item["reason"]), signal


def test_encoder_serves_classifier_probabilities_equal_to_pytorch(serve_app, query_models):
    """vLLM (inside the Encoder deployment) and PyTorch give the same probabilities for the same checkpoint."""
    from shopsense.query_models import QueryClassifier

    texts = ["dewalt 20v cordless drill", "best robot vacuum vs roomba", "kids rain boots", "x " * 100]
    encoded = serve.get_deployment_handle("Encoder", app_name="shopsense").encode.remote(texts).result()
    for task, served in (("intent", encoded.intent), ("demand", encoded.demand)):
        reference = QueryClassifier(query_models["dir"] / task).predict(texts)
        np.testing.assert_allclose(served, reference, atol=1e-4)


def test_new_checkpoints_load_without_restart_or_failed_requests(client, serve_app, query_models):
    """Swap the intent checkpoint on disk, bump the Encoder's models_version: requests keep succeeding
    throughout, and afterwards the served probabilities are the new model's."""
    import shutil
    import threading

    import torch
    from transformers import AutoModelForSequenceClassification

    from serve.local import deploy
    from shopsense.query_models import QueryClassifier

    encoder = serve.get_deployment_handle("Encoder", app_name="shopsense")
    text = ["compare olay and neutrogena"]
    before = encoder.encode.remote(text).result().intent
    intent_dir = query_models["dir"] / "intent"
    changed = intent_dir.with_name("intent-next")
    model = AutoModelForSequenceClassification.from_pretrained(intent_dir)
    model.classifier.bias.data += torch.tensor([3.0, -3.0, 0.0])  # a different model: leans to "purchase"
    model.save_pretrained(changed)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        if (intent_dir / name).exists():
            shutil.copy(intent_dir / name, changed / name)
    expected = QueryClassifier(changed).predict(text)

    statuses: list[int] = []
    stop = threading.Event()

    def traffic():
        while not stop.is_set():
            statuses.append(client.post("/v1/recommend", json={"user_id": "reload-shopper", "query": "lipstick"})
                            .status_code)

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        old = intent_dir.with_name("intent-old")
        intent_dir.rename(old)
        changed.rename(intent_dir)
        deploy(serve_app["overrides"], serve_app["replicas"], models_version="2")
        deadline = time.time() + 300
        while encoder.info.remote().result()["models_version"] != "2":
            assert time.time() < deadline, "the Encoder did not take the new models version"
            time.sleep(1)
    finally:
        stop.set()
        worker.join()
    after = encoder.encode.remote(text).result().intent
    np.testing.assert_allclose(after, expected, atol=1e-4)
    assert not np.allclose(after, before, atol=1e-3)
    assert statuses and set(statuses) == {200}
