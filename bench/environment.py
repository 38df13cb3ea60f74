"""What a row's numbers were computed with: package versions, the harness's commit, the device and
the settings that published unlearning numbers are known to move with.

Computed in the process that runs the trial (a Ray worker may sit on another node, with another GPU),
and stored as JSON in the row's `versions` and `environment` columns.
"""

from __future__ import annotations

import functools
import json
import platform
import subprocess
from pathlib import Path

PACKAGES = ("unlearning-bench", "torch", "transformers", "accelerate", "ray")


@functools.lru_cache(maxsize=1)
def versions() -> str:
    """Package versions and the git commit of the harness (None outside a checkout), as JSON."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in PACKAGES:
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    out["git_commit"] = _git_commit()
    return json.dumps(out, sort_keys=True)


def _git_commit() -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                              text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def fingerprint(*, precision: str, mixed_precision: str = "no", batch_size: int = 0, grad_accum_steps: int = 1,
                workers: int = 1) -> str:
    """The runtime facts of this process as JSON: device type, count and name, torch threads, weight
    precision and autocast, and the effective batch (batch x accumulation x data-parallel workers;
    0 for rows that did not train)."""
    import torch

    cuda = torch.cuda.is_available()
    return json.dumps({
        "device": "cuda" if cuda else "cpu",
        "device_count": torch.cuda.device_count() if cuda else 1,
        "device_name": torch.cuda.get_device_name(0) if cuda else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "precision": precision,
        "mixed_precision": mixed_precision,
        "effective_batch_size": batch_size * grad_accum_steps * workers,
        "workers": workers,
    }, sort_keys=True)
