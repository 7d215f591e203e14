"""Acknowledged events survive crashes: a redis-server killed with SIGKILL (AOF, appendfsync always) and
restarted on the same --dir, and a process writing to SQLite killed with SIGKILL in mid-stream.

    .venv/bin/python -m pytest tests/test_durability.py -q
"""
import os
import signal
import subprocess
import sys
import threading
import time

import redis
from shopsense.stores.redis_server import RedisServer

from shopsense.config import StoreSettings
from shopsense.schemas import Event
from shopsense.stores import open_store

BATCH = 50

# Writes batches of BATCH events (one shopper per batch) until killed, printing "acked <batch>" after
# each write has returned, i.e. after the store acknowledged it.
WRITER = """
import sys, time
from shopsense.config import StoreSettings
from shopsense.schemas import Event
from shopsense.stores import open_store

store = open_store(StoreSettings(sqlite_path=sys.argv[1]))
now = time.time()
for batch in range(100_000):
    store.add_events([Event(user_id=f"u{batch}", type="view", item_id=f"i{n}", event_id=f"{batch}-{n}",
                            timestamp=now - n) for n in range(BATCH)])
    print("acked", batch, flush=True)
""".replace("BATCH", str(BATCH))


def batch_events(batch: int, now: float) -> list[Event]:
    return [Event(user_id=f"u{batch}", type="view", item_id=f"i{n}", event_id=f"{batch}-{n}", timestamp=now - n)
            for n in range(BATCH)]


def assert_all_stored(store, acknowledged: list[int]) -> None:
    for batch in acknowledged:
        assert {e.event_id for e in store.recent_events(f"u{batch}", 2 * BATCH)} == \
            {f"{batch}-{n}" for n in range(BATCH)}, f"batch {batch} was acknowledged but is not (all) there"


def test_acknowledged_events_survive_sigkill_of_redis_server(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    store = open_store(StoreSettings(backend="redis", redis_url=server.url))
    acknowledged: list[int] = []
    now = time.time()

    def write() -> None:
        batch = 0
        while True:
            try:
                store.add_events(batch_events(batch, now))
            except redis.ConnectionError:
                return
            acknowledged.append(batch)
            batch += 1

    writer = threading.Thread(target=write)
    writer.start()
    while len(acknowledged) < 20:
        time.sleep(0.01)
    with redis.Redis.from_url(server.url) as client:
        pid = client.info("server")["process_id"]
    os.kill(pid, signal.SIGKILL)  # no SHUTDOWN, no final fsync: only what each write fsynced is on disk
    writer.join(timeout=60)
    assert not writer.is_alive()
    try:
        server.stop()  # reaps the killed process
        server.start()  # same port, same --dir: replays the append-only file
        reopened = open_store(StoreSettings(backend="redis", redis_url=server.url))
        assert_all_stored(reopened, acknowledged)
        # every event there was acknowledged, or was in the one write the kill cut off
        assert len(acknowledged) * BATCH <= reopened.count_events() <= (len(acknowledged) + 1) * BATCH
        reopened.close()
    finally:
        store.close()
        server.stop()


def test_acknowledged_events_survive_sigkill_of_the_sqlite_writer(tmp_path):
    path = tmp_path / "events.sqlite"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    acknowledged = []
    try:
        for line in writer.stdout:
            acknowledged.append(int(line.split()[1]))
            if len(acknowledged) == 30:
                writer.send_signal(signal.SIGKILL)  # mid-stream: it is writing the next batch
                break
    finally:
        writer.kill()
        writer.wait()
    acknowledged += [int(line.split()[1]) for line in writer.stdout]  # acknowledged before the kill landed
    writer.stdout.close()
    assert writer.returncode == -signal.SIGKILL
    store = open_store(StoreSettings(sqlite_path=str(path)))
    try:
        assert_all_stored(store, acknowledged)
        # every event there was acknowledged, or was in the one write the kill cut off, which is all or nothing
        assert store.count_events() in (len(acknowledged) * BATCH, (len(acknowledged) + 1) * BATCH)
    finally:
        store.close()
