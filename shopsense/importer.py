"""Bulk import of shopper events from files: OTTO sessions, Amazon-reviews interactions, shopsense's own events.

    from shopsense.importer import import_events
    counts = import_events(Settings.load(), "../shared/data/otto/sessions.jsonl")   # format recognised
    shopsense events import PATH [--format auto|otto|amazon|events]                 # the CLI wraps it

Formats (JSONL, parquet or CSV by the file suffix; `fmt="auto"` recognises the layout):

    otto     JSONL lines {"session": 12, "events": [{"aid": 1517085, "ts": 1659304800025, "type": "clicks"}]},
             or a table with columns session, aid, ts, type (OTTO's parquet layout). ts is in milliseconds;
             clicks/carts/orders become click/add_to_cart/purchase; the shopper is "otto-<session>" and the
             session id is the session number, as in shopsense.datasets.otto_sessions.
    amazon   a table with columns user_id, item_id, timestamp (Unix seconds); a review is a purchase.
             A directory holding interactions.parquet (../shared/data/amazon-reviews/*) is read as that file.
    events   shopsense events, one per JSONL line or table row, with the fields POST /v1/events takes.

Every record is validated by the same `Event` schema as the HTTP API, then pseudonymised and written
through the configured store by `pipeline.ingest`, `batch_size` events per atomic write. A record
must carry its timestamp: a record without an event_id (OTTO and Amazon records never have one)
gets the content-hash id `Event` derives, computed over the pseudonymised shopper so that no hash
of a raw id is stored (and Redis need not store the id at all); importing a file again (or again
after a failure) therefore stores nothing twice. An invalid record stops the import with its
location (`file:line`, or `file row N`); the batches written before it stay stored, and running
the import again after fixing the file completes it.

Historical sets are old (OTTO 2022, Amazon 2014): events older than `store.retention_days` are
counted as `expired` and not written, so raise the retention to import them for experiments.
Returned counts: read, stored (new), skipped (already stored, or beyond the per-shopper cap),
expired, shoppers (distinct raw ids read), seconds, events_per_s.
"""
from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from pydantic import ValidationError
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from shopsense.config import Settings
from shopsense.datasets import OTTO_TYPES
from shopsense.pipeline import ingest
from shopsense.privacy import pseudonymize
from shopsense.schemas import Event, EventType
from shopsense.stores import open_store

FORMATS = ("auto", "otto", "amazon", "events")
JSONL_SUFFIXES = {".jsonl", ".json", ".ndjson"}
TABLE_SUFFIXES = {".parquet", ".csv"}
OTTO_COLUMNS = {"session", "aid", "ts", "type"}
AMAZON_COLUMNS = {"user_id", "item_id", "timestamp"}
ID_FIELDS = ("event_id", "user_id", "item_id", "session_id", "request_id")
TABLE_BATCH_ROWS = 65_536


class InvalidRecord(ValueError):
    """A record that is not a valid event; the message starts with its location."""


class Reader:
    """Raw records of one file as (location, dict), with progress in `unit`s (bytes or rows) out of `total`."""

    def __init__(self, path: Path):
        self.path = path
        self.done = 0
        if path.suffix in JSONL_SUFFIXES:
            self.unit, self.total = "bytes", path.stat().st_size
        elif path.suffix == ".parquet":
            self.unit, self.total = "rows", pq.ParquetFile(path).metadata.num_rows
        elif path.suffix == ".csv":
            self.unit, self.total = "rows", _count_lines(path) - 1
        else:
            raise ValueError(f"{path}: unknown file type {path.suffix!r} (expected .jsonl, .parquet or .csv)")

    def columns(self) -> set[str]:
        """Column names of a table, or the keys of the first JSONL record."""
        if self.path.suffix == ".parquet":
            return set(pq.ParquetFile(self.path).schema_arrow.names)
        if self.path.suffix == ".csv":
            return set(_csv_reader(self.path).schema.names)
        with open(self.path, "rb") as lines:
            first = next((line for line in lines if line.strip()), b"{}")
        try:
            return set(json.loads(first))
        except (json.JSONDecodeError, TypeError):
            raise InvalidRecord(f"{self.path}:1: not a JSON object") from None

    def __iter__(self) -> Iterator[tuple[str, dict]]:
        if self.path.suffix in JSONL_SUFFIXES:
            yield from self._lines()
        else:
            yield from self._rows()

    def _lines(self) -> Iterator[tuple[str, dict]]:
        with open(self.path, "rb") as lines:  # binary: tell() works while iterating, for progress
            for number, line in enumerate(lines, 1):
                self.done = lines.tell()
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InvalidRecord(f"{self.path}:{number}: not valid JSON ({exc})") from None
                if not isinstance(record, dict):
                    raise InvalidRecord(f"{self.path}:{number}: not a JSON object")
                yield f"{self.path}:{number}", record

    def _rows(self) -> Iterator[tuple[str, dict]]:
        batches = (pq.ParquetFile(self.path).iter_batches(TABLE_BATCH_ROWS) if self.path.suffix == ".parquet"
                   else _csv_reader(self.path))
        row = 0
        for batch in batches:
            for record in batch.to_pylist():
                row += 1
                self.done = row
                yield f"{self.path} row {row}", record


