"""Shopper-id pseudonymisation: a keyed hash (HMAC-SHA256) applied before any id reaches a store or log.

The same id and key always give the same pseudonym, so a shopper's events join up;
without the key the pseudonym cannot be reversed or recomputed from a guessed id.
"""
from __future__ import annotations

import hashlib
import hmac


def pseudonymize(user_id: str, key: str) -> str:
    return "u_" + hmac.new(key.encode(), user_id.encode(), hashlib.sha256).hexdigest()[:32]
