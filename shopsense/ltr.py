"""The learned ranker's artifact: a LightGBM lambdarank model file plus a JSON meta file beside it.

    save_model(booster, "artifacts/models/ranker-search.txt", meta={...})
    model = LTRModel("artifacts/models/ranker-search.txt")
    scores = model.predict(feats)                   # feats: {feature name: array over candidates}
    shares = model.contributions(top_feats)         # {feature: per-row share of the score}, for explanations

The model is re-read whenever its file changes (checked by mtime on each call, a
stat, no read), so a retraining job can replace it under a running service: writes
go to a temporary file that is renamed over the old one, and a reader sees either
the old or the new model, never half of one. Per-row contributions are LightGBM's
SHAP values (`pred_contrib=True`), which sum with the bias to the score.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import lightgbm as lgb
import numpy as np

from shopsense.features import matrix


def meta_path(model_path: str | Path) -> Path:
    return Path(model_path).with_suffix(".json")


def save_model(booster: lgb.Booster, path: str | Path, meta: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for target, write in ((meta_path(path), lambda p: p.write_text(json.dumps(meta, indent=2))),
                          (path, lambda p: booster.save_model(str(p)))):
        tmp = target.with_name(f".tmp.{target.name}")
        write(tmp)
        tmp.replace(target)   # the model file last: its new mtime triggers reloads once both are in place


def load_meta(path: str | Path) -> dict:
    target = meta_path(path)
    return json.loads(target.read_text()) if target.exists() else {}


class LTRModel:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self.booster: lgb.Booster | None = None
        self.meta: dict = {}
        self.reload_if_changed()

    def reload_if_changed(self) -> bool:
        """Load the model if its file is new or changed since the last load; True when it (re)loaded."""
        mtime = os.stat(self.path).st_mtime_ns
        if mtime == self._mtime:
            return False
        with self._lock:
            if mtime != self._mtime:
                self.booster = lgb.Booster(model_file=str(self.path))
                self.meta = load_meta(self.path)
                self._mtime = mtime
        return True

    @property
    def features(self) -> list[str]:
        return self.booster.feature_name()

    def predict(self, feats: dict[str, np.ndarray]) -> np.ndarray:
        self.reload_if_changed()
        return self.booster.predict(matrix(feats, self.features), num_threads=1)

    def contributions(self, feats: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Each feature's additive share of each row's score (the bias column left out)."""
        contrib = self.booster.predict(matrix(feats, self.features), pred_contrib=True, num_threads=1)
        return {name: contrib[:, i] for i, name in enumerate(self.features)}