def _csv_reader(path: Path) -> pa_csv.CSVStreamingReader:
    # Ids stay strings ("007" is not 7), timestamps too (numbers and ISO strings may mix; see _table_timestamp),
    # and an empty cell is a missing value.
    as_text = (*ID_FIELDS, "session", "aid", "timestamp")
    convert = pa_csv.ConvertOptions(column_types={name: pa.string() for name in as_text}, strings_can_be_null=True)
    return pa_csv.open_csv(path, convert_options=convert)


def _count_lines(path: Path) -> int:
    with open(path, "rb") as data:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: data.read(1 << 20), b""))


def detect_format(reader: Reader) -> str:
    columns = reader.columns()
    if {"session", "events"} <= columns or OTTO_COLUMNS <= columns:
        return "otto"
    if "type" in columns:
        return "events"
    if AMAZON_COLUMNS <= columns:
        return "amazon"
    raise ValueError(f"{reader.path}: cannot tell the format from the fields {sorted(columns)}; pass fmt=")


def _present(record: dict) -> dict:
    """Drop missing values (None, and NaN from float columns), so Event's defaults apply."""
    return {k: v for k, v in record.items() if v is not None and not (isinstance(v, float) and math.isnan(v))}


def _otto_event(session, event: dict) -> dict:
    return {"user_id": f"otto-{session}", "session_id": str(session), "type": OTTO_TYPES[event["type"]],
            "item_id": str(event["aid"]), "timestamp": event["ts"] / 1000.0}


def _event_fields(fmt: str, record: dict, tabular: bool) -> list[dict]:
    """The Event fields of one raw record (an OTTO JSONL line holds a whole session)."""
    if fmt == "otto":
        if "events" in record:
            return [_otto_event(record["session"], event) for event in record["events"]]
        return [_otto_event(record["session"], record)]
    if fmt == "amazon":
        return [{"user_id": str(record["user_id"]), "item_id": str(record["item_id"]), "type": EventType.purchase,
                 "timestamp": float(record["timestamp"])}]
    fields = _present(record)
    if tabular:  # tables may store ids as numbers, and times as numbers in text or as datetimes
        fields.update({name: str(fields[name]) for name in ID_FIELDS if name in fields})
        if "timestamp" in fields:
            fields["timestamp"] = _table_timestamp(fields["timestamp"])
    return [fields]


def _table_timestamp(value):
    """Unix seconds from a table cell: a number, a number as text, or a datetime; an ISO string stays for Event."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def read_events(path: str | Path, fmt: str = "auto") -> tuple[Reader, Iterator[Event]]:
    """The file's reader (for progress) and its events, validated, raw shopper ids kept (pipeline.ingest
    pseudonymises them); raises InvalidRecord at the first bad record."""
    path = Path(path)
    if path.is_dir():
        path = path / "interactions.parquet"
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    reader = Reader(path)
    fmt = detect_format(reader) if fmt == "auto" else fmt
    tabular = path.suffix in TABLE_SUFFIXES

    def events() -> Iterator[Event]:
        for where, record in reader:
            try:
                for fields in _event_fields(fmt, record, tabular):
                    if "timestamp" not in fields:
                        raise ValueError("timestamp is required in an import (re-imports are recognised by it)")
                    event = Event.model_validate(fields)
                    yield event
            except ValidationError as exc:
                problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'event'}: {e['msg']}" for e in exc.errors())
                raise InvalidRecord(f"{where}: {problems}") from None
            except (KeyError, TypeError, ValueError) as exc:
                what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
                raise InvalidRecord(f"{where}: not a {fmt} record ({what})") from None

    return reader, events()


def import_events(settings: Settings, path: str | Path, fmt: str = "auto", batch_size: int = 2000,
                  progress: bool = True) -> dict:
    """Import every event of `path` into the configured store; see the module docstring for formats and counts."""
    key_of: Callable[[str], str] = lru_cache(maxsize=100_000)(
        lambda user_id: pseudonymize(user_id, settings.privacy.pseudonym_key))
    reader, events = read_events(path, fmt)
    cutoff = time.time() - settings.store.retention_days * 86_400
    counts = {"read": 0, "stored": 0, "expired": 0}
    shoppers: set[str] = set()
    columns = (TextColumn("[bold]import[/] {task.description}"), BarColumn(), TaskProgressColumn(),
               TextColumn("{task.fields[read]:,} events, {task.fields[stored]:,} new"), TimeElapsedColumn(),
               TimeRemainingColumn())
    store = open_store(settings.store)
    start = time.perf_counter()
    try:
        with Progress(*columns, disable=not progress) as bar:
            task = bar.add_task(reader.path.name, total=reader.total, read=0, stored=0)

            def write(batch: list[Event]) -> None:
                counts["stored"] += ingest(store, batch, key_of).stored
                bar.update(task, completed=reader.done, read=counts["read"], stored=counts["stored"])

            batch: list[Event] = []
            for event in events:
                counts["read"] += 1
                shoppers.add(event.user_id)
                if event.timestamp < cutoff:  # the store would drop it at once
                    counts["expired"] += 1
                    continue
                batch.append(event)
                if len(batch) >= batch_size:
                    write(batch)
                    batch = []
            if batch:
                write(batch)
            bar.update(task, completed=reader.total, read=counts["read"], stored=counts["stored"])
    finally:
        store.close()
    seconds = time.perf_counter() - start
    skipped = counts["read"] - counts["expired"] - counts["stored"]
    return {**counts, "skipped": skipped, "shoppers": len(shoppers), "seconds": round(seconds, 3),
            "events_per_s": round(counts["read"] / seconds, 1) if seconds > 0 else 0.0}
