"""Session fixtures: the bundled demo catalogue indexed once, a real redis-server, and the Serve app
(Ray + vLLM encoder + SQLite) started once for every end-to-end test."""
from __future__ import annotations

import os
import socket

import httpx
import pytest

from shopsense.config import Settings
from shopsense.datasets import DEMO_DATA
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
def serve_app(artifacts, tmp_path_factory):
    """The real graph: Ray Serve, vLLM encoder, SQLite store, API key on writes; two replicas of
    BehaviorFeatures and Fusion so that freshness is checked across replicas."""
    from serve.local import start, stop

    store = tmp_path_factory.mktemp("store") / "events.sqlite"
    overrides = {"artifacts_dir": str(artifacts), "store": {"backend": "sqlite", "sqlite_path": str(store)},
                 "encoder": {"backend": "vllm"}, "api": {"api_key": API_KEY, "max_batch_events": 50}}
    url = start(overrides, port=free_port(), replicas={"BehaviorFeatures": 2, "Fusion": 2}, num_cpus=4)
    yield {"url": url, "settings": Settings.load(overrides=overrides)}
    stop()


@pytest.fixture(scope="session")
def client(serve_app):
    with httpx.Client(base_url=serve_app["url"], timeout=120, headers={"X-API-Key": API_KEY}) as c:
        yield c


def pytest_collection_modifyitems(config, items):
    # End-to-end tests share one Serve app; run them last so the quick tests report first.
    items.sort(key=lambda item: "serve_app" in getattr(item, "fixturenames", ()))


os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
