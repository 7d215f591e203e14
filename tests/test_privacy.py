"""Shopper privacy against real SQLite files and a real redis-server: no raw id at rest, retention, erase,
and the Laplace noise of exported aggregate statistics.

    .venv/bin/python -m pytest tests/test_privacy.py -q
"""
import json
import time
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import redis

from shopsense.catalog import load_catalog
from shopsense.config import Settings
from shopsense.datasets import DEMO_DATA
from shopsense.encoders import Encoder
from shopsense.export import aggregate_stats, export_clickthrough
from shopsense.importer import import_events
from shopsense.index import CatalogIndex
from shopsense.pipeline import Recommender, ingest
from shopsense.privacy import pseudonymize
from shopsense.schemas import Event, RecommendRequest
from shopsense.stores import open_store

SHOPPERS = ("alice@example.com", "bob.smith@example.org", "+49 170 1234567")


class HashEncoder(Encoder):
    """Stand-in text encoder: a fixed pseudo-random unit vector per text (privacy needs no semantics)."""

    name, dim = "hash", 32

    def encode(self, texts: list[str]) -> np.ndarray:
        rows = [np.random.default_rng(zlib.crc32(t.encode())).normal(size=self.dim) for t in texts]
        vectors = np.array(rows, dtype=np.float32).reshape(len(texts), self.dim)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(1e-9)


@pytest.fixture(scope="module")
def catalog_artifacts(tmp_path_factory):
    """An artifacts directory with 300 products of the bundled demo catalogue, hash-encoded."""
    directory = tmp_path_factory.mktemp("privacy-artifacts")
    CatalogIndex.build(load_catalog(DEMO_DATA / "items.parquet").head(300), HashEncoder()).save(directory / "catalog")
    return directory


@pytest.fixture(params=["sqlite", "redis"])
def backend(request, tmp_path, catalog_artifacts):
    """(settings, at_rest): settings of a fresh store; at_rest() returns every byte the store holds --
    the SQLite file with its WAL, or every Redis key and value plus the server's append-only files."""
    if request.param == "sqlite":
        path = tmp_path / "events.sqlite"
        settings = Settings.load(overrides={"artifacts_dir": str(catalog_artifacts),
                                            "store": {"backend": "sqlite", "sqlite_path": str(path)}})
        return settings, lambda: b"".join(p.read_bytes() for p in sorted(tmp_path.glob("events.sqlite*")))
    server = request.getfixturevalue("redis_server")
    with redis.Redis.from_url(server.url) as client:
        client.flushall()
    settings = Settings.load(overrides={"artifacts_dir": str(catalog_artifacts),
                                        "store": {"backend": "redis", "redis_url": server.url}})
    return settings, lambda: redis_bytes(server.url) + b"".join(
        p.read_bytes() for p in sorted(Path(server.directory).rglob("*.aof*")) if p.is_file())


def redis_bytes(url: str) -> bytes:
    """Every key and every value (of any type) in the database, as bytes."""
    chunks = []
    with redis.Redis.from_url(url) as client:
        for key in client.scan_iter(count=1000):
            kind = client.type(key)
            value = {b"string": lambda: [client.get(key)], b"list": lambda: client.lrange(key, 0, -1),
                     b"zset": lambda: client.zrange(key, 0, -1), b"set": lambda: list(client.smembers(key)),
                     b"hash": lambda: [b for kv in client.hgetall(key).items() for b in kv]}[kind]()
            chunks += [key, *value]
    return b"\n".join(chunks)


def ingest_raw(settings: Settings, events: list[Event]) -> int:
    """Ingest as the API does (pseudonymised by pipeline.ingest), without a catalogue or encoder."""
    store = open_store(settings.store)
    try:
        return ingest(store, events, lambda user_id: pseudonymize(user_id, settings.privacy.pseudonym_key)).stored
    finally:
        store.close()


def shopping(user_id: str, now: float, request_id: str | None = None) -> list[Event]:
    return [Event(user_id=user_id, type="search", query="shampoo for dry hair", timestamp=now - 30, session_id="s1"),
            Event(user_id=user_id, type="click", item_id="B0001", timestamp=now - 20, session_id="s1",
                  request_id=request_id),
            Event(user_id=user_id, type="purchase", item_id="B0001", timestamp=now - 10, event_id="order-1")]


@pytest.fixture
def recommender(backend):
    rec = Recommender.open(backend[0], encoder=HashEncoder())
    yield rec
    rec.close()


