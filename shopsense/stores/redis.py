"""Redis event/profile store: the backend for a cluster, where every replica shares one redis-server.

    from shopsense.config import StoreSettings
    store = RedisStore(StoreSettings(backend="redis", redis_url="redis://127.0.0.1:6379/0"))

Keys (all under `ss:`; <u> is the pseudonymised shopper key):

    ss:e:<u>     list of the shopper's events as compact JSON, ascending by (timestamp, arrival),
                 at most `max_events_per_user` long
    ss:p:<u>     the profile summary (JSON string)
    ss:ri:<u>    sorted set of the shopper's logged request ids, scored by ranking time
    ss:r:<rid>   one logged ranking: {"q": query, "ts": time, "items": [...]}

Every key carries an expiry of `retention_days` (from the last write; for a ranking, from when
it was served), so a shopper who stops coming back disappears entirely; reads also filter on the
retention bound, and each write trims what has expired inside the keys it touches.

Memory: an event is stored once, as e.g. {"ts":1712345678.25,"t":"c","i":"B0001","s":"s1"} --
short field names, no null fields, the type as one letter, no user id (it is in the key), and no
event_id when it is the content hash that `Event` derives anyway. Small lists stay in Redis's
compact listpack encoding, so a shopper with ten such events costs well under 1 KiB.

Idempotency: a retried event is recognised by its event_id (or, for content-hash ids, by its
identical encoding). Like the SQLite store, `add_events` counts the events of the call that are
stored now and were not before, so an event dropped at once (expired, or older than all the
shopper keeps) never counts. The check and the write run inside one Lua script for the whole
batch, so the count is exact under concurrent writers and the batch is all-or-nothing.
"""
from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence

import redis

from shopsense.config import StoreSettings
from shopsense.schemas import Event, EventType
from shopsense.stores.base import Store, clickthrough_rows

PREFIX = "ss:"

_TYPE_CODES = {EventType.view: "v", EventType.click: "c", EventType.add_to_cart: "a",
               EventType.purchase: "p", EventType.dwell: "d", EventType.search: "s"}
_TYPES_BY_CODE = {code: event_type for event_type, code in _TYPE_CODES.items()}
_FIELDS = (("i", "item_id"), ("q", "query"), ("d", "dwell_seconds"), ("s", "session_id"), ("r", "request_id"))

# KEYS: one event list per shopper in the batch.
# ARGV: cap, cutoff, ttl, then per shopper (in KEYS order) a count n and n encoded events.
# Every list is read and every change planned before the first write, so an error (a key of the
# wrong type, bad JSON) leaves nothing written; Redis runs a script without interleaving clients.
_ADD_EVENTS = """
local cap, cutoff, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])

local function identity(event, raw)
  -- An encoding without "id" stands for its content hash, so equal encodings are the same event.
  if event.id then return 'id:' .. event.id end
  return raw
end

local function before(a, b)
  if a.ts ~= b.ts then return a.ts < b.ts end
  return a.seq < b.seq
end

local function push(key, rows, from, to)
  -- In chunks: unpack() is limited in how many values it returns.
  for i = from, to, 1000 do
    local chunk = {}
    for j = i, math.min(i + 999, to) do chunk[#chunk + 1] = rows[j].raw end
    redis.call('RPUSH', key, unpack(chunk))
  end
end

local plans, added, arg = {}, 0, 4
for k, key in ipairs(KEYS) do
  local rows, seen = {}, {}
  for i, raw in ipairs(redis.call('LRANGE', key, 0, -1)) do
    local event = cjson.decode(raw)
    rows[i] = {ts = event.ts, seq = i, raw = raw}
    seen[identity(event, raw)] = true
  end
  local stored = #rows
  for j = arg + 1, arg + tonumber(ARGV[arg]) do
    local raw = ARGV[j]
    local event = cjson.decode(raw)
    local id = identity(event, raw)
    if not seen[id] then
      seen[id] = true
      rows[#rows + 1] = {ts = event.ts, seq = #rows + 1, raw = raw}
    end
  end
  arg = arg + tonumber(ARGV[arg]) + 1
  table.sort(rows, before)
  -- Keep the newest `cap` rows, minus any that have expired; only new rows among them count.
  local first = math.max(1, #rows - cap + 1)
  while first <= #rows and rows[first].ts < cutoff do first = first + 1 end
  local kept_new, kept_old, appended = {}, 0, true
  for i = first, #rows do
    if rows[i].seq > stored then
      kept_new[#kept_new + 1] = rows[i]
    else
      kept_old = kept_old + 1
      appended = appended and #kept_new == 0
    end
  end
  added = added + #kept_new
  plans[k] = {key = key, rows = rows, first = first, kept_new = kept_new, dropped = stored - kept_old,
              appended = appended}
end

for _, plan in ipairs(plans) do
  if plan.appended then
    -- The usual case (events arrive in time order): append, trim the head, no rewrite.
    push(plan.key, plan.kept_new, 1, #plan.kept_new)
    if plan.dropped > 0 then redis.call('LTRIM', plan.key, plan.dropped, -1) end
  else
    redis.call('DEL', plan.key)
    push(plan.key, plan.rows, plan.first, #plan.rows)
  end
  redis.call('EXPIRE', plan.key, ttl)
end
return added
"""


def _events_key(user_key: str) -> str:
    return f"{PREFIX}e:{user_key}"


