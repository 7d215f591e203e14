"""The store suite: every test runs against each backend (SQLite file, real redis-server).

    .venv/bin/python -m pytest tests/test_stores.py -q

The Redis runs share one session-scoped server (tests/redis_server.py), flushed before each test.
"""
from __future__ import annotations

import functools
import random
import sqlite3
import threading
import time

import pytest
import redis

from shopsense.config import StoreSettings
from shopsense.schemas import Event
from shopsense.stores import open_store

DAY = 86_400.0


@pytest.fixture
def open_backend(request, tmp_path):
    """open_backend(backend, **settings) opens a store; every store of one backend in a test shares one
    fresh database (a SQLite file under tmp_path, or the Redis server flushed first). Closed after the test."""
    opened = []

    @functools.cache
    def fresh_redis_url() -> str:
        url = request.getfixturevalue("redis_server").url
        with redis.Redis.from_url(url) as client:
            client.flushall()
        return url

    def open_(backend, **overrides):
        if backend == "redis":
            where = {"redis_url": fresh_redis_url()}
        else:
            where = {"sqlite_path": str(tmp_path / "store.sqlite")}
        opened.append(open_store(StoreSettings(backend=backend, **where, **overrides)))
        return opened[-1]

    yield open_
    for store in opened:
        store.close()


@pytest.fixture(params=["sqlite", "redis"])
def open_test_store(request, open_backend):
    return functools.partial(open_backend, request.param)


@pytest.fixture
def store(open_test_store):
    return open_test_store()


def event(user="u1", type="click", item="B0001", age_s=60.0, **fields) -> Event:
    """An event `age_s` seconds old (recent enough for any retention used here)."""
    return Event(user_id=user, type=type, item_id=item, timestamp=time.time() - age_s, **fields)


def ids(events: list[Event]) -> list[str]:
    return [e.event_id for e in events]


def test_events_round_trip_with_every_field(store):
    events = [
        event(type="view", session_id="s1"),
        event(type="dwell", dwell_seconds=12.5, age_s=50),
        Event(user_id="u1", type="search", query="cordless drill 20v dewalt", timestamp=time.time() - 40),
        event(type="click", request_id="req-1", event_id="client-chosen-id", age_s=30),
        event(type="purchase", item="B0002", session_id="s1", age_s=20),
        event(type="add_to_cart", query="dämmstoff 100 mm", age_s=10),
    ]
    assert store.add_events(events) == len(events)
    assert store.recent_events("u1", 10) == events[::-1]


def test_retry_is_not_counted_twice(store):
    first = [event(item="A", age_s=30), event(item="B", age_s=20), event(item="C", event_id="e-3", age_s=10)]
    assert store.add_events(first) == 3
    assert store.add_events(first) == 0
    # A retry is recognised by event_id even if the client changed the payload.
    changed = event(item="Z", event_id="e-3", age_s=5)
    assert store.add_events([first[0], changed, event(item="D", age_s=1)]) == 1
    assert store.count_events() == 4
    assert [e.item_id for e in store.recent_events("u1", 10)] == ["D", "C", "B", "A"]


def test_duplicates_inside_one_batch_count_once(store):
    click = event(item="A")
    assert store.add_events([click, click, click.model_copy(), event(item="B", event_id="x"),
                             event(item="C", event_id="x")]) == 2
    assert store.count_events() == 2


def test_event_ids_are_per_shopper(store):
    assert store.add_events([event(user="u1", event_id="1"), event(user="u2", event_id="1")]) == 2
    assert len(store.recent_events("u1", 10)) == len(store.recent_events("u2", 10)) == 1


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydantic warns when asked to serialise the poison
def test_failed_batch_writes_nothing(store):
    store.add_events([event(user="u0", item="kept")])
    # A value no backend can serialise, after a valid event of another shopper.
    poison = Event.model_construct(**{**event(user="u2").model_dump(), "item_id": object()})
    with pytest.raises(Exception):
        store.add_events([event(user="u1"), poison])
    assert store.count_events() == 1
    assert store.recent_events("u1", 10) == []


def test_redis_batch_failing_inside_the_server_writes_nothing(open_backend, redis_server):
    store = open_backend("redis")
    with redis.Redis.from_url(redis_server.url) as client:
        client.set("ss:e:u2", "not a list")  # the script's second shopper hits WRONGTYPE
    with pytest.raises(redis.ResponseError):
        store.add_events([event(user="u1"), event(user="u2")])
    assert store.recent_events("u1", 10) == []