def test_no_raw_shopper_id_at_rest(backend, recommender, tmp_path):
    settings, at_rest = backend
    now = time.time()
    for user_id in SHOPPERS[:2]:
        recommender.ingest(shopping(user_id, now))
        answer = recommender.recommend(RecommendRequest(user_id=user_id, query="shampoo", k=5))
        recommender.ingest([Event(user_id=user_id, type="click", item_id=answer.items[0].item_id,
                                  request_id=answer.request_id, timestamp=now)])
        recommender.profile(user_id)
    lines = tmp_path / "import.jsonl"
    lines.write_text("\n".join(e.model_dump_json(exclude={"event_id"}) for e in shopping(SHOPPERS[2], now)))
    assert import_events(settings, lines, progress=False)["stored"] == 3

    data = at_rest()
    key = settings.privacy.pseudonym_key
    for user_id in SHOPPERS:
        assert user_id.encode() not in data
        assert pseudonymize(user_id, key).encode() in data  # the store does hold this shopper, keyed
    # nor recognisable parts of them (digits alone could occur in timestamps, so the phone number keeps its prefix)
    assert b"alice" not in data and b"bob.smith" not in data and b"170 1234567" not in data


def test_imported_content_ids_are_not_hashes_of_raw_ids(backend, tmp_path):
    """A content-hash event id computed over the raw id would let anyone who guesses the id confirm it."""
    settings, at_rest = backend
    events = shopping("alice@example.com", time.time())[:2]  # ids derived from content, none chosen by a client
    lines = tmp_path / "import.jsonl"
    lines.write_text("\n".join(e.model_dump_json(exclude={"event_id"}) for e in events))
    import_events(settings, lines, progress=False)
    data = at_rest()
    assert all(e.event_id.encode() not in data for e in events)


def test_ingested_content_ids_are_not_hashes_of_raw_ids(backend):
    settings, at_rest = backend
    events = shopping("alice@example.com", time.time())[:2]
    ingest_raw(settings, events)
    data = at_rest()
    assert all(e.event_id.encode() not in data for e in events)


def test_events_profiles_and_log_expire_after_retention(backend):
    settings, _ = backend
    short = settings.model_copy(update={"store": settings.store.model_copy(update={"retention_days": 2 / 86_400})})
    rec = Recommender.open(short, encoder=HashEncoder())
    try:
        now = time.time()
        rec.ingest(shopping("alice@example.com", now))
        rec.recommend(RecommendRequest(user_id="alice@example.com", query="shampoo", k=3))
        assert rec.store.get_profile(rec.key_of("alice@example.com")) is not None
        assert len(list(rec.store.clickthrough())) == 3
        # an event already older than retention is not stored at all
        assert rec.ingest([Event(user_id="bob", type="view", item_id="B0002", timestamp=now - 60)]).stored == 0
        time.sleep(2.2)
        key = rec.key_of("alice@example.com")
        assert rec.store.recent_events(key, 100) == []
        assert rec.store.get_profile(key) is None
        assert list(rec.store.clickthrough()) == []
        rec.ingest([Event(user_id="carol", type="view", item_id="B0002")])  # a write purges what expired
        assert rec.store.count_events() == 1
    finally:
        rec.close()


