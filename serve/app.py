"""The shopsense Ray Serve graph: Ingress -> (Encoder, BehaviorFeatures) -> Fusion -> Ranking.

Ingress (the HTTP API) lives in serve/ingress.py; the other four deployments are here.

    serve deploy serve/config.yaml                 # on a running Ray cluster
    shopsense serve                                # locally: ray.init() + the same config

Each class is a thin deployment over the domain package (shopsense.pipeline holds the
steps; the in-process `Recommender` runs the very same ones). `build_app(args)` is the
Serve application builder named in config.yaml; `args` are {"config": YAML path,
"settings": nested overrides, "deployment_options": {name: Serve options}}.
"""
from __future__ import annotations

import asyncio
import time

import numpy as np
from ray import serve
from ray.serve.handle import DeploymentHandle

from serve.ingress import Ingress
from shopsense.config import Settings
from shopsense.encoders import build_encoder
from shopsense.index import CatalogIndex
from shopsense.pipeline import fuse_profile, ingest, load_behavior, profile_record, rank_and_log
from shopsense.privacy import pseudonymize
from shopsense.ranking import build_ranker
from shopsense.schemas import Event, RecommendRequest
from shopsense.stores import open_store


def load_settings(args: dict) -> Settings:
    return Settings.load(args.get("config"), args.get("settings"))


@serve.deployment
class Encoder:
    """Hosts the text model (vLLM pooling runner by default). Single texts from concurrent requests
    are gathered into one batch by @serve.batch; the blocking model call runs off the event loop."""

    def __init__(self, args: dict):
        settings = load_settings(args)
        self.encoder = build_encoder(settings.encoder)
        self._embed_batch.set_max_batch_size(settings.encoder.batch_size)
        self._embed_batch.set_batch_wait_timeout_s(settings.encoder.batch_wait_s)

    @serve.batch(max_batch_size=64, batch_wait_timeout_s=0.005)
    async def _embed_batch(self, texts: list[str]) -> list[np.ndarray]:
        return list(await asyncio.to_thread(self.encoder.encode, texts))

    async def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.encoder.dim), dtype=np.float32)
        return np.stack(await asyncio.gather(*(self._embed_batch(t) for t in texts)))

    def info(self) -> dict:
        return {"backend": self.encoder.name, "dim": self.encoder.dim}


@serve.deployment
class BehaviorFeatures:
    """Reads a shopper's recent events into the behaviour summary; ingests and erases events."""

    def __init__(self, args: dict):
        self.settings = load_settings(args)
        self.store = open_store(self.settings.store)
        self.index = CatalogIndex.load(self.settings.artifacts / "catalog")

    def summarize(self, user_key: str):
        return load_behavior(self.store, self.index, user_key, time.time(), self.settings.profile)

    def ingest(self, events: list[Event]):
        return ingest(self.store, events, lambda user_id: pseudonymize(user_id, self.settings.privacy.pseudonym_key))

    def erase(self, user_key: str) -> int:
        return self.store.erase_user(user_key)


@serve.deployment
class Fusion:
    """Combines the query vector, the encoded search history and the behaviour summary into the profile,
    and persists the profile summary."""

    def __init__(self, args: dict, encoder: DeploymentHandle):
        self.settings = load_settings(args)
        self.encoder = encoder
        self.store = open_store(self.settings.store)
        self.index = CatalogIndex.load(self.settings.artifacts / "catalog")

    async def fuse(self, user_key: str, query_vectors: np.ndarray | None, summary):
        search_vectors = await self.encoder.encode.remote(summary.searches)
        query_vector = query_vectors[0] if query_vectors is not None and len(query_vectors) else None
        profile = fuse_profile(query_vector, search_vectors, summary)
        record = profile_record(summary, profile, self.index, self.settings.profile)
        await asyncio.to_thread(self.store.put_profile, user_key, record)
        return profile, summary, record


@serve.deployment
class Ranking:
    """Retrieves candidates, scores them with the configured ranker, explains and logs the answer."""

    def __init__(self, args: dict):
        self.settings = load_settings(args)
        self.store = open_store(self.settings.store)
        self.index = CatalogIndex.load(self.settings.artifacts / "catalog")
        self.ranker = build_ranker(self.settings.ranking)

    def rank(self, request_id: str, user_key: str, request: RecommendRequest, fused):
        profile, summary, _ = fused
        return rank_and_log(self.store, self.index, self.ranker, self.settings.ranking, request_id, user_key,
                            request, profile, summary)

    def catalog_size(self) -> int:
        return len(self.index)


def build_app(args: dict) -> serve.Application:
    options = args.get("deployment_options", {})

    def bind(deployment, *init_args):
        return deployment.options(**options.get(deployment.name, {})).bind(args, *init_args)

    encoder = bind(Encoder)
    return bind(Ingress, encoder, bind(BehaviorFeatures), bind(Fusion, encoder), bind(Ranking))
