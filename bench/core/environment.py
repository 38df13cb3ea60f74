"""What a row's numbers were computed with: package versions, the harness's commit, the device and
the settings that published unlearning numbers are known to move with.

Computed in the process that runs the trial (a Ray worker may sit on another node, with another GPU),
and stored as JSON in the row's `versions` and `environment` columns.
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import subprocess
from pathlib import Path

from bench.core.numerics import cpu_name, kernel_profile

PACKAGES = ("unlearning-bench", "torch", "transformers", "tokenizers", "accelerate", "numpy", "scipy", "ray")
HARNESS_PACKAGES = ("attacks", "bench", "methods", "metrics")
LOCK_FILE = Path(__file__).resolve().parents[1] / "requirements.lock"


@functools.lru_cache(maxsize=1)
def versions() -> str:
    """What the numbers were computed with, as JSON: the harness's version, a hash of its source files
    and of its lock (both known outside a checkout: from a wheel or an archive too), the packages of
    the lock that are installed at another release (`off_lock`), the versions of the packages that
    move numbers, and the git commit (None outside a checkout)."""
    import importlib.metadata as md

    out = {"python": platform.python_version(), "harness": _harness_version(), "source_sha256": source_hash(),
           "lock_sha256": hashlib.sha256(LOCK_FILE.read_bytes()).hexdigest()[:16] if LOCK_FILE.exists() else None,
           "off_lock": off_lock()}
    for pkg in PACKAGES:
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    out["git_commit"] = _git_commit()
    return json.dumps(out, sort_keys=True)


def _harness_version() -> str:
    import importlib.metadata as md

    try:
        return md.version("unlearning-bench")
    except md.PackageNotFoundError:  # run from a source tree that was never installed
        from bench import __version__

        return __version__


def source_hash(root: Path | None = None) -> str:
    """SHA-256 (16 hex digits) over the path and bytes of every .py file of the harness's packages
    (under `root`, default: where this installation's packages are)."""
    root = root or Path(__file__).resolve().parents[2]
    h = hashlib.sha256()
    for package in HARNESS_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def locked_versions() -> dict[str, str]:
    """The lock's package -> version (empty without a lock file)."""
    if not LOCK_FILE.exists():
        return {}
    pins = (line.split("#")[0].strip() for line in LOCK_FILE.read_text().splitlines())
    return {name.strip().lower(): version.strip() for name, _, version in (p.partition("==") for p in pins if "==" in p)}


def off_lock() -> dict[str, str]:
    """Installed packages whose release differs from the lock's: {name: "installed (lock: locked)"}."""
    import importlib.metadata as md

    out = {}
    for name, locked in locked_versions().items():
        try:
            installed = md.version(name)
        except md.PackageNotFoundError:
            continue  # an extra the lock holds that this install does not use
        if installed.split("+")[0] != locked:
            out[name] = f"{installed} (lock: {locked})"
    return out


def _git_commit() -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                              text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def environment_json(*, precision: str, mixed_precision: str = "no", batch_size: int = 0, grad_accum_steps: int = 1,
                workers: int = 1, sharding: str = "none") -> str:
    """The runtime facts of this process as JSON: device type, count and name, the CPU kernels in
    effect (`bench.core.numerics`), torch threads, weight precision and autocast, and the effective batch
    (batch x accumulation: the workers share a step's micro-batches; 0 for rows that did not train), and
    the workers that trained and how they shared the model (`unlearn.sharding`)."""
    import torch

    cuda = torch.cuda.is_available()
    return json.dumps({
        "device": "cuda" if cuda else "cpu",
        "device_count": torch.cuda.device_count() if cuda else 1,
        "device_name": torch.cuda.get_device_name(0) if cuda else cpu_name(),
        "cpu_kernels": kernel_profile(),
        "threads": torch.get_num_threads(),
        "precision": precision,
        "mixed_precision": mixed_precision,
        "effective_batch_size": batch_size * grad_accum_steps,
        "workers": workers,
        "sharding": sharding,
    }, sort_keys=True)
