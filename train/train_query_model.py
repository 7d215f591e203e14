"""Fine-tune the intent or the demand model with Ray Train and export it for the Encoder deployment.

    python -m train.train_query_model intent --workers 2 [--gpu] [--epochs 3] [--out artifacts/models]
                                             [--subset 2000] [--lora] [--lr 1e-4] [--base-model DIR]
    (the CLI: shopsense train intent|demand ... calls train_main)

A `BertForSequenceClassification` is fine-tuned from the packaged all-MiniLM-L6-v2 weights (or any
local HF model) on the labelled queries of train/query_data.py: softmax over INTENT_LABELS for
intent, one sigmoid per DEMAND_LABELS slot for demand. `TorchTrainer` runs the loop data-parallel
on N workers (GPU or CPU; bf16 autocast on GPU only). Every epoch reports its metrics and a
checkpoint; the run lives in <out>/runs/<task>, and running the same command again after an
interruption resumes from the latest checkpoint there. Training stops early when the held-out
F1 (the mean of micro and macro F1) has not improved for `patience` epochs; the best checkpoint is exported (LoRA merged into
the weights) with its tokenizer to <out>/<task>, a directory vLLM's pooling runner serves with
`classify` (shopsense.query_models.QueryClassifier).
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

from shopsense.encoders import default_model_path
from shopsense.query_models import MAX_QUERY_TOKENS, TASK_LABELS
from train.query_data import DEFAULT_OUT as DEFAULT_DATASET, load_dataset

SEED = 13


def select_rows(frame, subset: int | None) -> tuple:
    """(train rows, held-out rows); a subset keeps `subset` training rows and a quarter as many held-out ones."""
    train = frame[frame["split"] == "train"]
    heldout = frame[frame["split"] == "heldout"]
    if subset:
        train = train.sample(n=min(subset, len(train)), random_state=SEED)
        heldout = heldout.sample(n=min(max(64, subset // 4), len(heldout)), random_state=SEED)
    return train, heldout


def targets(frame, task: str) -> list:
    """Class index per row (intent) or a multi-hot row per query (demand)."""
    labels = TASK_LABELS[task]
    if task == "intent":
        return [labels.index(i) for i in frame["intent"]]
    return [[float(label in set(d)) for label in labels] for d in frame["demand"]]


def class_weights(train_targets: list, task: str) -> list[float]:
    """Loss weights that keep rare classes from being ignored: per class for intent (softmax), the positive
    weight of each slot for demand (sigmoid); the square root of the imbalance, capped at 10."""
    labels = TASK_LABELS[task]
    if task == "intent":
        counts = np.bincount(train_targets, minlength=len(labels)).astype(float)
        weights = np.sqrt(len(train_targets) / (len(labels) * np.maximum(counts, 1)))
    else:
        positives = np.asarray(train_targets).sum(0)
        weights = np.sqrt((len(train_targets) - positives) / np.maximum(positives, 1))
    return np.clip(weights, 0.0, 10.0).round(4).tolist()


def build_model(task: str, base_model: str, lora: bool):
    from transformers import BertForSequenceClassification

    labels = TASK_LABELS[task]
    # problem_type tells vLLM which activation its classify applies (softmax or sigmoid).
    model = BertForSequenceClassification.from_pretrained(
        base_model, num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        problem_type="single_label_classification" if task == "intent" else "multi_label_classification")
    if lora:
        from peft import LoraConfig, TaskType, get_peft_model

        model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=8, lora_alpha=16, lora_dropout=0.1,
                                                 target_modules=["query", "value"]))
    return model


def unwrap(model):
    """The model inside a DistributedDataParallel wrapper (prepare_model wraps only with several workers)."""
    return model.module if hasattr(model, "module") else model


def all_reduce(values: list[float], op: str = "sum") -> np.ndarray:
    import torch
    import torch.distributed as dist

    tensor = torch.tensor(values, dtype=torch.float64)
    if dist.is_available() and dist.is_initialized():
        if dist.get_backend() == "nccl":   # GPU workers: NCCL reduces tensors on the GPU only
            tensor = tensor.to(torch.device("cuda", torch.cuda.current_device()))
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
    return tensor.cpu().numpy()


def start_worker(config: dict) -> tuple[int, int]:
    """Seed this Ray Train worker and give it its share of the CPU threads; returns (rank, world size)."""
    import ray.train
    import torch

    torch.manual_seed(SEED)
    if not config["gpu"]:
        torch.set_num_threads(config["cpus_per_worker"])
    context = ray.train.get_context()
    return context.get_world_rank(), context.get_world_size()


def fit_on_workers(loop, config: dict, workers: int, gpu: bool, run_config):
    """Run `loop` on `workers` TorchTrainer workers (a GPU each, or config["cpus_per_worker"] CPUs each) and
    return the Result; a local Ray is started for the call when none is running."""
    import ray
    from ray.train import ScalingConfig
    from ray.train.torch import TorchTrainer

    started_ray = not ray.is_initialized()
    if started_ray:
        ray.init(include_dashboard=False, log_to_driver=True)
    try:
        resources = {"CPU": 1, "GPU": 1} if gpu else {"CPU": config["cpus_per_worker"]}
        return TorchTrainer(loop, train_loop_config=config, run_config=run_config,
                            scaling_config=ScalingConfig(num_workers=workers, use_gpu=gpu,
                                                         resources_per_worker=resources)).fit()
    finally:
        if started_ray:
            ray.shutdown()


def train_loop_per_worker(config: dict) -> None:
    """One Ray Train worker: resume if a checkpoint exists, then train, evaluate, report and checkpoint per epoch."""
    import ray.train
    import ray.train.torch
    import torch
    from torch.utils.data import DataLoader
    from transformers import AutoTokenizer

    from train.eval_query_model import f1_report

    rank, world = start_worker(config)
    task, multi_label = config["task"], config["task"] == "demand"
    tokenizer = AutoTokenizer.from_pretrained(config["base_model"])

    def collate(batch):
        texts, labels = zip(*batch)
        encoded = tokenizer(list(texts), padding=True, truncation=True, max_length=MAX_QUERY_TOKENS,
                            return_tensors="pt")
        encoded["labels"] = torch.tensor(labels, dtype=torch.float32 if multi_label else torch.long)
        return encoded

    train_data = list(zip(config["train_texts"], config["train_targets"]))
    loader = ray.train.torch.prepare_data_loader(
        DataLoader(train_data, batch_size=config["batch_size"], shuffle=True, collate_fn=collate))
    # The held-out rows are split by hand (no sampler padding) so the summed counts cover each query once.
    heldout = list(zip(config["heldout_texts"], config["heldout_targets"]))[rank::world]
    heldout_loader = DataLoader(heldout, batch_size=128, collate_fn=collate)

    model = build_model(task, config["base_model"], config["lora"])
    state, start_epoch = None, 0
    checkpoint = ray.train.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as directory:
            state = torch.load(Path(directory) / "state.pt", map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        start_epoch = state["epoch"]
    model = ray.train.torch.prepare_model(model)
    device = ray.train.torch.get_device()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config["lr"],
                                  weight_decay=0.01)
    total_steps = max(1, config["epochs"] * len(loader))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1.0 - step / total_steps))
    history, best_score, stale_epochs = [], -1.0, 0
    if state:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history, best_score, stale_epochs = state["history"], state["best_score"], state["stale_epochs"]
    use_amp = config["gpu"]  # bf16 autocast on GPU only: the CPU path stays float32
    labels = TASK_LABELS[task]
    weights = torch.tensor(config["class_weights"], dtype=torch.float32, device=device)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=weights) if multi_label else \
        torch.nn.CrossEntropyLoss(weight=weights)

    for epoch in range(start_epoch, config["epochs"]):
        if stale_epochs >= config["patience"]:
            break
        if world > 1:
            loader.sampler.set_epoch(epoch)
        model.train()
        started, seen, loss_sum = time.perf_counter(), 0, 0.0
        for batch in loader:
            gold = batch.pop("labels")
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_amp):
                loss = loss_fn(model(**batch).logits.float(), gold)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            seen += len(gold)
            loss_sum += loss.item() * len(gold)
        train_seconds = time.perf_counter() - started
        seen_all, loss_all = all_reduce([seen, loss_sum])
        (slowest,) = all_reduce([train_seconds], op="max")

        model.eval()
        val_loss, truth, predicted = 0.0, [], []
        with torch.inference_mode():
            for batch in heldout_loader:
                batch = batch.to(device)
                gold = batch.pop("labels")
                with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_amp):
                    logits = model(**batch).logits.float()
                val_loss += loss_fn(logits, gold).item() * len(gold)
                logits = logits.cpu()
                if multi_label:
                    truth.append(gold.cpu().numpy())
                    predicted.append((logits > 0).numpy().astype(float))
                else:
                    truth.append(np.eye(len(labels))[gold.cpu().numpy()])
                    predicted.append(np.eye(len(labels))[logits.argmax(-1).numpy()])
        # Summed per-class counts from every worker give exact held-out F1s.
        truth = np.concatenate(truth) if truth else np.zeros((0, len(labels)))
        predicted = np.concatenate(predicted) if predicted else np.zeros((0, len(labels)))
        counts = all_reduce([val_loss, len(truth)] + list((truth * predicted).sum(0)) + list(predicted.sum(0))
                             + list(truth.sum(0)))
        k = len(labels)
        tp, pred_pos, true_pos = counts[2:2 + k], counts[2 + k:2 + 2 * k], counts[2 + 2 * k:]
        scores = f1_report(tp, pred_pos, true_pos, labels)
        metrics = {"epoch": epoch + 1, "train_loss": loss_all / max(seen_all, 1), "val_loss": counts[0] / counts[1],
                   "val_micro_f1": scores["micro_f1"], "val_macro_f1": scores["macro_f1"],
                   # what early stopping and the export select on: the held-out loss rose here while both
                   # F1s still improved (it tracks confidence more than decisions)
                   "val_f1": (scores["micro_f1"] + scores["macro_f1"]) / 2,
                   "examples_per_s": seen_all / slowest, "train_seconds": slowest, "workers": world,
                   "resumed_from_epoch": start_epoch}
        history.append(metrics)
        if metrics["val_f1"] > best_score + 1e-4:
            best_score, stale_epochs = metrics["val_f1"], 0
        else:
            stale_epochs += 1
        metrics["stop_early"] = stale_epochs >= config["patience"]
        with tempfile.TemporaryDirectory() as directory:
            checkpoint = None
            if rank == 0:
                torch.save({"model": unwrap(model).state_dict(), "optimizer": optimizer.state_dict(),
                            "scheduler": scheduler.state_dict(), "epoch": epoch + 1, "history": history,
                            "best_score": best_score, "stale_epochs": stale_epochs}, Path(directory) / "state.pt")
                checkpoint = ray.train.Checkpoint.from_directory(directory)
                print(json.dumps(metrics))
            ray.train.report(metrics, checkpoint=checkpoint)


def _load_state(checkpoint) -> dict:
    import torch

    with checkpoint.as_directory() as directory:
        return torch.load(Path(directory) / "state.pt", map_location="cpu", weights_only=False)


def export(checkpoint, task: str, base_model: str, lora: bool, export_dir: Path, info: dict) -> None:
    """Write the checkpoint's weights as a plain HF classifier (LoRA merged) + tokenizer; swap it in at the end
    so a loader never sees a half-written directory."""
    from transformers import AutoTokenizer

    state = _load_state(checkpoint)
    model = build_model(task, base_model, lora)
    model.load_state_dict(state["model"])
    if lora:
        model = model.merge_and_unload()
    staging = export_dir.with_name(f".{export_dir.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    AutoTokenizer.from_pretrained(base_model).save_pretrained(staging)
    (staging / "training.json").write_text(json.dumps({**info, "exported_epoch": state["epoch"]}, indent=2))
    swap_in(staging, export_dir)


def swap_in(staging: Path, export_dir: Path) -> None:
    """Replace export_dir with the finished staging directory by renames, never leaving a half-written one."""
    previous = export_dir.with_name(f".{export_dir.name}.previous")
    shutil.rmtree(previous, ignore_errors=True)
    if export_dir.exists():
        export_dir.rename(previous)
    staging.rename(export_dir)
    shutil.rmtree(previous, ignore_errors=True)


def train_main(task: str, workers: int = 2, gpu: bool = False, epochs: int = 3, out: str | Path = "artifacts/models",
               subset: int | None = None, lora: bool = False, *, data_path: str | Path = DEFAULT_DATASET,
               base_model: str | None = None, batch_size: int = 32, lr: float | None = None,
               patience: int = 2) -> dict:
    """Train `task` ("intent" | "demand") on `workers` Ray Train workers and export it to <out>/<task>.

    Returns the export's training.json plus export_dir: the per-epoch history, the epoch this run resumed from
    (0: a fresh run), the exported (best) epoch.
    """
    from ray.train import CheckpointConfig, FailureConfig, RunConfig

    if task not in TASK_LABELS:
        raise ValueError(f"unknown task {task!r}: choose one of {sorted(TASK_LABELS)}")
    out = Path(out).resolve()
    base_model = base_model or default_model_path()
    train_rows, heldout_rows = select_rows(load_dataset(data_path), subset)
    cpus_per_worker = max(1, (os.cpu_count() or 1) // workers)
    config = {"task": task, "base_model": base_model, "lora": lora, "gpu": gpu, "epochs": epochs,
              "batch_size": batch_size, "lr": lr or (5e-4 if lora else 2e-4), "patience": patience,
              "cpus_per_worker": cpus_per_worker,
              "train_texts": train_rows["query"].tolist(), "train_targets": targets(train_rows, task),
              "class_weights": class_weights(targets(train_rows, task), task),
              "heldout_texts": heldout_rows["query"].tolist(), "heldout_targets": targets(heldout_rows, task)}
    run_name = f"{task}-lora" if lora else task  # a LoRA checkpoint cannot resume a full fine-tune, nor back
    result = fit_on_workers(
        train_loop_per_worker, config, workers, gpu,
        RunConfig(name=run_name, storage_path=str(out / "runs"), failure_config=FailureConfig(max_failures=0),
                  checkpoint_config=CheckpointConfig(num_to_keep=1, checkpoint_score_attribute="val_f1",
                                                     checkpoint_score_order="max")))
    best = result.get_best_checkpoint(metric="val_f1", mode="max") or result.checkpoint
    if best is None:
        raise RuntimeError(f"training of {task} reported no checkpoint (run dir {out / 'runs' / run_name})")
    info = {"task": task, "base_model": base_model, "lora": lora, "workers": workers, "gpu": gpu,
            "lr": config["lr"], "class_weights": config["class_weights"], "batch_size_per_worker": batch_size,
            "epochs": epochs,
            "train_examples": len(train_rows), "heldout_examples": len(heldout_rows), "dataset": str(data_path),
            "history": _load_state(result.checkpoint)["history"],
            "resumed_from_epoch": (result.metrics or {}).get("resumed_from_epoch", epochs)}
    export(best, task, base_model, lora, out / task, info)
    return {**json.loads((out / task / "training.json").read_text()), "export_dir": str(out / task)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", choices=sorted(TASK_LABELS))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--gpu", action="store_true")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", default="artifacts/models")
    parser.add_argument("--subset", type=int, default=None)
    parser.add_argument("--lora", action="store_true")
    parser.add_argument("--data", default=str(DEFAULT_DATASET))
    parser.add_argument("--lr", type=float, default=None, help="default 2e-4 (full fine-tune), 5e-4 (LoRA)")
    parser.add_argument("--base-model", help="a local HF model directory (default: the packaged all-MiniLM-L6-v2)")
    args = parser.parse_args()
    summary = train_main(args.task, args.workers, args.gpu, args.epochs, args.out, args.subset, args.lora,
                         data_path=args.data, base_model=args.base_model, lr=args.lr)
    print(json.dumps({k: summary[k] for k in ("export_dir", "resumed_from_epoch", "exported_epoch", "history")},
                     indent=2))


if __name__ == "__main__":
    main()
