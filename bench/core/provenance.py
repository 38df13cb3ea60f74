"""What a row's data and models are, by content: hashes of local files, hub commits of hub ones.

A name is not an identity: a local dataset or model directory can change under the same path, and a
hub repository under the same id. Cache keys and rows therefore carry a content hash of local files
and the commit of hub repositories, so a changed file gets a new cache entry instead of a stale one.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

_CHUNK = 1 << 20


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


@functools.lru_cache(maxsize=256)
def _tree_digest(root: str, signature: tuple) -> str:
    """SHA-256 over the relative paths and contents of every file under `root` (`signature`, the
    files' sizes and times, keys the memo: a file written since is hashed again)."""
    h = hashlib.sha256()
    for rel, _size, _mtime in signature:
        h.update(rel.encode() + b"\0" + _file_digest(Path(root) / rel).encode())
    return h.hexdigest()


@functools.lru_cache(maxsize=64)
def _known_file_digest(path: str, size: int, mtime_ns: int) -> str:
    """`_file_digest`, once per file version (size and time key the memo): a 100 MB weights file is
    hashed once per process, however many cache keys and rows name it."""
    return _file_digest(Path(path))


def content_hash(path: str | Path) -> str:
    """The content hash of a file or of every file under a directory (hidden files left out)."""
    path = Path(path).resolve()
    if path.is_file():
        stat = path.stat()
        return _known_file_digest(str(path), stat.st_size, stat.st_mtime_ns)
    files = sorted(p for p in path.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts))
    signature = tuple((str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    return _tree_digest(str(path), signature)


def hub_revision(repo_id: str, repo_type: str = "model") -> tuple[str | None, str]:
    """The commit of a hub repository and where it was read: ("<sha>", "hub") online,
    ("<sha>", "cache") from the local copy when the hub is offline, (None, why) when neither answers."""
    from huggingface_hub import HfApi, try_to_load_from_cache

    from bench.core.hub import HUB_TIMEOUT_S, hub_reachable

    reachable, reason = hub_reachable()
    if reachable:
        try:
            return HfApi().repo_info(repo_id, repo_type=repo_type, timeout=HUB_TIMEOUT_S).sha, "hub"
        except Exception as err:  # private, gone, a hiccup: fall back to the cached copy
            reason = type(err).__name__
    for filename in ("config.json", "README.md", "tokenizer_config.json"):
        cached = try_to_load_from_cache(repo_id, filename, repo_type=repo_type)
        if isinstance(cached, str):  # .../snapshots/<commit>/<filename>
            return Path(cached).parent.name, "cache"
    return None, f"no revision known ({reason}, nothing cached)"


def model_identity(name_or_path: str) -> str:
    """A model's identity for cache keys and rows: `sha256:<hash>` of a local directory's files,
    `<hub id>@<commit>` of a hub model, the name itself for zoo models (their recipe is the key), and for
    a pretrained name (`bench.core.pretrained`) that of the weights it was found as."""
    from bench.core.names import is_zoo
    from bench.core.pretrained import is_pretrained_name, locate

    if is_zoo(name_or_path):
        return name_or_path
    if is_pretrained_name(name_or_path):  # the weights found here: the hub's commit, or the shipped file's hash
        located = locate(name_or_path)
        if located.hub_id:
            return _hub_identity(located.hub_id, "model")
        return f"{located.distribution}:{located.gguf.name}@sha256:{content_hash(located.gguf)[:16]}"
    if os.path.exists(name_or_path):
        return f"sha256:{content_hash(name_or_path)[:16]}"
    return _hub_identity(name_or_path, "model")


@functools.lru_cache(maxsize=64)
def _hub_identity(repo_id: str, repo_type: str) -> str:
    """`<repo>@<commit>`, asked once per process; says so when the commit is the cached copy's."""
    revision, source = hub_revision(repo_id, repo_type)
    if source == "cache":
        print(f"[provenance] hub offline: {repo_type} {repo_id} is the cached snapshot {revision}", flush=True)
    elif revision is None:
        print(f"[provenance] {repo_type} {repo_id}: {source}", flush=True)
    return f"{repo_id}@{revision or 'unknown'}"


def dataset_identity(repo_id: str) -> str:
    """`<repo>@<commit>` of a hub dataset (see `model_identity`)."""
    return _hub_identity(repo_id, "dataset")


SOURCE_FILE = "source.json"  # in a data directory: the hub dataset and commit its records came from


def _artifact(where: str) -> str:
    """A prepared model's directory name (its cache key), or the identity of a model used as it is."""
    return Path(where).name if os.path.isdir(where) and "models" in Path(where).parts else model_identity(where)


def row_provenance(model: str, data_dir: str | Path, target_dir: str = "", retain_dir: str = "") -> dict:
    """A row's `provenance`: the model's identity, the data directory's key and content hash, the hub
    dataset's commit where the data came from one, and the prepared target and retain models."""
    import json

    data_dir = Path(data_dir)
    out = {"model": model_identity(model), "data": data_dir.name, "data_sha256": content_hash(data_dir)[:16]}
    source = data_dir / SOURCE_FILE
    if source.exists():
        out["data_source"] = json.loads(source.read_text())
    out.update({role: _artifact(where) for role, where in (("target", target_dir), ("retain", retain_dir)) if where})
    return out
