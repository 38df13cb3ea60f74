"""Where the harness keeps what it builds: data, tokenizers, models and the baselines' statistics."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "BENCH_CACHE"


def default_cache() -> Path:
    """`$BENCH_CACHE`, else `~/.cache/unlearning-bench`."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "unlearning-bench").expanduser().resolve()
