"""The `shopsense` command line: index, serve, demo, train, evaluate, import/export, benchmark.

    shopsense index --catalog data/beauty-demo/items.parquet --interactions data/beauty-demo/interactions.parquet
    shopsense serve                 # local Ray + the Serve graph of serve/config.yaml, until Ctrl-C
    shopsense demo                  # index, serve, replay real shoppers, show answers before/after
    shopsense train intent|demand --workers 2 [--gpu] [--epochs E] [--out DIR] [--subset N] [--lora]
    shopsense train encoder --judgments PATH [--workers N] [--gpu] [--epochs E]
    shopsense train ranker --task search|nextitem
    shopsense eval intent|demand --json PATH
    shopsense eval search --judgments PATH.parquet --json OUT [--queries N] [--ablate intent,demand]
    shopsense eval nextitem --data DIR --json OUT [--users N] [--ablate behavior,intent,demand]
    shopsense events import PATH    # bulk import (OTTO sessions, amazon-reviews interactions, event JSONL)
    shopsense export clickthrough --out PATH.parquet
    shopsense bench --json bench.json

This module only parses arguments; the work is in the domain package, serve/ and
train/ (imported lazily so that `shopsense --help` stays fast and Ray-free).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from shopsense.config import Settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n")[0])
train_app = typer.Typer(no_args_is_help=True, help="Train the intent/demand models (Ray Train) or the ranker.")
eval_app = typer.Typer(no_args_is_help=True, help="Evaluate the query models, search or next-item ranking.")
events_app = typer.Typer(no_args_is_help=True, help="Bulk event operations.")
export_app = typer.Typer(no_args_is_help=True, help="Export logs and statistics.")
for sub, name in ((train_app, "train"), (eval_app, "eval"), (events_app, "events"),
                  (export_app, "export")):
    app.add_typer(sub, name=name)


def _settings(config: Optional[Path], encoder: Optional[str] = None, artifacts: Optional[Path] = None) -> Settings:
    overrides: dict = {}
    if encoder:
        overrides["encoder"] = {"backend": encoder}
    if artifacts:
        overrides["artifacts_dir"] = str(artifacts)
    return Settings.load(config, overrides)


@app.command()
def index(catalog: Path = typer.Option(None, help="products file (parquet/csv/jsonl); default: the bundled demo"),
          interactions: Optional[Path] = typer.Option(None, help="events table (user_id, item_id, ...) for popularity"),
          artifacts: Optional[Path] = typer.Option(None, help="artifacts directory (index goes to <dir>/catalog)"),
          encoder: Optional[str] = typer.Option(None, help="vllm or sentence-transformers"),
          config: Optional[Path] = typer.Option(None, help="settings YAML")):
    """Encode a product catalogue and save its ANN index artifact."""
    from shopsense.indexing import build_catalog_index

    build_catalog_index(_settings(config, encoder, artifacts), catalog, interactions)


@app.command()
def serve(port: int = typer.Option(8000), config: Optional[Path] = typer.Option(None, help="settings YAML")):
    """Run the Serve graph locally (ray.init + serve/config.yaml) until interrupted."""
    import os
    import time

    from serve.local import start

    if config:
        os.environ["SHOPSENSE_CONFIG"] = str(config.resolve())  # replicas inherit the environment
    url = start(port=port)
    typer.echo(f"shopsense serving on {url} (OpenAPI at {url}/docs); Ctrl-C to stop")
    while True:
        time.sleep(3600)


@app.command()
def demo(port: int = typer.Option(8000), workdir: Path = typer.Option(Path("runs/demo"), help="artifacts and store"),
         encoder: str = typer.Option("vllm", help="vllm or sentence-transformers")):
    """Index the bundled catalogue, serve it, replay real shoppers and show answers before and after."""
    from serve.demo import run_demo

    run_demo(workdir, port, encoder)


@app.command()
def bench(json_path: Optional[Path] = typer.Option(None, "--json", help="write the figures here"),
          requests: int = typer.Option(200, help="requests per concurrency level"),
          port: int = typer.Option(8011)):
    """Serving latency/throughput (HTTP vs in-process), encoder texts/s (vLLM vs sentence-transformers), events/s."""
    from train.bench import run_bench

    run_bench(json_path, requests, port)


def _print_json(data) -> None:
    import json

    typer.echo(json.dumps(data, indent=2, default=str))


@train_app.command("intent")
def train_intent(workers: int = 2, gpu: bool = False, epochs: int = 3, out: Path = Path("artifacts/models"),
                 subset: Optional[int] = None, lora: bool = False):
    """Fine-tune the intent classifier (purchase / compare / browse) with Ray Train."""
    from train.train_query_model import train_main

    _print_json(train_main("intent", workers, gpu, epochs, out, subset, lora))


@train_app.command("demand")
def train_demand(workers: int = 2, gpu: bool = False, epochs: int = 3, out: Path = Path("artifacts/models"),
                 subset: Optional[int] = None, lora: bool = False):
    """Fine-tune the multi-label demand classifier (brand, colour, size, price, ...) with Ray Train."""
    from train.train_query_model import train_main

    _print_json(train_main("demand", workers, gpu, epochs, out, subset, lora))


@train_app.command("encoder")
def train_encoder(judgments: Path = typer.Option(..., help="parquet with the Home Depot judgement columns"),
                  out: Path = Path("artifacts/models/encoder-search"), workers: int = 1, gpu: bool = False,
                  epochs: int = 1):
    """Fine-tune the sentence encoder on search judgements (Ray Train); serve it by setting encoder.model."""
    from train.train_encoder import train_main

    summary = train_main(judgments, out, workers, gpu, epochs)
    _print_json({k: v for k, v in summary.items() if k != "trained_query_hashes"})


@train_app.command("ranker")
def train_ranker(task: str = typer.Option(..., help="search or nextitem"),
                 data: Optional[Path] = typer.Option(None, help="judgements file (search) or amazon-reviews dir"),
                 out: Optional[Path] = None, workers: int = 1):
    """Train the LightGBM lambdarank ranker through Ray Train."""
    from train.train_ranker import train_main

    typer.echo(f"ranker saved to {train_main(task, data, out, num_workers=workers)}")


@eval_app.command("intent")
def eval_intent(json_path: Optional[Path] = typer.Option(None, "--json"), model_dir: Path = Path("artifacts/models")):
    """Intent model vs the labelling rules and a logistic regression, on the held-out queries."""
    from train.eval_query_model import eval_main

    _print_json(eval_main("intent", model_dir, json_path))


@eval_app.command("demand")
def eval_demand(json_path: Optional[Path] = typer.Option(None, "--json"), model_dir: Path = Path("artifacts/models")):
    """Demand model vs the labelling rules and a logistic regression, on the held-out queries."""
    from train.eval_query_model import eval_main

    _print_json(eval_main("demand", model_dir, json_path))


@eval_app.command("search")
def eval_search(judgments: Path = typer.Option(..., help="parquet with the Home Depot judgement columns"),
                json_path: Optional[Path] = typer.Option(None, "--json"),
                queries: Optional[int] = typer.Option(None, help="sample this many unseen queries (fixed seed)"),
                ablate: str = typer.Option("", help="comma-separated feature groups to switch off: intent,demand"),
                encoder: Optional[str] = typer.Option(None, help='fine-tuned encoder directory, or "packaged" '
                                                      '(default: artifacts/models/encoder-search, trained if missing)')):
    """nDCG@10, MRR, recall@100 of the system vs BM25 and encoder cosine."""
    from train.eval_search import eval_main

    _print_json(eval_main(judgments, json_path, max_queries=queries, ablate=[a for a in ablate.split(",") if a],
                          encoder=encoder))


@eval_app.command("nextitem")
def eval_nextitem(data: Path = typer.Option(..., help="amazon-reviews format directory"),
                  json_path: Optional[Path] = typer.Option(None, "--json"), users: Optional[int] = None,
                  ablate: str = typer.Option("", help="comma-separated parts to switch off: behavior,intent,demand")):
    """Leave-last-out HR@10 / NDCG@10 of the system vs popularity, co-occurrence, profile and blend."""
    from train.eval_nextitem import eval_main

    _print_json(eval_main(data, json_path, users, [a for a in ablate.split(",") if a]))


@events_app.command("import")
def events_import(path: Path, fmt: str = typer.Option("auto", "--format", help="auto, otto, amazon, events"),
                  config: Optional[Path] = typer.Option(None, help="settings YAML")):
    """Bulk-import events into the configured store (idempotent: a second import stores nothing new)."""
    from shopsense.importer import import_events

    _print_json(import_events(_settings(config), path, fmt))


@export_app.command("clickthrough")
def export_clickthrough(out: Path = typer.Option(..., help="parquet file to write"),
                        config: Optional[Path] = typer.Option(None, help="settings YAML")):
    """The ranking log joined with what shoppers did next, as parquet (the ranker's retraining input)."""
    from shopsense.export import export_clickthrough as export

    typer.echo(f"{export(_settings(config), out)} rows -> {out}")


if __name__ == "__main__":
    app()
