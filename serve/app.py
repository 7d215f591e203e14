"""The shopsense Ray Serve graph: Ingress -> (Encoder, BehaviorFeatures) -> Fusion -> Ranking.

Ingress (the HTTP API) lives in serve/ingress.py; the other four deployments are here.

    serve deploy serve/config.yaml                 # on a running Ray cluster
    shopsense serve                                # locally: ray.init() + the same config

Each class is a thin deployment over the domain package (shopsense.pipeline holds the
steps; the in-process `Recommender` runs the very same ones). `build_app(args)` is the
Serve application builder named in config.yaml; `args` are {"config": settings YAML path,
"settings": nested overrides} (see shopsense/config.py).
"""
from __future__ import annotations

import asyncio
import functools
import time

from ray import serve
from ray.serve.handle import DeploymentHandle

from serve.ingress import Ingress
from shopsense.config import Settings
from shopsense.index import CatalogIndex
from shopsense.pipeline import fuse_profile, ingest, load_behavior, profile_record, rank_and_log
from shopsense.privacy import pseudonymize
from shopsense.ranking import build_ranker
from shopsense.schemas import Event, RecommendRequest
from shopsense.stores import open_store
from shopsense.text_models import Encoded, TextModels, concat, load_classifiers


def load_settings(args: dict) -> Settings:
    return Settings.load(args.get("config"), args.get("settings"))


@serve.deployment
class Encoder:
    """Hosts the text models: the sentence encoder and the intent/demand classifiers (vLLM pooling runner
    by default). Single texts from concurrent requests are gathered into one batch by @serve.batch, and
    the blocking model calls run off the event loop.

    New classifier checkpoints load without a restart: redeploy with a new `user_config`
    {"models_version": ...} (serve deploy, or serve.local.deploy(..., models_version=...)); the replica keeps serving with
    the old models while the new ones load, then swaps them in one assignment."""

    def __init__(self, args: dict):
        self.settings = load_settings(args)
        self.models = TextModels.load(self.settings)
        self.models_version = None
        self._encode_batch.set_max_batch_size(self.settings.encoder.batch_size)
        self._encode_batch.set_batch_wait_timeout_s(self.settings.encoder.batch_wait_s)

    async def reconfigure(self, user_config: dict) -> None:
        version = user_config.get("models_version")
        if self.models_version is not None and version != self.models_version:
            new = await asyncio.to_thread(load_classifiers, self.settings)  # served with the old ones meanwhile
            for classifier in (await asyncio.to_thread(self.models.swap_classifiers, new)).values():
                classifier.close()
        self.models_version = version

    @serve.batch(max_batch_size=64, batch_wait_timeout_s=0.005)
    async def _encode_batch(self, texts: list[str]) -> list[Encoded]:
        encoded = await asyncio.to_thread(self.models.encode, texts)
        return [encoded.rows(i, i + 1) for i in range(len(texts))]

    async def encode(self, texts: list[str]) -> Encoded:
        if not texts:
            return self.models.encode([])
        return functools.reduce(concat, await asyncio.gather(*(self._encode_batch(t) for t in texts)))

    def info(self) -> dict:
        return {"backend": self.models.encoder.name, "dim": self.models.encoder.dim,
                "classifiers": sorted(self.models.classifiers), "models_version": self.models_version}


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

    async def fuse(self, user_key: str, query: Encoded | None, summary):
        searches = await self.encoder.encode.remote(summary.searches)
        texts = searches if query is None else concat(query, searches)
        profile = fuse_profile(texts, query is not None, summary)
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
    """The application builder of serve/config.yaml; per-deployment options come from the config's
    `deployments` section, so changing them never changes the deployments' init args."""
    encoder = Encoder.bind(args)
    return Ingress.bind(args, encoder, BehaviorFeatures.bind(args), Fusion.bind(args, encoder), Ranking.bind(args))
