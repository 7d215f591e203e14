"""Benchmarks (`make bench`, `shopsense bench --json PATH`): every figure measured in one run, reported as ratios.

(a) /v1/recommend latency p50/p99 and throughput at 1, 4 and 16 concurrent clients, through HTTP
    (the Serve graph) versus the same pipeline called in-process without Ray (shopsense.pipeline.Recommender);
(b) encoder texts/s, vLLM versus sentence-transformers, on the same product titles;
(c) events/s ingested, in-process (store write) and through HTTP (POST /v1/events batches), and
    bulk import into SQLite and Redis with bytes per shopper (train/bench_ingest.py);
(d) Ray Train examples/s of the intent model on 1 versus 2 CPU workers (train/bench_models.py);
(e) encoder texts/s alone versus with the intent and demand heads, vLLM (train/bench_models.py);
(f) ranking-step latency p50/p99 for 100 versus 1,000 candidates with the learned ranker, in-process
    (train/bench_retrieval.py);
(g) a 1,000,000-product index of random vectors: build seconds, ANN versus exact ms per query and
    recall@100 (train/bench_retrieval.py).

In (a)-(c) both sides use the vLLM encoder, the bundled demo catalogue and shoppers with replayed real
histories; the machine is shared and noisy, so compare ratios, not absolute figures.
"""
from __future__ import annotations

import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from shopsense.catalog import load_catalog
from shopsense.config import Settings
from shopsense.datasets import DEMO_DATA, interaction_events
from shopsense.encoders import SentenceTransformersEncoder, VLLMEncoder, default_model_path
from shopsense.index import CatalogIndex
from shopsense.pipeline import Recommender
from shopsense.schemas import RecommendRequest
from train import bench_ingest, bench_models, bench_retrieval

QUERIES = ["shampoo for dry hair", "red lipstick", "nail polish", "anti aging cream", "perfume for women",
           "sunscreen spf 50", "hair dryer", "eye shadow palette", "body lotion", "beard oil"]
