"""The `shopsense` command line: index a catalogue, serve, run the demo and the benchmarks.

    shopsense index --catalog data/beauty-demo/items.parquet --interactions data/beauty-demo/interactions.parquet
    shopsense serve                 # local Ray + the Serve graph of serve/config.yaml, until Ctrl-C
    shopsense demo                  # index, serve, replay real shoppers, show answers before/after
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


if __name__ == "__main__":
    app()
