"""The learned ranker: a small real training run through Ray Train on the bundled demo shoppers, the
model artifact (load, hot-reload, contributions), and the rankers selectable by config."""
from __future__ import annotations

import os

import lightgbm as lgb
import numpy as np
import pytest

from shopsense.config import RankingSettings, Settings
from shopsense.datasets import DEMO_DATA
from shopsense.features import FEATURES
from shopsense.ltr import LTRModel, load_meta, save_model
from shopsense.ranking import (SIGNAL_REASONS, LearnedRanker, NoopRanker, ShuffleRanker, SimpleRanker, build_ranker,
                               rank)
from train.nextitem_data import NextItemWorld, training_frame
from train.train_ranker import fit_lambdarank, nextitem_params


@pytest.fixture(scope="module")
def world():
    return NextItemWorld.from_directory(DEMO_DATA, Settings.load(), holdout=1)


@pytest.fixture(scope="module")
def trained(world, tmp_path_factory):
    """Fit on the validation world (targets one event back), as the evaluation does."""
    frame = training_frame(world.earlier(), Settings.load(), max_users=400)
    booster, metrics = fit_lambdarank(frame, None, list(FEATURES), nextitem_params(), rounds=30)
    path = tmp_path_factory.mktemp("models") / "ranker-nextitem.txt"
    save_model(booster, path, {"task": "nextitem", "metrics": metrics})
    return path, frame, metrics


def test_ray_train_run_produces_a_working_model(trained):
    path, frame, metrics = trained
    model = LTRModel(path)
    assert model.features == list(FEATURES)
    assert load_meta(path)["task"] == "nextitem"
    group = frame[frame["qid"] == frame["qid"].iloc[0]]
    feats = {name: group[name].to_numpy(np.float32) for name in FEATURES}
    scores = model.predict(feats)
    assert scores.shape == (len(group),) and np.isfinite(scores).all()
    # contributions (SHAP) plus the bias add up to the score
    contributions = model.contributions(feats)
    bias = model.booster.predict(np.column_stack([feats[n] for n in FEATURES]), pred_contrib=True)[:, -1]
    assert np.allclose(sum(contributions.values()) + bias, scores, atol=1e-5)
    # it learned something: the positive ranks above the median candidate in most training groups
    ranks = frame.assign(score=model.predict({n: frame[n].to_numpy(np.float32) for n in FEATURES}))
    ranks["pct"] = ranks.groupby("qid")["score"].rank(pct=True)
    assert ranks.loc[ranks["label"] == 1, "pct"].mean() > 0.7


def test_learned_ranker_serves_with_reasons(world, trained):
    path, _, _ = trained
    settings = Settings.load()
    ranker = LearnedRanker(settings.ranking, paths={"recommend": path})
    user = world.targets["user_id"].iloc[3]
    profile, summary, request = world.request(user, settings)
    items, feats = rank(world.index, profile, summary, request, settings.ranking, ranker)
    assert len(items) == request.k
    assert [i.score for i in items] == sorted((i.score for i in items), reverse=True)
    assert all(item.reason and "ranker order" not in item.reason for item in items)


def test_model_hot_reloads_when_the_file_changes(trained, tmp_path):
    path, frame, _ = trained
    target = tmp_path / "ranker.txt"
    target.write_bytes(path.read_bytes())
    model = LTRModel(target)
    feats = {name: frame[name].to_numpy(np.float32)[:50] for name in FEATURES}
    before = model.predict(feats)
    stump = lgb.train({"objective": "lambdarank", "verbose": -1, "min_data_in_leaf": 5},
                      lgb.Dataset(frame[list(FEATURES)].to_numpy(np.float32)[:2000], label=frame["label"][:2000],
                                  group=[1000, 1000], feature_name=list(FEATURES)), num_boost_round=2)
    save_model(stump, target, {"task": "nextitem"})
    os.utime(target, ns=(1, model._mtime + 1_000_000))   # a distinct mtime even on coarse clocks
    after = model.predict(feats)
    assert model.booster.num_trees() == 2
    assert not np.allclose(before, after)
    assert model.reload_if_changed() is False


def test_rankers_selectable_by_config(world):
    settings = Settings.load()
    for name, cls in (("simple", SimpleRanker), ("noop", NoopRanker), ("shuffle", ShuffleRanker),
                      ("learned", LearnedRanker)):
        assert isinstance(build_ranker(RankingSettings(ranker=name)), cls)
    user = world.targets["user_id"].iloc[5]
    profile, summary, request = world.request(user, settings)
    noop, _ = rank(world.index, profile, summary, request, settings.ranking, NoopRanker())
    shuffled, _ = rank(world.index, profile, summary, request, settings.ranking, ShuffleRanker(seed=1))
    assert {i.item_id for i in noop} and noop[0].reason == "noop ranker order"
    assert [i.item_id for i in noop] != [i.item_id for i in shuffled]
    # a learned ranker without a model file for the mode falls back to the simple ranker
    fallback = LearnedRanker(settings.ranking, paths={})
    items, _ = rank(world.index, profile, summary, request, settings.ranking, fallback)
    assert len(items) == request.k and all(i.reason for i in items)


def test_every_feature_has_a_reason():
    assert set(FEATURES) <= set(SIGNAL_REASONS)
