"""Query-model benchmark: Ray Train examples/s on 1 vs 2 CPU workers, and encoder texts/s without vs with
the intent and demand heads.

    .venv/bin/python -m train.bench_models [--subset 256] [--texts N] [--json PATH]   # or run(...) -> dict (make bench)

(1) training: train.train_query_model.train_main("intent", workers=W, epochs=1, subset=S) for W = 1 and 2,
    each run fresh in its own temporary directory (a shared one would resume instead of train).
    examples/s is the run's own figure: the epoch's training examples over the slowest worker's
    training-loop seconds (Ray start-up, held-out evaluation and export left out).
(2) heads: the bundled labelled queries (data/queries, "query" column; all of them unless --texts)
    through TextModels with the vLLM backend, what the Encoder deployment hosts: the sentence encoder
    alone vs encoder + intent + demand `classify`. The heads are the 2-worker intent checkpoint of (1)
    and a demand checkpoint trained the same way; speed does not depend on their quality, so nothing
    pre-trained is needed. Every vLLM engine is closed at the end.
Texts/s is the best of `repeats` passes after a warm-up. The machine is shared and noisy: compare the
ratios, measured in the same run.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from shopsense.config import Settings
from shopsense.datasets import QUERY_DATA
from shopsense.text_models import TextModels
from train.train_query_model import train_main

WORKERS = (1, 2)
console = Console(width=160)


def training_run(task: str, workers: int, subset: int, workdir: Path) -> dict:
    """One fresh 1-epoch run: its examples/s and exported checkpoint."""
    summary = train_main(task, workers=workers, epochs=1, subset=subset, out=workdir / f"{task}-{workers}w",
                         data_path=QUERY_DATA)
    return {"examples_per_s": summary["history"][-1]["examples_per_s"], "export_dir": summary["export_dir"]}


def texts_per_s(encode, texts: list[str], repeats: int) -> float:
    encode(texts[:32])  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        encode(texts)
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


def heads_rates(texts: list[str], intent_dir: str, demand_dir: str, repeats: int) -> dict:
    """Texts/s of the vLLM encoder alone and with both classifier heads, on the same engines."""
    settings = Settings.load(overrides={"encoder": {"backend": "vllm"},
                                        "query_models": {"intent_path": intent_dir, "demand_path": demand_dir}})
    models = TextModels.load(settings)
    try:
        if sorted(models.classifiers) != ["demand", "intent"]:
            raise RuntimeError(f"expected intent and demand heads, loaded {sorted(models.classifiers)}")
        alone = texts_per_s(models.encoder.encode, texts, repeats)
        with_heads = texts_per_s(models.encode, texts, repeats)
    finally:
        models.encoder.close()  # an exiting process would otherwise wait on each engine-core child
        for classifier in models.classifiers.values():
            classifier.close()
    return {"texts": len(texts), "encoder_alone": alone, "encoder_and_heads": with_heads,
            "ratio_heads_over_alone": with_heads / alone}


def run(subset: int = 256, texts: int | None = None, repeats: int = 3) -> dict:
    queries = pd.read_parquet(QUERY_DATA)["query"].tolist()[:texts]
    with tempfile.TemporaryDirectory(prefix="bench-models-") as tmp:
        runs = {w: training_run("intent", w, subset, Path(tmp)) for w in WORKERS}
        demand = training_run("demand", WORKERS[-1], subset, Path(tmp))
        heads = heads_rates(queries, runs[WORKERS[-1]]["export_dir"], demand["export_dir"], repeats)
    rates = {f"{w}_workers": runs[w]["examples_per_s"] for w in WORKERS}
    return {"training_examples_per_s": {"task": "intent", "subset": subset, "epochs": 1, **rates,
                                        "ratio_2_over_1_workers": rates["2_workers"] / rates["1_workers"]},
            "encoder_heads_texts_per_s": heads}


def report(figures: dict) -> None:
    train, heads = figures["training_examples_per_s"], figures["encoder_heads_texts_per_s"]
    table = Table(title="query models: Ray Train examples/s (1 epoch) and vLLM texts/s with the classifier heads")
    for column in ("measurement", "baseline", "compared", "ratio"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_row(f"{train['task']} training, {train['subset']} examples", f"1 worker {train['1_workers']:.1f}",
                  f"2 workers {train['2_workers']:.1f}", f"{train['ratio_2_over_1_workers']:.2f}")
    table.add_row(f"encoding {heads['texts']} queries", f"encoder {heads['encoder_alone']:.0f}",
                  f"+ intent + demand {heads['encoder_and_heads']:.0f}", f"{heads['ratio_heads_over_alone']:.2f}")
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subset", type=int, default=256, help="training examples per run")
    parser.add_argument("--texts", type=int, default=None, help="queries to encode (default: all bundled)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    figures = run(args.subset, args.texts, args.repeats)
    report(figures)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
