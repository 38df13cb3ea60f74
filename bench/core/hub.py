"""Whether the Hugging Face hub can be used, and whether a name is a local path or a hub id.

The hub's own client retries an unreachable host for ~25 s, so reachability is tested first with
one short connection attempt, once per process.
"""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

HUB_TIMEOUT_S = 5.0


def offline_mode() -> bool:
    """Whether HF_HUB_OFFLINE asks the Hugging Face libraries to read only their local cache."""
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")


@functools.lru_cache(maxsize=1)
def hub_reachable() -> tuple[bool, str]:
    """(whether the Hugging Face hub answers, why not); honours HF_HUB_OFFLINE and HF_ENDPOINT."""
    if offline_mode():
        return False, "HF_HUB_OFFLINE is set"
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=HUB_TIMEOUT_S).close()
    except OSError as err:
        return False, f"offline: {host} cannot be reached ({err.strerror or err})"
    return True, ""


def looks_like_path(name: str) -> bool:
    """A local path rather than a hub id: it starts like one, or it exists."""
    return name.startswith((".", "/", "~")) or Path(name).expanduser().exists()
