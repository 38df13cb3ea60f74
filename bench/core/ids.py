"""The one trial id: a short hash of the settings a row was computed with."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def settings_id(settings: Any) -> str:
    """16 hex digits of the SHA-256 of `settings` as canonical JSON (sorted keys; other objects as str):
    the same settings give the same id on every machine, any change gives another."""
    canonical = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
