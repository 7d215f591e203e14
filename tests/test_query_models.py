"""A short real training run of the query models through Ray Train (the session fixture `query_models`
in conftest.py: 2 workers, the bundled labelled queries), its export and resume. vLLM-vs-PyTorch parity
of the exported checkpoints is checked where vLLM serves them, in the Encoder deployment (test_e2e.py).

    .venv/bin/python -m pytest tests/test_query_models.py -q
"""
from __future__ import annotations

import json
import signal

import numpy as np
import pytest

from shopsense.query_models import DEMAND_LABELS, INTENT_LABELS, QueryClassifier

QUERIES = ["dewalt 20v cordless drill", "best robot vacuum vs roomba", "red area rug 5x7", "kids rain boots",
           "pack of 12 aa batteries", "cheap patio furniture", "solid oak dining table", "lamps"]


@pytest.fixture(scope="module")
def runs(query_models):
    return query_models["dir"], query_models["intent_killed"], query_models["intent_resumed"], query_models["demand"]


def test_training_reports_metrics_and_exports_a_classifier(runs):
    out, _, _, demand = runs
    assert demand["resumed_from_epoch"] == 0 and [h["epoch"] for h in demand["history"]] == [1]
    metrics = demand["history"][0]
    assert metrics["workers"] == 2 and metrics["examples_per_s"] > 0 and np.isfinite(metrics["val_loss"])
    for task, labels, problem in (("intent", INTENT_LABELS, "single_label_classification"),
                                  ("demand", DEMAND_LABELS, "multi_label_classification")):
        config = json.loads((out / task / "config.json").read_text())
        assert config["architectures"] == ["BertForSequenceClassification"] and config["problem_type"] == problem
        assert QueryClassifier(out / task).labels == labels
        assert (out / task / "tokenizer.json").exists()
    assert (out / "runs" / "intent").is_dir()


def test_a_run_killed_mid_epoch_resumes_from_its_latest_checkpoint(runs):
    _, killed, resumed, _ = runs
    assert killed["returncode"] == -signal.SIGKILL and killed["checkpoint_metrics"]["epoch"] == 1
    assert resumed["resumed_from_epoch"] == 1
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]
    # epoch 1 came from the killed run's checkpoint, not a re-run
    assert resumed["history"][0]["val_loss"] == killed["checkpoint_metrics"]["val_loss"]


def test_torch_probabilities_are_distributions(runs):
    out = runs[0]
    intent = QueryClassifier(out / "intent").predict(QUERIES)
    demand = QueryClassifier(out / "demand").predict(QUERIES)
    assert intent.shape == (len(QUERIES), 3) and np.allclose(intent.sum(1), 1, atol=1e-5)
    assert demand.shape == (len(QUERIES), 7) and ((demand > 0) & (demand < 1)).all()
