"""The session-scoped pytest fixture `redis_server`: a real redis-server (see shopsense/stores/redis_server.py),
registered for every test by conftest.py."""
from __future__ import annotations

import shutil

import pytest

from shopsense.stores.redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server not found: install the Debian package redis-server (make setup does)")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()
