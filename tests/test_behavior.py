"""Behaviour features (shopsense.behavior): session and long-term views, counts and recency, by hand and on OTTO.

    .venv/bin/python -m pytest tests/test_behavior.py -q
"""
import itertools

import numpy as np
import pandas as pd
import pytest

from shopsense.behavior import summarize
from shopsense.config import ProfileSettings, Settings
from shopsense.datasets import SHARED_DATA, otto_sessions
from shopsense.index import CatalogIndex
from shopsense.schemas import Event

NOW = 1_000_000.0
CFG = ProfileSettings(half_life_hours=1.0, views={"long_term_half_life_hours": 10.0, "session_window_minutes": 30})
OTTO = SHARED_DATA / "otto" / "sessions.jsonl"


def ev(type_, age_h, item=None, session=None, query=None, dwell=None):
    return Event(user_id="u", type=type_, item_id=item, query=query, dwell_seconds=dwell, session_id=session,
                 timestamp=NOW - age_h * 3600)


def tiny_index():
    products = pd.DataFrame({"item_id": ["a", "b", "c"], "title": ["A", "B", "C"], "brand": ["x", "y", "x"],
                             "price_band": ["budget", "premium", "budget"], "popularity": [0.0, 1.0, 0.0]})
    return CatalogIndex(products, np.eye(3, dtype=np.float32))


def test_session_view_is_the_latest_session_id():
    events = [ev("search", 0.1, session="s2", query="lipstick"), ev("click", 0.2, "a", session="s2"),
              ev("view", 0.3, "zzz", session="s2"),
              ev("purchase", 0.4, "b", session="s1"), ev("purchase", 5, "c")]  # another session, and none
    summary = summarize(events, tiny_index(), NOW, CFG)
    session = summary.session
    assert session.session_id == "s2"
    assert session.counts == {"search": 1, "click": 1, "view": 1}
    assert session.items == ["a", "zzz"]
    # click a: 2 * 0.5**0.2; the unknown product weighs but adds no vector
    assert session.item_weights == pytest.approx({"a": 2 * 0.5 ** 0.2, "zzz": 0.5 ** 0.3})
    assert session.f_behavior == pytest.approx([1.0, 0.0, 0.0])
    assert session.affinities["brand"] == {"x": 1.0}
    assert (session.first_event_at, session.last_event_at) == (NOW - 0.3 * 3600, NOW - 0.1 * 3600)
    # the top-level (default blend) fields still cover every event
    assert summary.recent_items == ["a", "zzz", "b", "c"]
    assert summary.purchased == {"b", "c"}


def test_session_view_without_session_ids_is_the_last_window():
    events = [ev("click", 10 / 60, "a"), ev("view", 29 / 60, "b"), ev("purchase", 31 / 60, "c")]
    session = summarize(events, tiny_index(), NOW, CFG).session
    assert session.session_id is None
    assert session.items == ["a", "b"]
    w_a, w_b = 2 * 0.5 ** (10 / 60), 0.5 ** (29 / 60)
    assert session.f_behavior == pytest.approx([w_a / (w_a + w_b), w_b / (w_a + w_b), 0.0])
    # nothing in the last 30 minutes: an empty session
    quiet = summarize([ev("click", 2, "a")], tiny_index(), NOW, CFG).session
    assert quiet.items == [] and quiet.f_behavior is None and quiet.counts == {}


def test_long_term_view_decays_with_its_own_half_life():
    events = [ev("view", 0, "a"), ev("purchase", 10, "b")]
    summary = summarize(events, tiny_index(), NOW, CFG)
    # default blend (1 h half-life): view 1, purchase 8 * 2**-10;  long-term (10 h): view 1, purchase 4
    blend_b = 8 * 2.0 ** -10
    assert summary.f_behavior == pytest.approx([1 / (1 + blend_b), blend_b / (1 + blend_b), 0.0])
    assert summary.long_term.f_behavior == pytest.approx([0.2, 0.8, 0.0])
    assert summary.long_term.item_weights == pytest.approx({"a": 1.0, "b": 4.0})
    assert summary.long_term.affinities["price_band"] == {"premium": 0.8, "budget": 0.2}
    assert summary.affinities["price_band"] == pytest.approx({"budget": round(1 / (1 + blend_b), 4),
                                                             "premium": round(blend_b / (1 + blend_b), 4)})


def test_counts_and_recency():
    events = [ev("click", -0.01, "a"),  # a little in the future (clock skew): counts as now
              ev("view", 0.5, "b"), ev("search", 2, query="x"), ev("dwell", 23, "a", dwell=30), ev("view", 30, "c")]
    summary = summarize(events, tiny_index(), NOW, CFG)
    assert summary.events_last_hour == 2
    assert summary.events_last_day == 4
    assert summary.seconds_since_last_event == 0.0
    assert summary.counts == {"click": 1, "view": 2, "search": 1, "dwell": 1}
    later = summarize(events[1:], tiny_index(), NOW, CFG)
    assert later.seconds_since_last_event == pytest.approx(1800)
    assert later.last_event_at == NOW - 1800


def test_no_events():
    summary = summarize([], tiny_index(), NOW, CFG)
    assert summary.f_behavior is None and summary.seconds_since_last_event is None
    assert summary.events_last_hour == summary.events_last_day == 0
    assert summary.session.items == [] and summary.long_term.counts == {}


def test_history_limit_applies_to_every_view():
    cfg = CFG.model_copy(update={"history_events": 2})
    events = [ev("click", n / 100, item, session="s") for n, item in enumerate("abc")]
    summary = summarize(events, tiny_index(), NOW, cfg)
    assert summary.recent_items == summary.session.items == summary.long_term.items == ["a", "b"]
    assert summary.session.counts == {"click": 3}  # counts cover every event given


def test_view_settings_load_from_config(tmp_path):
    config = tmp_path / "shopsense.yaml"
    config.write_text("profile:\n  views:\n    session_window_minutes: 5\n")
    settings = Settings.load(config)
    assert settings.profile.views.session_window_minutes == 5
    assert settings.profile.views.long_term_half_life_hours == 720.0
    with pytest.raises(ValueError):
        Settings.load(overrides={"profile": {"views": {"session_gap": 1}}})


@pytest.mark.skipif(not OTTO.exists(), reason=f"the shared OTTO fixture is absent ({OTTO})")
def test_otto_sessions_summarize_per_session():
    events = list(otto_sessions(OTTO))
    for _, session_events in itertools.groupby(events, key=lambda e: e.user_id):
        newest_first = sorted(session_events, key=lambda e: -e.timestamp)
        now = newest_first[0].timestamp
        summary = summarize(newest_first, tiny_index(), now, ProfileSettings(history_events=10_000))
        # one OTTO shopper is one session: the session view is every event of it
        assert summary.session.session_id == newest_first[0].session_id
        assert summary.session.counts == summary.counts
        assert sum(summary.counts.values()) == len(newest_first)
        assert summary.session.items == list(dict.fromkeys(e.item_id for e in newest_first))
        assert summary.seconds_since_last_event == 0.0
        assert summary.events_last_day == sum(now - e.timestamp <= 86_400 for e in newest_first)