def test_newest_first_and_later_insert_wins_ties(store):
    now = time.time()

    def at(name, seconds_ago):
        return Event(user_id="u1", type="view", item_id=name, timestamp=now - seconds_ago)

    store.add_events([at("a", 50), at("b", 10), at("c", 30)])
    store.add_events([at("d", 30)])  # ties with c, inserted later
    store.add_events([at("e", 60)])  # older than everything stored: arrives out of order
    assert [e.item_id for e in store.recent_events("u1", 10)] == ["b", "d", "c", "a", "e"]
    assert [e.item_id for e in store.recent_events("u1", 2)] == ["b", "d"]
    assert store.recent_events("u1", 0) == []
    assert store.recent_events("nobody", 10) == []


def test_each_shopper_keeps_only_the_newest_events(open_test_store):
    store = open_test_store(max_events_per_user=5)
    u1 = [event(item=f"i{n}", age_s=100 - n) for n in range(8)]
    assert store.add_events(u1[3:] + [event(user="u2", item=f"j{n}") for n in range(3)]) == 8
    assert store.add_events(u1[:3]) == 0  # all older than what is kept: dropped at once, not counted
    assert ids(store.recent_events("u1", 10)) == ids(u1[3:][::-1])
    assert len(store.recent_events("u2", 10)) == 3
    assert store.count_events() == 8
    between = event(item="late", age_s=100 - 4.5)  # arrives late, lands between kept events
    assert store.add_events([between]) == 1
    assert ids(store.recent_events("u1", 10)) == ids(u1[5:][::-1] + [between, u1[4]])


def test_events_older_than_retention_are_dropped(open_test_store):
    long_lived = open_test_store(retention_days=30)
    short_lived = open_test_store(retention_days=1)
    old, fresh = event(item="old", age_s=3 * DAY), event(item="fresh", age_s=3600)
    assert short_lived.add_events([old, fresh]) == 1  # already expired: not stored, not counted
    assert ids(short_lived.recent_events("u1", 10)) == [fresh.event_id]

    assert long_lived.add_events([old]) == 1
    assert ids(long_lived.recent_events("u1", 10)) == [fresh.event_id, old.event_id]
    assert ids(short_lived.recent_events("u1", 10)) == [fresh.event_id]  # filtered on read...
    short_lived.add_events([event(item="newer", age_s=1)])
    assert short_lived.count_events() == 2  # ...and deleted on the next write


def test_profiles_and_rankings_expire(open_test_store):
    store = open_test_store(retention_days=2 / DAY)  # two seconds
    store.put_profile("u1", {"counts": {"click": 1}})
    store.log_ranking("r-old", "u1", None, [{"item_id": "A", "position": 0, "features": {}}], time.time() - 60)
    store.log_ranking("r-new", "u1", None, [{"item_id": "A", "position": 0, "features": {}}], time.time())
    assert store.get_profile("u1") == {"counts": {"click": 1}}
    assert [row["request_id"] for row in store.clickthrough()] == ["r-new"]
    time.sleep(2.2)
    assert store.get_profile("u1") is None
    assert list(store.clickthrough()) == []


def test_profile_put_get_overwrite(store):
    assert store.get_profile("u1") is None
    store.put_profile("u1", {"counts": {"view": 2}, "top_interests": [{"kind": "query", "text": "drill"}]})
    assert store.get_profile("u1") == {"counts": {"view": 2}, "top_interests": [{"kind": "query", "text": "drill"}]}
    store.put_profile("u1", {"counts": {"view": 3}})
    assert store.get_profile("u1") == {"counts": {"view": 3}}
    assert store.get_profile("u2") is None


def _items(*item_ids):
    return [{"item_id": item_id, "position": pos, "features": {"cosine": 0.5 - pos / 10}}
            for pos, item_id in enumerate(item_ids)]


def test_clickthrough_joins_rankings_with_the_events_that_followed(store):
    served = time.time() - 100
    store.log_ranking("r1", "u1", "cordless drill", _items("A", "B", "C"), served)
    store.add_events([
        event(type="view", item="A", request_id="r1", age_s=90),
        event(type="click", item="A", request_id="r1", age_s=80),
        event(type="add_to_cart", item="A", request_id="r1", age_s=70),
        event(type="view", item="B", request_id="r1", age_s=60),
        event(type="click", item="C", age_s=50),                           # no request_id
        event(type="click", item="C", request_id="r2", age_s=40),          # another request
        event(user="u2", type="click", item="C", request_id="r1", age_s=30),  # another shopper
    ])
    rows = sorted(store.clickthrough(), key=lambda row: row["position"])
    assert [(r["item_id"], r["position"], r["events"], r["clicked"]) for r in rows] == [
        ("A", 0, ["view", "click", "add_to_cart"], True),
        ("B", 1, ["view"], False),
        ("C", 2, [], False),
    ]
    assert all(r["request_id"] == "r1" and r["user_key"] == "u1" and r["query"] == "cordless drill"
               and r["timestamp"] == served for r in rows)
    assert rows[1]["features"] == {"cosine": 0.4}


