"""Bulk import (shopsense.importer) of real data into SQLite and a real redis-server: the OTTO fixture in
../shared/data and the bundled Amazon beauty demo set; importing twice stores nothing new.

    .venv/bin/python -m pytest tests/test_importer.py -q
"""
import json
from collections import Counter

import pandas as pd
import pytest
import redis

from shopsense.config import Settings
from shopsense.datasets import DEMO_DATA, SHARED_DATA, otto_sessions
from shopsense.importer import InvalidRecord, import_events
from shopsense.privacy import pseudonymize
from shopsense.stores import open_store

OTTO = SHARED_DATA / "otto" / "sessions.jsonl"
BEAUTY = DEMO_DATA / "interactions.parquet"
CENTURY = 36_500.0  # retention in days that keeps the historical sets (OTTO 2022, Amazon 2014)


@pytest.fixture(params=["sqlite", "redis"])
def settings(request, tmp_path):
    """Settings for a fresh store of each backend, keeping history; the Redis server is flushed first."""
    if request.param == "redis":
        url = request.getfixturevalue("redis_server").url
        with redis.Redis.from_url(url) as client:
            client.flushall()
        where = {"backend": "redis", "redis_url": url}
    else:
        where = {"backend": "sqlite", "sqlite_path": str(tmp_path / "events.sqlite")}
    return Settings.load(overrides={"store": {**where, "retention_days": CENTURY}})


@pytest.fixture
def sqlite_settings(tmp_path):
    return Settings.load(overrides={"store": {"sqlite_path": str(tmp_path / "events.sqlite"),
                                              "retention_days": CENTURY}})


def stored(settings, user_id: str, limit: int = 1000):
    store = open_store(settings.store)
    try:
        return store.recent_events(pseudonymize(user_id, settings.privacy.pseudonym_key), limit)
    finally:
        store.close()


def count(settings) -> int:
    store = open_store(settings.store)
    try:
        return store.count_events()
    finally:
        store.close()


@pytest.mark.skipif(not OTTO.exists(), reason=f"the shared OTTO fixture is absent ({OTTO}); it lives in ../shared/data")
def test_otto_sessions_import_once(settings):
    expected = list(otto_sessions(OTTO))
    cap = settings.store.max_events_per_user
    per_shopper = Counter(e.user_id for e in expected)
    keeps = sum(min(n, cap) for n in per_shopper.values())  # three sessions are longer than the cap

    first = import_events(settings, OTTO, progress=False)
    assert (first["read"], first["stored"], first["skipped"], first["expired"]) == (862, keeps, 862 - keeps, 0)
    assert first["shoppers"] == len(per_shopper) == 20
    assert count(settings) == keeps

    again = import_events(settings, OTTO, fmt="otto", progress=False)
    assert (again["read"], again["stored"], again["skipped"]) == (862, 0, 862)
    assert count(settings) == keeps

    # Each shopper holds the newest events of the file, field for field (of equal times, the later line first).
    for user_id in ("otto-0", "otto-5", "otto-19"):
        mine = [(n, e) for n, e in enumerate(expected) if e.user_id == user_id]
        newest = [e for _, e in sorted(mine, key=lambda ne: (-ne[1].timestamp, -ne[0]))][:cap]
        got = stored(settings, user_id)
        assert [(e.timestamp, e.type, e.item_id, e.session_id) for e in got] == \
            [(e.timestamp, e.type, e.item_id, e.session_id) for e in newest]


def test_beauty_demo_import_once(settings):
    interactions = pd.read_parquet(BEAUTY)
    first = import_events(settings, BEAUTY, progress=False)
    assert (first["read"], first["stored"], first["skipped"]) == (len(interactions), len(interactions), 0)
    assert first["shoppers"] == interactions["user_id"].nunique()
    assert first["events_per_s"] > 0

    assert import_events(settings, DEMO_DATA, fmt="amazon", progress=False)["stored"] == 0  # the directory form
    assert count(settings) == len(interactions)

    user = interactions["user_id"].iloc[0]
    mine = interactions[interactions["user_id"] == user]
    got = stored(settings, str(user))
    assert sorted((e.item_id, e.timestamp) for e in got) == sorted(zip(mine["item_id"].astype(str), mine["timestamp"]))
    assert {e.type.value for e in got} == {"purchase"}


def test_historical_events_beyond_retention_are_counted_not_stored(tmp_path):
    settings = Settings.load(overrides={"store": {"sqlite_path": str(tmp_path / "s.sqlite"), "retention_days": 365}})
    result = import_events(settings, BEAUTY, progress=False)  # 2014 reviews, a year's retention
    assert result["expired"] == result["read"] > 0 and result["stored"] == 0
    assert count(settings) == 0


