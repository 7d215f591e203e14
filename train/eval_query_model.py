"""Evaluate the fine-tuned intent or demand model on the held-out queries against two baselines.

    python -m train.eval_query_model intent [--model-dir artifacts/models] [--json intent_eval.json]
    (the CLI: shopsense eval intent|demand --json PATH calls eval_main)

In one run, on the held-out split of train/query_data.py (labels from the weak-supervision rules
WITH the judged-relevant products as evidence):

- model:  the exported classifier (argmax for intent, probability >= 0.5 per demand slot);
- rules:  the same rules on the raw query text alone (what a rule system sees when serving);
- logreg: logistic regression on frozen all-MiniLM-L6-v2 vectors, fit on the training split.

Reports per-class precision/recall/F1, micro and macro F1, and the held-out queries the model
labels exactly right while the rules get them wrong (and the reverse), with examples.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from shopsense.query_labels import Lexicons, QueryLabeller
from shopsense.query_models import TASK_LABELS, QueryClassifier
from train.query_data import DEFAULT_OUT as DEFAULT_DATASET, lexicons_path, load_dataset

EXAMPLES = 25


def f1_report(tp, predicted_pos, true_pos, labels: list[str]) -> dict:
    """Per-class precision/recall/F1 and micro/macro F1 from per-class counts (for one-hot intent rows micro F1
    is the accuracy)."""
    tp, predicted_pos, true_pos = (np.asarray(x, dtype=float) for x in (tp, predicted_pos, true_pos))
    precision = np.divide(tp, predicted_pos, out=np.zeros_like(tp), where=predicted_pos > 0)
    recall = np.divide(tp, true_pos, out=np.zeros_like(tp), where=true_pos > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp), where=precision + recall > 0)
    micro_denominator = predicted_pos.sum() + true_pos.sum()
    return {"per_class": {label: {"precision": round(float(p), 4), "recall": round(float(r), 4),
                                  "f1": round(float(f), 4), "support": int(s)}
                          for label, p, r, f, s in zip(labels, precision, recall, f1, true_pos)},
            "micro_f1": round(float(2 * tp.sum() / micro_denominator) if micro_denominator else 0.0, 4),
            "macro_f1": round(float(f1.mean()), 4)}


def score(truth: np.ndarray, predicted: np.ndarray, labels: list[str]) -> dict:
    """f1_report for (n, k) 0/1 indicator matrices."""
    return f1_report((truth * predicted).sum(0), predicted.sum(0), truth.sum(0), labels)


def indicators(frame, task: str) -> np.ndarray:
    labels = TASK_LABELS[task]
    if task == "intent":
        return np.eye(len(labels))[[labels.index(i) for i in frame["intent"]]]
    return np.array([[float(label in set(d)) for label in labels] for d in frame["demand"]]).reshape(-1, len(labels))


def rules_on_text(queries: list[str], lexicons: Lexicons, task: str) -> np.ndarray:
    labeller = QueryLabeller(lexicons)
    labels = TASK_LABELS[task]
    rows = []
    for query in queries:
        result = labeller.label(query)
        chosen = {result.intent} if task == "intent" else set(result.demand)
        rows.append([float(label in chosen) for label in labels])
    return np.array(rows).reshape(-1, len(labels))


def logistic_regression(train, heldout, task: str) -> np.ndarray:
    """Logistic regression (one per demand slot) on frozen sentence-encoder vectors of the query texts."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    from shopsense.config import EncoderSettings
    from shopsense.encoders import build_encoder

    encoder = build_encoder(EncoderSettings(backend="sentence-transformers"))
    x_train, x_heldout = encoder.encode(train["query"].tolist()), encoder.encode(heldout["query"].tolist())
    y_train = indicators(train, task)
    if task == "intent":
        model = LogisticRegression(max_iter=2000).fit(x_train, y_train.argmax(1))
        probs = np.zeros((len(heldout), y_train.shape[1]))
        probs[:, model.classes_] = model.predict_proba(x_heldout)
        return np.eye(y_train.shape[1])[probs.argmax(1)]
    # A slot with no positive training row can only be predicted absent.
    present = y_train.sum(0) > 0
    predicted = np.zeros((len(heldout), y_train.shape[1]))
    model = OneVsRestClassifier(LogisticRegression(max_iter=2000)).fit(x_train, y_train[:, present])
    predicted[:, present] = model.predict(x_heldout)
    return predicted