def _profile_key(user_key: str) -> str:
    return f"{PREFIX}p:{user_key}"


def _rankings_index_key(user_key: str) -> str:
    return f"{PREFIX}ri:{user_key}"


def _ranking_key(request_id: str) -> str:
    return f"{PREFIX}r:{request_id}"


def _compact(value) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _encode(event: Event) -> str:
    record = {"ts": event.timestamp, "t": _TYPE_CODES[event.type]}
    for short, name in _FIELDS:
        value = getattr(event, name)
        if value is not None:
            record[short] = value
    # Event recomputes a content-hash id on decode, so only an id chosen by the client is stored.
    if event.event_id != Event.model_validate(event.model_dump(exclude={"event_id"})).event_id:
        record["id"] = event.event_id
    return _compact(record)


def _decode(user_key: str, raw: str) -> Event:
    record = json.loads(raw)
    return Event(user_id=user_key, event_id=record.get("id"), type=_TYPES_BY_CODE[record["t"]],
                 timestamp=record["ts"], **{name: record.get(short) for short, name in _FIELDS})


class RedisStore(Store):
    def __init__(self, settings: StoreSettings):
        self._settings = settings
        self._ttl = math.ceil(settings.retention_days * 86_400)
        self._redis = redis.Redis.from_url(settings.redis_url, decode_responses=True)
        self._add_events = self._redis.register_script(_ADD_EVENTS)

    def _cutoff(self) -> float:
        return time.time() - self._settings.retention_days * 86_400

    def add_events(self, events: Sequence[Event]) -> int:
        if not events:
            return 0
        batches: dict[str, list[str]] = defaultdict(list)
        for event in events:
            batches[event.user_id].append(_encode(event))
        args: list = [self._settings.max_events_per_user, repr(self._cutoff()), self._ttl]
        for encoded in batches.values():
            args += [len(encoded), *encoded]
        return self._add_events(keys=[_events_key(u) for u in batches], args=args)

    def recent_events(self, user_key: str, limit: int) -> list[Event]:
        if limit <= 0:
            return []
        cutoff = self._cutoff()
        # The list is ascending by (timestamp, arrival): its tail holds the newest events.
        events = (_decode(user_key, raw) for raw in reversed(self._redis.lrange(_events_key(user_key), -limit, -1)))
        return [event for event in events if event.timestamp >= cutoff]

    def put_profile(self, user_key: str, profile: dict) -> None:
        self._redis.set(_profile_key(user_key), _compact(profile), ex=self._ttl)

    def get_profile(self, user_key: str) -> dict | None:
        document = self._redis.get(_profile_key(user_key))
        return json.loads(document) if document is not None else None

    def log_ranking(self, request_id: str, user_key: str, query: str | None, items: list[dict],
                    timestamp: float) -> None:
        cutoff = self._cutoff()
        if timestamp < cutoff:
            return
        index = _rankings_index_key(user_key)
        with self._redis.pipeline(transaction=True) as pipe:
            # NX: a retried log keeps the first record, like INSERT OR IGNORE. The record expires when its
            # index entry becomes due for removal, so erase_user (which goes by the index) never misses one.
            pipe.set(_ranking_key(request_id), _compact({"q": query, "ts": timestamp, "items": items}),
                     nx=True, exat=math.ceil(timestamp) + self._ttl)
            pipe.zadd(index, {request_id: timestamp}, nx=True)
            pipe.zremrangebyscore(index, "-inf", f"({cutoff!r}")
            pipe.expire(index, self._ttl)
            pipe.execute()

    def clickthrough(self) -> Iterator[dict]:
        cutoff = self._cutoff()
        index_prefix = _rankings_index_key("")
        for index in self._redis.scan_iter(match=f"{index_prefix}*", count=1000):
            user_key = index[len(index_prefix):]
            request_ids = self._redis.zrangebyscore(index, cutoff, "+inf")
            if not request_ids:
                continue
            documents = self._redis.mget([_ranking_key(rid) for rid in request_ids])
            followups: dict[str, list[tuple[str | None, str]]] = defaultdict(list)
            for raw in self._redis.lrange(_events_key(user_key), 0, -1):
                record = json.loads(raw)
                if "r" in record and record["ts"] >= cutoff:
                    followups[record["r"]].append((record.get("i"), _TYPES_BY_CODE[record["t"]].value))
            for request_id, document in zip(request_ids, documents):
                if document is None:  # expired between the two reads
                    continue
                ranking = json.loads(document)
                yield from clickthrough_rows(request_id, user_key, ranking["q"], ranking["ts"], ranking["items"],
                                             followups.get(request_id, []))

    def erase_user(self, user_key: str) -> int:
        events, index = _events_key(user_key), _rankings_index_key(user_key)

        def erase(pipe: redis.client.Pipeline) -> int:
            # Runs under WATCH: if a write touches the list or index before EXEC, redis-py retries.
            request_ids = pipe.zrange(index, 0, -1)
            removed = pipe.llen(events)
            pipe.multi()
            pipe.delete(events, _profile_key(user_key), index, *(_ranking_key(rid) for rid in request_ids))
            return removed

        return self._redis.transaction(erase, events, index, value_from_callable=True)

    def count_events(self) -> int:
        with self._redis.pipeline(transaction=False) as pipe:
            for key in self._redis.scan_iter(match=_events_key("*"), count=1000):
                pipe.llen(key)
            return sum(pipe.execute())

    def close(self) -> None:
        self._redis.close()
