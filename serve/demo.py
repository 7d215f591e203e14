"""The shopsense demo (`shopsense demo`, `make demo`): real catalogue, real shoppers, the real Serve graph.

1. indexes the bundled Amazon beauty catalogue (data/beauty-demo) with the vLLM encoder;
2. trains, through Ray Train, the intent and demand models on the bundled labelled queries
   (data/queries) and the next-item ranker on the bundled shoppers (skipped when the work
   directory already holds them: delete it to retrain);
3. starts the Serve graph locally (Ray, vLLM encoder and classifiers, SQLite store);
4. for a few real shoppers, asks for a search and a recommendation (cold start),
   replays the shopper's real purchase history as events over HTTP, and asks again,
   printing both answers side by side with each item's reason, and the profile.

The reviews are from 2014; replayed events are re-timed to the last few hours (order kept)
so the profile's time decay treats them as a fresh session.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
from rich.console import Console
from rich.progress import track
from rich.table import Table

from shopsense.config import Settings
from shopsense.datasets import DEMO_DATA, QUERY_DATA

DEMO_QUERIES = ["gift for her", "moisturizer for dry skin"]
SHOPPERS = 3
HISTORY_SPACING_S = 600  # replayed events are 10 minutes apart, the newest a minute ago
QUERY_SUBSET = 512       # labelled queries for the demo's quick fine-tuning; `shopsense train` takes them all
RANKER_USERS = 2000

console = Console()


def pick_shoppers(interactions: pd.DataFrame, n: int) -> list[str]:
    """Shoppers with 8-15 events (long enough to shape a profile, short enough to read), fixed choice."""
    sizes = interactions.groupby("user_id").size()
    return sorted(sizes[(sizes >= 8) & (sizes <= 15)].index.astype(str))[:n]


def replayed_events(history: pd.DataFrame, now: float) -> list[dict]:
    newest_first = len(history) - 1
    return [{"event_id": f"demo:{row.user_id}:{i}", "user_id": str(row.user_id), "type": "purchase",
             "item_id": str(row.item_id), "timestamp": now - 60 - (newest_first - i) * HISTORY_SPACING_S}
            for i, row in enumerate(history.itertuples())]


def train_models(models: Path, settings: Settings) -> None:
    from train.train_query_model import train_main as train_query_model
    from train.train_ranker import train_main as train_ranker

    console.rule("[bold]2. train the intent and demand models and the ranker (Ray Train)")
    for task in ("intent", "demand"):
        if (models / task / "config.json").exists():
            console.print(f"{task} model already trained in {models / task}")
            continue
        summary = train_query_model(task, workers=2, epochs=2, out=models, subset=QUERY_SUBSET, data_path=QUERY_DATA)
        best = summary["history"][summary["exported_epoch"] - 1]
        console.print(f"{task}: {len(summary['history'])} epochs on 2 workers; exported epoch {best['epoch']}, "
                      f"held-out micro/macro F1 {best['val_micro_f1']:.3f}/{best['val_macro_f1']:.3f}")
    if not (models / "ranker-nextitem.txt").exists():
        path = train_ranker("nextitem", DEMO_DATA, settings=settings, max_users=RANKER_USERS)
        console.print(f"next-item ranker trained on {RANKER_USERS} bundled shoppers -> {path}")


def answers_table(title: str, before: dict, after: dict) -> Table:
    table = Table(title=title, show_lines=False, expand=True)
    table.add_column("#", justify="right", width=2)
    table.add_column("before the shopper's events", ratio=1)
    table.add_column("after", ratio=1)
    for i, (b, a) in enumerate(zip(before["items"], after["items"]), 1):
        table.add_row(str(i), f"{b['title'][:60]}\n[dim]{b['score']:.3f} · {b['reason']}[/dim]",
                      f"{a['title'][:60]}\n[dim]{a['score']:.3f} · {a['reason']}[/dim]")
    return table


def run_demo(workdir: Path, port: int, encoder: str) -> None:
    started = time.time()
    workdir = workdir.resolve()
    artifacts, store = workdir / "artifacts", workdir / "store.sqlite"
    for path in (store, Path(f"{store}-wal"), Path(f"{store}-shm")):
        path.unlink(missing_ok=True)  # each demo run starts from empty profiles
    meta = artifacts / "catalog" / "meta.json"
    if not meta.exists() or f'"{encoder}"' not in meta.read_text():
        shutil.rmtree(artifacts / "catalog", ignore_errors=True)
        console.rule("[bold]1. index the demo catalogue")
        subprocess.run([sys.executable, "-m", "shopsense.cli", "index", "--artifacts", str(artifacts),
                        "--encoder", encoder], check=True)

    import ray

    from serve.local import start, stop

    ray.init(include_dashboard=False, log_to_driver=False)
    # The learned ranker scores recommendations with the next-item model trained below; searches fall back to
    # the simple scorer (the search ranker trains on Home Depot judgements, which are not bundled).
    settings = {"artifacts_dir": str(artifacts), "store": {"sqlite_path": str(store)}, "encoder": {"backend": encoder},
                "ranking": {"ranker": "learned"}}
    train_models(artifacts / "models", Settings.load(overrides=settings))

    console.rule("[bold]3. start the Serve graph")
    with console.status("starting Ray Serve: Ingress, Encoder (vLLM), BehaviorFeatures, Fusion, Ranking ..."):
        url = start(settings, port=port)
    console.print(f"serving on {url} (OpenAPI: {url}/docs) after {time.time() - started:.0f}s")

    interactions = pd.read_parquet(DEMO_DATA / "interactions.parquet").astype({"user_id": str, "item_id": str})
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            for n, shopper in enumerate(pick_shoppers(interactions, SHOPPERS)):
                query = DEMO_QUERIES[n % len(DEMO_QUERIES)]
                console.rule(f"[bold]4. shopper {shopper}")
                ask = lambda q: client.post("/v1/recommend", json={"user_id": shopper, "query": q, "k": 5}).json()
                before = {"search": ask(query), "recommend": ask(None),
                          "profile": client.get(f"/v1/users/{shopper}/profile").json()}
                history = interactions[interactions["user_id"] == shopper]
                events = replayed_events(history, time.time())
                for event in track(events, description=f"replaying {len(events)} real purchases as events"):
                    client.post("/v1/events", json=event).raise_for_status()
                after = {"search": ask(query), "recommend": ask(None)}
                console.print(answers_table(f"search “{query}”", before["search"], after["search"]))
                console.print(answers_table("recommendations (no query)", before["recommend"], after["recommend"]))
                profile = client.get(f"/v1/users/{shopper}/profile").json()
                console.print(f"[bold]profile[/bold] before: counts {before['profile']['counts']}; after: counts",
                              profile["counts"], "· top interests:")
                for interest in profile["top_interests"][:3]:
                    console.print(f"   {interest['weight']:.2f}  {interest['text'][:80]}")
    finally:
        stop()
    console.rule(f"demo finished in {time.time() - started:.0f}s")