def model_predictions(model_dir: Path, queries: list[str], task: str, backend: str) -> np.ndarray:
    classifier = QueryClassifier(model_dir, backend=backend)
    if classifier.labels != TASK_LABELS[task]:
        raise ValueError(f"{model_dir} holds labels {classifier.labels}, not the {task} labels {TASK_LABELS[task]}")
    probs = classifier.predict(queries)
    if task == "intent":
        return np.eye(probs.shape[1])[probs.argmax(1)]
    return (probs >= 0.5).astype(float)


def _names(row: np.ndarray, labels: list[str]) -> list[str]:
    return [label for label, on in zip(labels, row) if on]


def disagreements(queries, truth, model, rules, labels) -> dict:
    """Held-out queries the model gets exactly right and the rules do not, and the reverse."""
    model_right, rules_right = (model == truth).all(1), (rules == truth).all(1)

    def examples(mask):
        return [{"query": q, "label": _names(t, labels), "model": _names(m, labels), "rules": _names(r, labels)}
                for q, t, m, r, keep in zip(queries, truth, model, rules, mask) if keep][:EXAMPLES]

    return {"model_right_rules_wrong": int((model_right & ~rules_right).sum()),
            "rules_right_model_wrong": int((rules_right & ~model_right).sum()),
            "examples_model_right_rules_wrong": examples(model_right & ~rules_right),
            "examples_rules_right_model_wrong": examples(rules_right & ~model_right)}


def eval_main(task: str, model_dir: str | Path = "artifacts/models", json_path: str | Path | None = None, *,
              data_path: str | Path = DEFAULT_DATASET, backend: str = "torch") -> dict:
    """Score model, rules and logreg on the held-out split; write the report to json_path when given."""
    if task not in TASK_LABELS:
        raise ValueError(f"unknown task {task!r}: choose one of {sorted(TASK_LABELS)}")
    model_dir = Path(model_dir)
    model_dir = model_dir / task if (model_dir / task / "config.json").exists() else model_dir
    frame = load_dataset(data_path)
    train, heldout = frame[frame["split"] == "train"], frame[frame["split"] == "heldout"]
    labels, queries = TASK_LABELS[task], heldout["query"].tolist()
    truth = indicators(heldout, task)
    model = model_predictions(model_dir, queries, task, backend)
    rules = rules_on_text(queries, Lexicons.from_json(lexicons_path(data_path)), task)
    logreg = logistic_regression(train, heldout, task)
    report = {"task": task, "model_dir": str(model_dir), "dataset": str(data_path), "heldout_queries": len(heldout),
              "train_queries": len(train),
              "label_support": {label: int(n) for label, n in zip(labels, truth.sum(0))},
              "model": score(truth, model, labels), "rules_on_text": score(truth, rules, labels),
              "logreg_frozen_encoder": score(truth, logreg, labels),
              **disagreements(queries, truth, model, rules, labels)}
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(report, indent=2))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", choices=sorted(TASK_LABELS))
    parser.add_argument("--model-dir", default="artifacts/models")
    parser.add_argument("--json", default=None)
    parser.add_argument("--data", default=str(DEFAULT_DATASET))
    args = parser.parse_args()
    report = eval_main(args.task, args.model_dir, args.json, data_path=args.data)
    for system in ("model", "rules_on_text", "logreg_frozen_encoder"):
        print(f"{system:24s} micro F1 {report[system]['micro_f1']:.3f}  macro F1 {report[system]['macro_f1']:.3f}")
    print(f"model right, rules wrong: {report['model_right_rules_wrong']}; "
          f"rules right, model wrong: {report['rules_right_model_wrong']}")


if __name__ == "__main__":
    main()