def test_ranking_log_is_idempotent(store):
    store.log_ranking("r1", "u1", "q", _items("A"), time.time())
    store.log_ranking("r1", "u1", "q", _items("A"), time.time())
    assert len(list(store.clickthrough())) == 1


def test_erase_removes_everything_of_one_shopper(store):
    store.add_events([event(user="u1", item=f"i{n}", age_s=10 + n) for n in range(3)]
                     + [event(user="u2", item=f"j{n}") for n in range(2)])
    for user in ("u1", "u2"):
        store.put_profile(user, {"user": user})
        store.log_ranking(f"r-{user}", user, None, _items("A", "B"), time.time())

    assert store.erase_user("u1") == 3
    assert store.recent_events("u1", 10) == []
    assert store.get_profile("u1") is None
    assert {row["user_key"] for row in store.clickthrough()} == {"u2"}
    assert len(store.recent_events("u2", 10)) == 2 and store.get_profile("u2") == {"user": "u2"}
    assert store.count_events() == 2
    assert store.erase_user("u1") == 0


def _write_everything(store) -> list[Event]:
    events = [event(item=f"i{n}", age_s=10 - n) for n in range(5)]
    store.add_events(events)
    store.put_profile("u1", {"counts": {"click": 5}})
    store.log_ranking("r1", "u1", "q", _items("A"), time.time())
    return events


def _assert_everything_there(store, events: list[Event]) -> None:
    assert store.recent_events("u1", 10) == events[::-1]
    assert store.get_profile("u1") == {"counts": {"click": 5}}
    assert [row["request_id"] for row in store.clickthrough()] == ["r1"]


def test_sqlite_data_survives_reopening(open_backend, tmp_path):
    store = open_backend("sqlite")
    events = _write_everything(store)
    store.close()
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    _assert_everything_there(open_backend("sqlite"), events)


def test_redis_data_survives_a_server_restart(open_backend, redis_server):
    store = open_backend("redis")
    events = _write_everything(store)
    redis_server.restart()  # SHUTDOWN, then start on the same --dir: the AOF is all there is
    _assert_everything_there(open_backend("redis"), events)


def test_concurrent_writers_count_each_event_once(open_test_store):
    events = [event(user=f"u{n % 4}", item=f"i{n}", age_s=1000 - n) for n in range(200)]
    stores = [open_test_store(), open_test_store()]  # two connections
    stored = [0, 0]
    start = threading.Barrier(len(stores))

    def write(n: int) -> None:
        mine = events[:]
        random.Random(n).shuffle(mine)
        start.wait()
        for i in range(0, len(mine), 10):
            stored[n] += stores[n].add_events(mine[i:i + 10])

    threads = [threading.Thread(target=write, args=(n,)) for n in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(stored) == len(events)
    assert stores[0].count_events() == len(events)
    for user in ("u0", "u1", "u2", "u3"):
        expected = sorted((e for e in events if e.user_id == user), key=lambda e: -e.timestamp)
        assert ids(stores[1].recent_events(user, 100)) == ids(expected)


def redis_bytes(client: redis.Redis, user_key: str) -> int:
    return sum(client.memory_usage(key, samples=0) for key in client.scan_iter(match=f"*{user_key}*"))


def test_redis_keeps_a_shopper_with_ten_events_under_one_kib(open_backend, redis_server):
    store = open_backend("redis")
    user_key = "u_" + "0123456789abcdef" * 2  # the shape of a pseudonym
    now = time.time()
    events = [Event(user_id=user_key, type=("view", "click", "add_to_cart")[n % 3], item_id=f"B0{n:08d}",
                    session_id="s-4f1c2a9e", timestamp=now - 600 + n * 37.3) for n in range(10)]
    assert store.add_events(events) == 10
    with redis.Redis.from_url(redis_server.url) as client:
        assert redis_bytes(client, user_key) <= 1024
