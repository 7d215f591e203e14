"""Fine-tune the sentence encoder on a shop's search judgements with Ray Train, for search that knows the shop.

    python -m train.train_encoder --judgments ../shared/data/homedepot/judgments.parquet \
                                  [--out artifacts/models/encoder-search] [--workers 1] [--epochs 1]
                                  [--gpu] [--max-pairs N] [--base-model DIR]
    (the CLI: shopsense train encoder ... calls train_main)

The packaged all-MiniLM-L6-v2 knows English, not that "otr" is an over-the-range microwave
or that a "l bracket" is an angle. Here it learns from the judgements file's training
queries (train.search_data's split by query hash, the ranker's own): each (query, product
text) with relevance >= MIN_RELEVANCE is a positive, every other product in the batch a
negative (in-batch softmax over cosines; a duplicate of the query's product or query is
masked, it is not a negative). `TorchTrainer` runs it data-parallel on N workers (GPU or
CPU). Each epoch reports the in-batch loss on the validation queries' pairs. The result is
a sentence-transformers directory: point `encoder.model` at it and both encoder backends
(vLLM and sentence-transformers) serve it; the catalogue must be re-indexed with it.
Its training.json lists the hashes of the queries it learned from, so evaluations skip them.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from shopsense.catalog import product_text
from shopsense.datasets import homedepot
from shopsense.encoders import default_model_path
from train.query_split import query_hash, query_split
from train.train_query_model import all_reduce, fit_on_workers, start_worker, swap_in, unwrap

SEED = 13
MIN_RELEVANCE = 2.0     # 1 irrelevant .. 3 exact: from "relevant" up
SCALE = 20.0            # inverse temperature of the in-batch softmax (sentence-transformers' default)
ENCODER_DIR = "encoder-search"   # under <artifacts>/models
PROGRESS_EVERY = 100    # batches between progress lines
MAX_TOKENS = 64         # queries are a few words; product titles rarely pass 40 word pieces


def judged_pairs(path: str | Path) -> dict[str, list[tuple[str, str, str]]]:
    """split -> shuffled (query, product text, product id) positives of a Home Depot-format judgements file."""
    products, judgements = homedepot(path)
    text_of = dict(zip(products["item_id"], (product_text(row) for row in products.to_dict("records"))))
    positives = judgements[judgements["relevance"] >= MIN_RELEVANCE].sample(frac=1.0, random_state=SEED)
    pairs: dict[str, list] = {"train": [], "valid": [], "test": []}
    for query, item_id in zip(positives["query"], positives["item_id"]):
        pairs[query_split(query)].append((query, text_of[item_id], item_id))
    return pairs


def in_batch_loss(model, batch: list[tuple[str, str, str]]):
    """Softmax over the batch's products for each query; other pairs' copies of the same query or product are
    not negatives."""
    import torch
    import torch.nn.functional as F

    def encode(strings) -> torch.Tensor:
        return F.normalize(model(model_tokenize(model, list(strings)))["sentence_embedding"], dim=-1)

    queries, texts, item_ids = zip(*batch)
    logits = encode(queries) @ encode(texts).T * SCALE
    same_item = np.array(item_ids)[:, None] == np.array(item_ids)[None, :]
    same_query = np.array(queries)[:, None] == np.array(queries)[None, :]
    duplicate = torch.from_numpy((same_item | same_query) & ~np.eye(len(batch), dtype=bool))
    logits = logits.masked_fill(duplicate.to(logits.device), -1e4)
    return F.cross_entropy(logits, torch.arange(len(batch), device=logits.device))


def model_tokenize(model, texts: list[str]) -> dict:
    import ray.train.torch

    features = unwrap(model).tokenize(texts)
    device = ray.train.torch.get_device()
    return {name: value.to(device) if hasattr(value, "to") else value for name, value in features.items()}


def train_loop_per_worker(config: dict) -> None:
    """One Ray Train worker: its shard of the training pairs per epoch, then the validation loss and a checkpoint."""
    import ray.train
    import ray.train.torch
    import torch
    from sentence_transformers import SentenceTransformer

    rank, world = start_worker(config)
    model = SentenceTransformer(config["base_model"], device="cpu", local_files_only=True)
    model.max_seq_length = MAX_TOKENS
    model = ray.train.torch.prepare_model(model)
    batch_size = config["batch_size"]
    train_pairs, valid_pairs = config["train_pairs"][rank::world], config["valid_pairs"][rank::world]
    batches = [train_pairs[start:start + batch_size] for start in range(0, len(train_pairs), batch_size)]
    optimizer = torch.optim.AdamW(model.parameters(), lr=config["lr"], weight_decay=0.01)
    total = max(1, config["epochs"] * len(batches))
    warmup = max(1, total // 20)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / warmup) * max(0.0, 1.0 - step / total))
    use_amp = config["gpu"]
    rng = np.random.default_rng(SEED)

    for epoch in range(config["epochs"]):
        model.train()
        started, loss_sum = time.perf_counter(), 0.0
        for step, number in enumerate(rng.permutation(len(batches)), 1):
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_amp):
                loss = in_batch_loss(model, batches[number])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.item() * len(batches[number])
            if rank == 0 and step % PROGRESS_EVERY == 0:
                print(f"epoch {epoch + 1}: batch {step}/{len(batches)}, loss {loss.item():.3f}", flush=True)
        train_seconds = time.perf_counter() - started

        model.eval()
        val_sum = 0.0
        with torch.inference_mode():
            for start in range(0, len(valid_pairs), batch_size):
                chunk = valid_pairs[start:start + batch_size]
                val_sum += in_batch_loss(model, chunk).item() * len(chunk)
        seen, train_loss, val_seen, val_loss = all_reduce([len(train_pairs), loss_sum, len(valid_pairs), val_sum])
        (slowest,) = all_reduce([train_seconds], op="max")
        metrics = {"epoch": epoch + 1, "train_loss": train_loss / max(seen, 1), "val_loss": val_loss / max(val_seen, 1),
                   "pairs_per_s": seen / slowest, "train_seconds": slowest, "workers": world}
        with tempfile.TemporaryDirectory() as directory:
            checkpoint = None
            if rank == 0:
                unwrap(model).save(directory)
                checkpoint = ray.train.Checkpoint.from_directory(directory)
                print(json.dumps(metrics))
            ray.train.report(metrics, checkpoint=checkpoint)


def train_main(judgments: str | Path, out: str | Path = "artifacts/models/encoder-search", workers: int = 1,
               gpu: bool = False, epochs: int = 1, *, base_model: str | None = None, batch_size: int = 64,
               lr: float = 5e-5, max_pairs: int | None = None) -> dict:
    """Fine-tune on `judgments`' training queries and export the encoder to `out`; returns its training.json."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig

    out = Path(out).resolve()
    base_model = base_model or default_model_path()
    pairs = judged_pairs(judgments)
    train_pairs = pairs["train"][:max_pairs] if max_pairs else pairs["train"]
    valid_pairs = pairs["valid"][:max(batch_size, max_pairs // 7)] if max_pairs else pairs["valid"]
    cpus_per_worker = max(1, (os.cpu_count() or 1) // workers)
    config = {"base_model": base_model, "gpu": gpu, "epochs": epochs, "batch_size": batch_size, "lr": lr,
              "cpus_per_worker": cpus_per_worker, "train_pairs": train_pairs, "valid_pairs": valid_pairs}
    result = fit_on_workers(
        train_loop_per_worker, config, workers, gpu,
        RunConfig(name=out.name, storage_path=str(out.parent / "runs"), failure_config=FailureConfig(max_failures=0),
                  checkpoint_config=CheckpointConfig(num_to_keep=1, checkpoint_score_attribute="val_loss",
                                                     checkpoint_score_order="min")))
    best = result.get_best_checkpoint(metric="val_loss", mode="min") or result.checkpoint
    if best is None:
        raise RuntimeError(f"encoder training reported no checkpoint (run dir {out.parent / 'runs' / out.name})")
    staging = out.with_name(f".{out.name}.staging")
    with best.as_directory() as directory:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(directory, staging)
    info = {"judgments": str(judgments), "base_model": base_model, "workers": workers, "gpu": gpu,
            "epochs": epochs, "lr": lr, "batch_size_per_worker": batch_size, "min_relevance": MIN_RELEVANCE,
            "train_pairs": len(train_pairs), "valid_pairs": len(valid_pairs),
            "final_metrics": dict(result.metrics or {}),
            "trained_query_hashes": sorted({query_hash(q) for q, _, _ in train_pairs})}
    (staging / "training.json").write_text(json.dumps(info, indent=2))
    swap_in(staging, out)
    return {**info, "export_dir": str(out)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--judgments", required=True)
    parser.add_argument("--out", default="artifacts/models/encoder-search")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--gpu", action="store_true")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-pairs", type=int, default=None)
    parser.add_argument("--base-model", help="a sentence-transformers directory (default: the packaged all-MiniLM-L6-v2)")
    args = parser.parse_args()
    summary = train_main(args.judgments, args.out, args.workers, args.gpu, args.epochs, base_model=args.base_model,
                         max_pairs=args.max_pairs)
    print(json.dumps({k: v for k, v in summary.items() if k != "trained_query_hashes"}, indent=2))


if __name__ == "__main__":
    main()
