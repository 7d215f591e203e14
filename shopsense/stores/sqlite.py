"""SQLite event/profile store: the embedded default, one file on one machine.

    from shopsense.config import StoreSettings
    store = SQLiteStore(StoreSettings(sqlite_path="shopsense.sqlite"))
    store.add_events(events)                 # -> number of new events
    store.recent_events(user_key, limit=50)  # -> newest first

Several processes may open the same file at once: each opens its own connection,
the file is in WAL mode (readers never block the writer) and a busy timeout makes
writers queue instead of failing. Within a process the one connection is shared by
threads under a lock. A write returns only after its transaction is on disk
(synchronous=FULL), so an acknowledged event survives a crash or power loss.

An event's identity is (shopper, event_id). `add_events` counts the events of the call that
are stored now and were not before: a retry counts 0, and so does an event dropped at once
because it has expired or is older than the newest `max_events_per_user` the shopper keeps. Every write
also purges whatever has outlived `retention_days` (events by their timestamp, profiles
by their last update, rankings by when they were served); reads filter on the same bound,
so expired data is never returned even before a write purges it.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from shopsense.config import StoreSettings
from shopsense.schemas import Event
from shopsense.stores.base import Store, clickthrough_rows

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    user_key TEXT NOT NULL,
    event_id TEXT NOT NULL,
    ts REAL NOT NULL,
    type TEXT NOT NULL,
    item_id TEXT,
    query TEXT,
    dwell_seconds REAL,
    session_id TEXT,
    request_id TEXT,
    PRIMARY KEY (user_key, event_id)
);
CREATE INDEX IF NOT EXISTS events_by_user_ts ON events (user_key, ts);
CREATE INDEX IF NOT EXISTS events_by_ts ON events (ts);
CREATE TABLE IF NOT EXISTS profiles (
    user_key TEXT PRIMARY KEY,
    json TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS profiles_by_updated_at ON profiles (updated_at);
CREATE TABLE IF NOT EXISTS rankings (
    request_id TEXT PRIMARY KEY,
    user_key TEXT NOT NULL,
    query TEXT,
    ts REAL NOT NULL,
    items TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rankings_by_user ON rankings (user_key);
CREATE INDEX IF NOT EXISTS rankings_by_ts ON rankings (ts);
"""

_EVENT_COLUMNS = "event_id, ts, type, item_id, query, dwell_seconds, session_id, request_id"

# The rowid grows with every insert, so it breaks timestamp ties in favour of the later insert.
_TRIM_USER = """
DELETE FROM events WHERE user_key = ? AND rowid NOT IN (
    SELECT rowid FROM events WHERE user_key = ? ORDER BY ts DESC, rowid DESC LIMIT ?)
"""

_CLICKTHROUGH_PAGE = 500


class SQLiteStore(Store):
    def __init__(self, settings: StoreSettings):
        self._settings = settings
        Path(settings.sqlite_path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are begun explicitly (BEGIN IMMEDIATE), never implicitly.
        self._db = sqlite3.connect(settings.sqlite_path, timeout=30.0, isolation_level=None,
                                   check_same_thread=False)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def _cutoff(self) -> float:
        return time.time() - self._settings.retention_days * 86_400

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front, so two writers queue on the busy timeout
        # instead of one failing when it tries to upgrade a read transaction.
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    @staticmethod
    def _purge_expired(db: sqlite3.Connection, cutoff: float) -> None:
        db.execute("DELETE FROM events WHERE ts < ?", (cutoff,))
        db.execute("DELETE FROM profiles WHERE updated_at < ?", (cutoff,))
        db.execute("DELETE FROM rankings WHERE ts < ?", (cutoff,))

    def add_events(self, events: Sequence[Event]) -> int:
        cutoff = self._cutoff()
        rows = [(e.user_id, e.event_id, e.timestamp, e.type.value, e.item_id, e.query, e.dwell_seconds,
                 e.session_id, e.request_id) for e in events]
        with self._transaction() as db:
            # Rows inserted by this transaction get rowids above the current maximum (we hold the write lock).
            last_rowid = db.execute("SELECT COALESCE(MAX(rowid), 0) FROM events").fetchone()[0]
            db.executemany(f"INSERT OR IGNORE INTO events (user_key, {_EVENT_COLUMNS}) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            for user_key in {row[0] for row in rows}:
                db.execute(_TRIM_USER, (user_key, user_key, self._settings.max_events_per_user))
            self._purge_expired(db, cutoff)
            # Count only what is still stored: an event dropped at once (expired, or older than all the
            # shopper keeps) is not stored now and would be dropped again on a retry, so it never counts.
            return db.execute("SELECT COUNT(*) FROM events WHERE rowid > ?", (last_rowid,)).fetchone()[0]

    def recent_events(self, user_key: str, limit: int) -> list[Event]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE user_key = ? AND ts >= ? "
                "ORDER BY ts DESC, rowid DESC LIMIT ?", (user_key, self._cutoff(), max(limit, 0))).fetchall()
        return [Event(event_id=event_id, user_id=user_key, timestamp=ts, type=type_, item_id=item_id, query=query,
                      dwell_seconds=dwell, session_id=session_id, request_id=request_id)
                for event_id, ts, type_, item_id, query, dwell, session_id, request_id in rows]

    def put_profile(self, user_key: str, profile: dict) -> None:
        document = json.dumps(profile, separators=(",", ":"))
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO profiles (user_key, json, updated_at) VALUES (?, ?, ?)",
                       (user_key, document, time.time()))
            self._purge_expired(db, self._cutoff())

    def get_profile(self, user_key: str) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT json FROM profiles WHERE user_key = ? AND updated_at >= ?",
                                   (user_key, self._cutoff())).fetchone()
        return json.loads(row[0]) if row else None

    def log_ranking(self, request_id: str, user_key: str, query: str | None, items: list[dict],
                    timestamp: float) -> None:
        document = json.dumps(items, separators=(",", ":"))
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO rankings (request_id, user_key, query, ts, items) VALUES (?, ?, ?, ?, ?)",
                       (request_id, user_key, query, timestamp, document))
            self._purge_expired(db, self._cutoff())

    def clickthrough(self) -> Iterator[dict]:
        # Pages by rowid, and yields outside the lock, so a slow consumer never blocks other threads.
        last_rowid = 0
        while True:
            cutoff = self._cutoff()
            with self._lock:
                page = self._db.execute(
                    "SELECT rowid, request_id, user_key, query, ts, items FROM rankings "
                    "WHERE rowid > ? AND ts >= ? ORDER BY rowid LIMIT ?",
                    (last_rowid, cutoff, _CLICKTHROUGH_PAGE)).fetchall()
                followups = [self._db.execute(
                    "SELECT item_id, type FROM events WHERE user_key = ? AND request_id = ? AND ts >= ? "
                    "ORDER BY ts, rowid", (user_key, request_id, cutoff)).fetchall()
                    for _, request_id, user_key, _, _, _ in page]
            if not page:
                return
            for (_, request_id, user_key, query, ts, items), events in zip(page, followups):
                yield from clickthrough_rows(request_id, user_key, query, ts, json.loads(items), events)
            last_rowid = page[-1][0]

    def erase_user(self, user_key: str) -> int:
        with self._transaction() as db:
            removed = db.execute("DELETE FROM events WHERE user_key = ?", (user_key,)).rowcount
            db.execute("DELETE FROM profiles WHERE user_key = ?", (user_key,))
            db.execute("DELETE FROM rankings WHERE user_key = ?", (user_key,))
        return removed

    def count_events(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
