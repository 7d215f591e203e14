"""Bulk-import benchmark: events/s into SQLite and into Redis, and bytes per shopper in Redis afterwards.

    .venv/bin/python -m train.bench_ingest [--json PATH]        # or run(json_path=None) -> dict (make bench)

Imports the whole Amazon beauty set (../shared/data/amazon-reviews/amazon2014-beauty, 198k events) when
present, else the bundled demo subset, with shopsense.importer.import_events: read, validate,
pseudonymise and write in batches, end to end. Each store is fresh and durable as configured for
production: SQLite with synchronous=FULL, and a throwaway redis-server with an append-only file fsynced
on every write (appendfsync always). Bytes per shopper = MEMORY USAGE summed over every key / shoppers.
The machine is shared, so wall-clock rates are noisy; events per CPU-second of the importing process
are reported beside them. Targets: 5,000 events/s, 1 KiB per shopper.
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import redis
from rich.console import Console

from shopsense.config import Settings
from shopsense.datasets import DEMO_DATA, SHARED_DATA
from shopsense.importer import import_events
from shopsense.stores.redis_server import RedisServer

BEAUTY = SHARED_DATA / "amazon-reviews" / "amazon2014-beauty"
CENTURY = 36_500.0  # retention in days that keeps 2014 reviews
console = Console()


def redis_bytes(url: str) -> int:
    with redis.Redis.from_url(url) as client:
        return sum(client.memory_usage(key, samples=0) for key in client.scan_iter(count=1000))


def timed_import(settings: Settings, data: Path) -> tuple[dict, float]:
    """import_events' counts, and the CPU seconds this process spent (redis-server's own not included)."""
    start = time.process_time()
    counts = import_events(settings, data, fmt="amazon")
    return counts, time.process_time() - start


def run(json_path: str | Path | None = None) -> dict:
    data = BEAUTY if (BEAUTY / "interactions.parquet").exists() else DEMO_DATA
    result: dict = {"dataset": str(data)}
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        sqlite = Settings.load(overrides={"store": {"backend": "sqlite", "sqlite_path": f"{tmp}/events.sqlite",
                                                    "retention_days": CENTURY}})
        counts, cpu_s = timed_import(sqlite, data)
        result.update(events=counts["read"], shoppers=counts["shoppers"], sqlite_events_per_s=counts["events_per_s"],
                      sqlite_events_per_cpu_s=round(counts["read"] / cpu_s),
                      sqlite_bytes_per_shopper=round(Path(f"{tmp}/events.sqlite").stat().st_size / counts["shoppers"]))
        if shutil.which("redis-server") is None:
            result["redis"] = "skipped: redis-server not installed"
        else:
            Path(f"{tmp}/redis").mkdir()
            server = RedisServer(Path(f"{tmp}/redis"))
            server.start()
            try:
                settings = Settings.load(overrides={"store": {"backend": "redis", "redis_url": server.url,
                                                              "retention_days": CENTURY}})
                counts, cpu_s = timed_import(settings, data)
                result.update(redis_events_per_s=counts["events_per_s"],
                              redis_events_per_cpu_s=round(counts["read"] / cpu_s),
                              redis_bytes_per_shopper=round(redis_bytes(server.url) / counts["shoppers"], 1))
            finally:
                server.stop()
    console.print_json(data=result)
    if json_path:
        Path(json_path).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the figures to this file")
    run(parser.parse_args().json)
