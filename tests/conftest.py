"""Session fixtures, each started once: the bundled demo catalogue indexed, a real redis-server, Ray,
the intent/demand models trained through Ray Train on the committed query fixture, and the Serve app
(vLLM encoder and classifiers, SQLite store) for every end-to-end test."""
from __future__ import annotations

import os
import socket

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


@pytest.fixture(scope="session")
def query_models(ray_session, tmp_path_factory):
    """Intent trained for one epoch, then resumed for a second; demand for one epoch; 2 Ray Train workers each,
    on 128 of the bundled labelled queries (real ESCI and WANDS queries labelled by train/query_data.py)."""
    from train.train_query_model import train_main

    out = tmp_path_factory.mktemp("models")
    first = train_main("intent", workers=2, epochs=1, out=out, subset=128, data_path=QUERY_DATA)
    resumed = train_main("intent", workers=2, epochs=2, out=out, subset=128, data_path=QUERY_DATA)
    demand = train_main("demand", workers=2, epochs=1, out=out, subset=128, data_path=QUERY_DATA)
    return {"dir": out, "intent_first": first, "intent_resumed": resumed, "demand": demand}


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
