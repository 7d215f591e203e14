"""Event and profile stores: one interface, two backends (SQLite embedded, Redis for clusters).

    from shopsense.stores import open_store
    store = open_store(settings.store)

Stores only ever see pseudonymised shopper keys (see shopsense.privacy); they
never hash or look at raw ids themselves.
"""
from __future__ import annotations

from shopsense.config import StoreSettings
from shopsense.stores.base import Store


def open_store(settings: StoreSettings) -> Store:
    if settings.backend == "sqlite":
        from shopsense.stores.sqlite import SQLiteStore

        return SQLiteStore(settings)
    if settings.backend == "redis":
        from shopsense.stores.redis import RedisStore

        return RedisStore(settings)
    raise ValueError(f"unknown store backend {settings.backend!r}")


__all__ = ["Store", "open_store"]