CONCURRENCY = (1, 4, 16)
SHOPPERS = 50
console = Console(width=160)  # the tables are wide; keep them readable in logs and CI


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def load_test(call, requests: list[dict], clients: int) -> dict:
    """Run `call(request)` for every request with `clients` concurrent callers; latency in ms."""
    def timed(request):
        start = time.perf_counter()
        call(request)
        return (time.perf_counter() - start) * 1000

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = list(pool.map(timed, requests))
    wall = time.perf_counter() - start
    return {"p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99), "rps": len(requests) / wall}


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def batch_payloads(events, size: int = 1000) -> list[dict]:
    return [{"events": [e.model_dump(mode="json") for e in events[i:i + size]]} for i in range(0, len(events), size)]


def post_batches(client: httpx.Client, payloads: list[dict]) -> None:
    for payload in payloads:
        client.post("/v1/events", json=payload).raise_for_status()


def make_requests(shoppers: list[str], n: int) -> list[dict]:
    rng = np.random.default_rng(0)
    return [{"user_id": str(rng.choice(shoppers)), "query": QUERIES[i % len(QUERIES)] if i % 2 == 0 else None, "k": 10}
            for i in range(n)]


def run_bench(json_path: Path | None, n_requests: int, port: int) -> dict:
    from serve.local import start, stop

    workdir = Path(tempfile.mkdtemp(prefix="shopsense-bench-"))
    products = load_catalog(DEMO_DATA / "items.parquet")
    interactions = pd.read_parquet(DEMO_DATA / "interactions.parquet").astype({"user_id": str, "item_id": str})
    titles = products["title"].tolist()[:1024]
    figures: dict = {"machine_note": "ratios measured in one run on the same machine"}

    console.rule("(b) encoder texts/s")
    st = SentenceTransformersEncoder(default_model_path())
    vllm = VLLMEncoder(default_model_path())
    figures["encoder_texts_per_s"] = {"vllm": bench_models.texts_per_s(vllm.encode, titles, repeats=3),
                                      "sentence-transformers": bench_models.texts_per_s(st.encode, titles, repeats=3)}
    figures["encoder_texts_per_s"]["ratio_vllm_over_st"] = (figures["encoder_texts_per_s"]["vllm"]
                                                          / figures["encoder_texts_per_s"]["sentence-transformers"])

    artifacts = workdir / "artifacts"
    popularity = interactions["item_id"].value_counts()
    CatalogIndex.build(products, vllm, popularity).save(artifacts / "catalog")
    overrides = {"artifacts_dir": str(artifacts), "encoder": {"backend": "vllm"}, "api": {"max_batch_events": 1000}}
    shoppers = sorted(interactions["user_id"].unique())[:SHOPPERS]
    history = interactions[interactions["user_id"].isin(shoppers)].copy()
    history["timestamp"] = time.time() - 3600  # recent, so the profiles carry weight
    events = list(interaction_events(history))
    bulk = list(interaction_events(interactions.assign(user_id="bulk-" + interactions["user_id"])))[:20_000]

    console.rule("(a, c) in-process pipeline")
    local_settings = Settings.load(overrides=overrides | {"store": {"sqlite_path": str(workdir / "local.sqlite")}})
    local = Recommender.open(local_settings, encoder=vllm)
    local.ingest(events)
    figures["ingest_events_per_s"] = {"in_process": len(bulk) / _timed(
        lambda: [local.ingest(bulk[i:i + 1000]) for i in range(0, len(bulk), 1000)])}
    requests = make_requests(shoppers, n_requests)
    in_process = {c: load_test(lambda r: local.recommend(RecommendRequest(**r)), requests, c) for c in CONCURRENCY}
    local.close()
    vllm.close()  # the in-process engine: an exiting process would otherwise wait on its engine-core child

    console.rule("(a, c) HTTP through the Serve graph")
    url = start(overrides | {"store": {"sqlite_path": str(workdir / "serve.sqlite")}}, port=port)
    try:
        with httpx.Client(base_url=url, timeout=120, limits=httpx.Limits(max_connections=32)) as client:
            post_batches(client, batch_payloads(events))
            payloads = batch_payloads(bulk)
            figures["ingest_events_per_s"]["http"] = len(bulk) / _timed(lambda: post_batches(client, payloads))
            load_test(lambda r: client.post("/v1/recommend", json=r), requests[:20], 4)  # warm-up
            http = {c: load_test(lambda r: client.post("/v1/recommend", json=r).raise_for_status(), requests, c)
                    for c in CONCURRENCY}
    finally:
        stop()

    figures["recommend"] = {str(c): {"http": http[c], "in_process": in_process[c],
                                     "ratio_http_over_in_process": {k: http[c][k] / in_process[c][k] for k in http[c]}}
                            for c in CONCURRENCY}
    figures["ingest_events_per_s"]["ratio_http_over_in_process"] = (figures["ingest_events_per_s"]["http"]
                                                                  / figures["ingest_events_per_s"]["in_process"])
    console.rule("(c) bulk import into SQLite and Redis")
    figures["bulk_import"] = bench_ingest.run()
    console.rule("(d, e) query models: Ray Train workers, classifier heads")
    figures.update(bench_models.run())
    console.rule("(f, g) ranking latency, ANN vs exact retrieval")
    figures.update(bench_retrieval.run())
    report(figures)
    if json_path:
        Path(json_path).write_text(json.dumps(figures, indent=2))
        console.print(f"figures written to {json_path}")
    return figures


def report(figures: dict) -> None:
    table = Table(title="/v1/recommend: HTTP (Serve graph) vs in-process")
    for column in ("clients", "HTTP p50 ms", "in-proc p50 ms", "ratio", "HTTP p99 ms", "in-proc p99 ms", "ratio",
                   "HTTP req/s", "in-proc req/s", "ratio"):
        table.add_column(column, justify="right", no_wrap=True)
    for clients, row in figures["recommend"].items():
        h, i, r = row["http"], row["in_process"], row["ratio_http_over_in_process"]
        table.add_row(clients, *(f"{v:.1f}" for v in (h["p50_ms"], i["p50_ms"])), f"{r['p50_ms']:.2f}",
                      *(f"{v:.1f}" for v in (h["p99_ms"], i["p99_ms"])), f"{r['p99_ms']:.2f}",
                      *(f"{v:.1f}" for v in (h["rps"], i["rps"])), f"{r['rps']:.2f}")
    console.print(table)
    enc = figures["encoder_texts_per_s"]
    console.print(f"encoder texts/s: vLLM {enc['vllm']:.0f}, sentence-transformers {enc['sentence-transformers']:.0f}"
                  f" (ratio {enc['ratio_vllm_over_st']:.2f})")
    ing = figures["ingest_events_per_s"]
    console.print(f"events/s ingested: in-process {ing['in_process']:.0f}, HTTP {ing['http']:.0f}"
                  f" (ratio {ing['ratio_http_over_in_process']:.2f})")
    bulk = figures["bulk_import"]
    console.print(f"bulk import of {bulk['events']} events: SQLite {bulk['sqlite_events_per_s']:.0f}/s, "
                  f"Redis {bulk.get('redis_events_per_s', float('nan')):.0f}/s; "
                  f"Redis bytes per shopper {bulk.get('redis_bytes_per_shopper')}")
    bench_models.report(figures)
    bench_retrieval.report(figures)