def test_erase_removes_events_profile_and_clickthrough(backend, recommender, tmp_path):
    settings, _ = backend
    now = time.time()
    for user_id in ("alice@example.com", "bob"):
        answer = recommender.recommend(RecommendRequest(user_id=user_id, query="red lipstick", k=4))
        recommender.ingest(shopping(user_id, now, request_id=answer.request_id))
        recommender.ingest([Event(user_id=user_id, type="click", item_id=answer.items[1].item_id,
                                  request_id=answer.request_id, timestamp=now - 5),
                            Event(user_id=user_id, type="add_to_cart", item_id=answer.items[1].item_id,
                                  request_id=answer.request_id, timestamp=now)])
        recommender.profile(user_id)
    alice, bob = recommender.key_of("alice@example.com"), recommender.key_of("bob")
    assert export_clickthrough(settings, tmp_path / "before.parquet") == 8
    log = pd.read_parquet(tmp_path / "before.parquet").sort_values(["user_key", "position"])
    assert set(log["user_key"]) == {alice, bob} and set(log["query"]) == {"red lipstick"}
    assert log["position"].tolist() == [0, 1, 2, 3] * 2
    assert log["label"].tolist() == [0, 2, 0, 0] * 2 and log["clicked"].tolist() == [False, True, False, False] * 2
    assert [list(e) for e in log["events"][log["position"] == 1]] == [["click", "add_to_cart"]] * 2
    features = [c for c in log.columns if c.startswith("feature_")]
    assert features and log[features].dtypes.eq("float64").all() and log[features].notna().all().all()

    assert recommender.erase("alice@example.com").erased_events == 5
    assert recommender.store.recent_events(alice, 100) == [] and recommender.store.get_profile(alice) is None
    assert {row["user_key"] for row in recommender.store.clickthrough()} == {bob}
    assert export_clickthrough(settings, tmp_path / "after.parquet") == 4
    assert len(recommender.store.recent_events(bob, 100)) == 5 and recommender.store.get_profile(bob) is not None
    assert set(pd.read_parquet(tmp_path / "after.parquet")["user_key"]) == {bob}
    recommender.erase("bob")
    assert export_clickthrough(settings, tmp_path / "empty.parquet") == 0
    assert list(pd.read_parquet(tmp_path / "empty.parquet").columns)[:3] == ["request_id", "user_key", "query"]
    if settings.store.backend == "redis":
        assert alice.encode() not in redis_bytes(settings.store.redis_url)


def test_aggregate_stats_exact_then_with_laplace_noise(tmp_path):
    settings = Settings.load(overrides={"store": {"sqlite_path": str(tmp_path / "s.sqlite"),
                                                  "max_events_per_user": 50}})
    now = time.time()
    events = [Event(user_id=f"shopper-{n % 7}", type=("view", "click", "purchase")[n % 3], item_id=f"i{n % 4}",
                    timestamp=now - n) for n in range(120)]
    ingest_raw(settings, events)
    exact = aggregate_stats(settings)
    true = {(e.item_id, e.type.value) for e in events}
    assert len(exact) == 4 and exact.attrs == {"epsilon": None, "sensitivity": 50, "scale": None}
    for item, kind in true:
        assert exact.set_index("item_id").at[item, kind] == sum(e.item_id == item and e.type.value == kind
                                                                 for e in events)
    assert exact[["view", "click", "add_to_cart", "purchase", "dwell"]].to_numpy().sum() == 120

    epsilon, draws = 2.0, 300
    scale = 50 / epsilon  # sensitivity = max_events_per_user, as documented in shopsense.export
    domain = ["i0", "i1", "i2", "i3", "never-seen"]
    truth = exact.set_index("item_id").reindex(domain, fill_value=0).to_numpy(dtype=float)
    errors = []
    for seed in range(draws):
        noisy = aggregate_stats(settings, epsilon=epsilon, items=domain, seed=seed)
        assert noisy.attrs["scale"] == scale and list(noisy["item_id"]) == domain
        errors.append(noisy.set_index("item_id").to_numpy() - truth)
    errors = np.stack(errors).ravel()  # 300 draws x 25 cells
    assert np.all(errors != 0)
    # Laplace(0, b): mean 0, mean |error| b, standard deviation sqrt(2) b
    assert abs(errors.mean()) < 4 * np.sqrt(2) * scale / np.sqrt(len(errors))
    assert np.mean(np.abs(errors)) == pytest.approx(scale, rel=0.05)
    assert errors.std() == pytest.approx(np.sqrt(2) * scale, rel=0.06)
    assert aggregate_stats(settings, epsilon=epsilon, seed=1).equals(aggregate_stats(settings, epsilon=epsilon, seed=1))
    with pytest.raises(ValueError, match="epsilon must be positive"):
        aggregate_stats(settings, epsilon=0)


def test_aggregate_stats_read_redis_too(redis_server):
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    settings = Settings.load(overrides={"store": {"backend": "redis", "redis_url": redis_server.url}})
    ingest_raw(settings, [Event(user_id="a", type="view", item_id="x", timestamp=time.time() - 5),
                Event(user_id="b", type="view", item_id="x"), Event(user_id="b", type="dwell", item_id="y",
                                                                    dwell_seconds=3),
                Event(user_id="b", type="search", query="no item")])
    stats = aggregate_stats(settings).set_index("item_id")
    assert json.loads(stats[["view", "dwell"]].to_json()) == {"view": {"x": 2, "y": 0}, "dwell": {"x": 0, "y": 1}}
