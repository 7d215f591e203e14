"""Session fixtures, each started once: the bundled demo catalogue indexed, a real redis-server, Ray,
the intent/demand models trained through Ray Train on the committed query fixture, and the Serve app
(vLLM encoder and classifiers, SQLite store) for every end-to-end test."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from shopsense.config import Settings
from shopsense.datasets import DEMO_DATA, QUERY_DATA
from shopsense.encoders import SentenceTransformersEncoder, default_model_path
from shopsense.index import CatalogIndex
from shopsense.catalog import load_catalog, read_table

pytest_plugins = ["redis_server"]  # the real redis-server fixture

API_KEY = "test-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def st_encoder():
    return SentenceTransformersEncoder(default_model_path())


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory, st_encoder):
    """The bundled demo catalogue, encoded once (sentence-transformers gives vLLM's vectors, see test_encoders)."""
    directory = tmp_path_factory.mktemp("artifacts")
    products = load_catalog(DEMO_DATA / "items.parquet")
    popularity = read_table(DEMO_DATA / "interactions.parquet")["item_id"].astype(str).value_counts()
    CatalogIndex.build(products, st_encoder, popularity).save(directory / "catalog")
    return directory


@pytest.fixture(scope="session")
def demo_index(artifacts):
    return CatalogIndex.load(artifacts / "catalog")


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole session (Ray Train jobs and the Serve app share it). Four logical
    CPUs on a two-core machine: the small deployments mostly wait on I/O."""
    import ray

    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    yield
    from serve.local import stop

    stop()


def train_intent_until_killed(out, subset: int) -> dict:
    """Run `python -m train.train_query_model intent` as its own driver on this session's Ray and SIGKILL its
    process group as soon as epoch 1's checkpoint is on record, that is, in the middle of epoch 2."""
    import ray

    command = [sys.executable, "-m", "train.train_query_model", "intent", "--workers", "2", "--epochs", "2",
               "--subset", str(subset), "--out", str(out), "--data", str(QUERY_DATA)]
    env = {**os.environ, "RAY_ADDRESS": ray.get_runtime_context().gcs_address}
    snapshot = out / "runs" / "intent" / "checkpoint_manager_snapshot.json"
    with open(out / "killed-run.log", "wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 900
        while not (snapshot.exists() and json.loads(snapshot.read_text() or "{}").get("latest_checkpoint_result")):
            if process.poll() is not None or time.time() > deadline:
                process.kill()
                raise RuntimeError(f"the training run ended before it could be killed; see {out / 'killed-run.log'}")
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)
        returncode = process.wait()
    recorded = json.loads(snapshot.read_text())["latest_checkpoint_result"]["metrics"]
    return {"returncode": returncode, "checkpoint_metrics": recorded}


@pytest.fixture(scope="session")
def query_models(ray_session, tmp_path_factory):
    """Intent killed in the middle of its second epoch, then resumed; demand for one epoch; 2 Ray Train workers
    each, on 128 of the bundled labelled queries (real ESCI and WANDS queries labelled by train/query_data.py)."""
    from train.train_query_model import train_main

    out = tmp_path_factory.mktemp("models")
    killed = train_intent_until_killed(out, subset=128)
    resumed = train_main("intent", workers=2, epochs=2, out=out, subset=128, data_path=QUERY_DATA)
    demand = train_main("demand", workers=2, epochs=1, out=out, subset=128, data_path=QUERY_DATA)
    return {"dir": out, "intent_killed": killed, "intent_resumed": resumed, "demand": demand}


@pytest.fixture(scope="session")
def serve_app(artifacts, query_models, tmp_path_factory):
    """The real graph: Ray Serve, vLLM encoder and classifiers, SQLite store, API key on writes; two replicas
    of BehaviorFeatures and Fusion so that freshness is checked across replicas."""
    from serve.local import start

    store = tmp_path_factory.mktemp("store") / "events.sqlite"
    overrides = {"artifacts_dir": str(artifacts), "store": {"backend": "sqlite", "sqlite_path": str(store)},
                 "encoder": {"backend": "vllm"}, "api": {"api_key": API_KEY, "max_batch_events": 50},
                 "query_models": {"intent_path": str(query_models["dir"] / "intent"),
                                  "demand_path": str(query_models["dir"] / "demand")}}
    replicas = {"BehaviorFeatures": 2, "Fusion": 2}
    url = start(overrides, port=free_port(), replicas=replicas, models_version="1")
    yield {"url": url, "settings": Settings.load(overrides=overrides), "overrides": overrides, "replicas": replicas}


@pytest.fixture(scope="session")
def client(serve_app):
    with httpx.Client(base_url=serve_app["url"], timeout=120, headers={"X-API-Key": API_KEY}) as c:
        yield c


def pytest_collection_modifyitems(config, items):
    # Quick tests first, then the Ray Train runs, then the end-to-end tests on the shared Serve app.
    def stage(item):
        names = getattr(item, "fixturenames", ())
        return 2 if "serve_app" in names else 1 if "query_models" in names or "ray_session" in names else 0

    items.sort(key=stage)


os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
