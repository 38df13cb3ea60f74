"""Whether a suite's models and datasets can be loaded, checked when the suite is loaded.

A hub id that cannot be fetched (offline, misspelt, gated) should stop a sweep before any model is
built, with the name and the reason, not fail inside every trial an hour later. Local paths must
hold a `save_pretrained` model; hub ids are found in the local Hugging Face cache or, when the hub
answers, on the hub. The hub's own client retries an unreachable host for ~25 s, so reachability is
tested first with one short connection attempt.
"""

from __future__ import annotations

import functools
import os
import re
import socket
from pathlib import Path
from urllib.parse import urlparse

HUB_TIMEOUT_S = 5.0


class SourceUnavailable(ValueError):
    """A model or dataset that cannot be loaded; the message names it and says why."""


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
    return name.startswith((".", "/", "~")) or Path(name).expanduser().exists()


def _unavailable(what: str, name: str, why: str) -> SourceUnavailable:
    """`<what>: 'name' <why>; allowed: ...`, with "Did you mean" for a misspelt zoo name."""
    from bench.models.zoo import ZOO
    from bench.config.suite import allowed

    values = (f"a zoo model ({', '.join(ZOO)}), a local save_pretrained directory, or a hub id (owner/name) "
              "that is in the local cache or on a reachable hub")
    return SourceUnavailable(f"{what}: {name!r} {why}; {allowed(values, name, ZOO)}")


def check_model(name: str, what: str = "model") -> None:
    """Raises SourceUnavailable unless `name` (zoo name, local directory or hub id) can be loaded."""
    from transformers import AutoConfig

    from bench.models.zoo import is_zoo

    if is_zoo(name):
        return
    if looks_like_path(name):
        path = Path(name).expanduser()
        if not path.is_dir():
            raise _unavailable(what, name, "is not a zoo model and there is no such directory")
        if not (path / "config.json").is_file():
            raise _unavailable(what, name, "is not a save_pretrained directory (no config.json in it)")
        return
    try:
        AutoConfig.from_pretrained(name, local_files_only=True)
        return  # in the local cache
    except (OSError, ValueError):
        pass
    reachable, why = hub_reachable()
    if not reachable:
        raise _unavailable(what, name, f"is not a zoo model, not in the local Hugging Face cache, and the hub "
                                       f"cannot be used ({why}); download it where the hub is reachable, "
                                       "or give a local path")
    try:
        AutoConfig.from_pretrained(name)
    except (OSError, ValueError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise _unavailable(what, name,
                           f"is not a zoo model and not found on the hub or not accessible ({reason})") from None


# bench.data.store names the split a data source error is about ("data: forget data: ..."); in the suite
# that is the key data.forget (or data.question_key / data.answer_key when a record lacks that key).
_SPLIT_ERROR = re.compile(r"^data: (forget|retain|holdout) data\b")
_KEY_ERROR = re.compile(r"has no key .* \((question_key|answer_key)\)")


def _data_error(err: SourceUnavailable, kind: str) -> SourceUnavailable:
    """A data source error at its key path, with what a source may be."""
    from bench.config.suite import DATA_SOURCES

    message = str(err)
    split, key = _SPLIT_ERROR.match(message), _KEY_ERROR.search(message)
    if key:
        message = f"data.{key.group(1)}: {message.removeprefix('data: ')}; allowed: one of the keys found"
    elif split:
        message = f"data.{split.group(1)}: {message.removeprefix('data: ')}"
    if "allowed:" not in message:
        sources = DATA_SOURCES if kind == "files" else "the hub dataset on a reachable hub, or in the local " \
                                                       "Hugging Face cache with HF_HUB_OFFLINE=1"
        message += f"; allowed: {sources}"
    return SourceUnavailable(message)


def check_suite_sources(suite) -> None:
    """Every model, retain model and data source of a suite; raises SourceUnavailable naming the first
    that cannot be loaded (the caller adds the suite file)."""
    from bench.data.store import check_data_sources

    for i, model in enumerate(suite.models):
        check_model(model, f"models[{i}]")
    if suite.prepare.retain_model:
        check_model(suite.prepare.retain_model, "prepare.retain_model")
    try:
        check_data_sources(suite.data)
    except SourceUnavailable as err:
        raise _data_error(err, suite.data.kind) from None