def test_own_event_jsonl_and_csv_tables(sqlite_settings, tmp_path):
    events = [{"event_id": "e1", "user_id": "ann", "type": "search", "query": "red lipstick", "timestamp": 1.7e9},
              {"user_id": "ann", "type": "dwell", "item_id": "B01", "dwell_seconds": 12.5, "timestamp": 1.7e9 + 5,
               "session_id": "s1", "request_id": "r1"},
              {"user_id": "ann", "type": "purchase", "item_id": "B01", "timestamp": "2023-11-14T22:14:00Z"}]
    jsonl = tmp_path / "events.jsonl"
    jsonl.write_text("\n".join(json.dumps(e) for e in events) + "\n\n")
    assert import_events(sqlite_settings, jsonl, progress=False)["stored"] == 3
    got = stored(sqlite_settings, "ann")
    assert [(e.type.value, e.item_id, e.query, e.dwell_seconds, e.request_id) for e in got] == [
        ("purchase", "B01", None, None, None), ("dwell", "B01", None, 12.5, "r1"),
        ("search", None, "red lipstick", None, None)]
    assert got[-1].event_id == "e1"  # a client's event id is kept

    # the same events as CSV and parquet tables (empty cells are missing values; times numeric or ISO)
    pd.DataFrame(events).to_csv(tmp_path / "events.csv", index=False)
    assert import_events(sqlite_settings, tmp_path / "events.csv", progress=False)["stored"] == 0
    frame = pd.DataFrame(events[:2])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="s", utc=True)
    frame.to_parquet(tmp_path / "events.parquet")
    assert import_events(sqlite_settings, tmp_path / "events.parquet", progress=False)["stored"] == 0
    # Amazon rows whose ids look like numbers
    amazon = tmp_path / "reviews.csv"
    amazon.write_text("user_id,item_id,timestamp\n007,0042,1366416000\n007,0043,1366416000\n")
    assert import_events(sqlite_settings, amazon, progress=False)["stored"] == 2
    assert {e.item_id for e in stored(sqlite_settings, "007")} == {"0042", "0043"}


def test_otto_parquet_layout(sqlite_settings, tmp_path):
    rows = pd.DataFrame({"session": [7, 7], "aid": [11, 12], "ts": [1659304800025, 1659304900025],
                         "type": ["clicks", "orders"]})
    rows.to_parquet(tmp_path / "otto.parquet")
    assert import_events(sqlite_settings, tmp_path / "otto.parquet", progress=False)["stored"] == 2
    got = stored(sqlite_settings, "otto-7")
    assert [(e.type.value, e.item_id, e.session_id, e.timestamp) for e in got] == [
        ("purchase", "12", "7", 1659304900.025), ("click", "11", "7", 1659304800.025)]


def test_a_bad_record_stops_the_import_naming_it(sqlite_settings, tmp_path):
    lines = [{"user_id": "ann", "type": "click", "item_id": "B01", "timestamp": 1.7e9},
             {"user_id": "ann", "type": "click", "item_id": "B02", "timestamp": 1.7e9 + 1},
             {"user_id": "ann", "type": "teleport", "item_id": "B03", "timestamp": 1.7e9 + 2}]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(json.dumps(line) for line in lines))
    with pytest.raises(InvalidRecord, match=r"bad\.jsonl:3: type: Input should be"):
        import_events(sqlite_settings, bad, progress=False)
    assert count(sqlite_settings) == 0  # the failing batch is written as a whole or not at all

    no_time = tmp_path / "no_time.jsonl"
    no_time.write_text(json.dumps({"user_id": "ann", "type": "view", "item_id": "B01"}))
    with pytest.raises(InvalidRecord, match=r"no_time\.jsonl:1: .*timestamp is required"):
        import_events(sqlite_settings, no_time, progress=False)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"session": 1, "events": [{"aid": 5, "ts": 1, "type": "clicks"}]}\n{"session": 2, "ev')
    with pytest.raises(InvalidRecord, match=r"broken\.jsonl:2: not valid JSON"):
        import_events(sqlite_settings, broken, progress=False)
    wrong_kind = tmp_path / "sessions.jsonl"
    wrong_kind.write_text('{"session": 1, "events": [{"aid": 5, "ts": 1, "type": "likes"}]}\n')
    with pytest.raises(InvalidRecord, match=r"sessions\.jsonl:1: not a otto record \(missing field 'likes'\)"):
        import_events(sqlite_settings, wrong_kind, progress=False)


def test_unknown_formats_are_refused(sqlite_settings, tmp_path):
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(ValueError, match="unknown file type"):
        import_events(sqlite_settings, tmp_path / "x.txt", progress=False)
    with pytest.raises(ValueError, match="unknown format"):
        import_events(sqlite_settings, BEAUTY, fmt="xml", progress=False)
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "odd.parquet")
    with pytest.raises(ValueError, match="cannot tell the format"):
        import_events(sqlite_settings, tmp_path / "odd.parquet", progress=False)
