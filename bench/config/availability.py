"""Whether a suite's models and datasets can be loaded, checked when the suite is loaded.

A hub id that cannot be fetched (offline, misspelt, gated) should stop a sweep before any model is
built, with the name and the reason, not fail inside every trial an hour later. Local paths must
hold a `save_pretrained` model; hub ids are found in the local Hugging Face cache or, when the hub
answers, on the hub. The hub's own client retries an unreachable host for ~25 s, so reachability is
tested first with one short connection attempt (bench.core.hub).
"""

from __future__ import annotations

from pathlib import Path

from bench.core.errors import SourceUnavailable
from bench.core.hub import hub_reachable, looks_like_path
from bench.core.names import NO_RETAIN_MODEL, ZOO_NAMES, is_zoo
from bench.core.pretrained import is_pretrained_name, locate


def _unavailable(what: str, name: str, why: str) -> SourceUnavailable:
    """`<what>: 'name' <why>; allowed: ...`, with "Did you mean" for a misspelt zoo name."""
    values = (f"a zoo model ({', '.join(ZOO_NAMES)}), a local save_pretrained directory, or a hub id (owner/name) "
              "that is in the local cache or on a reachable hub")
    return SourceUnavailable(what, f"{name!r} {why}", values, name, near=name, choices=ZOO_NAMES)


def check_model(name: str, what: str = "model") -> None:
    """Raises SourceUnavailable unless `name` (zoo name, local directory or hub id) can be loaded."""
    from transformers import AutoConfig

    if is_zoo(name):
        return
    if is_pretrained_name(name):
        try:
            locate(name)  # the hub, its cache, or the installed package's weights
        except SourceUnavailable as err:
            raise SourceUnavailable(what, err.problem, err.allowed, name) from None
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


def _in_data_section(err: SourceUnavailable) -> SourceUnavailable:
    """A data source error (keyed inside the `data:` section, `forget`) at its key path in the suite."""
    return SourceUnavailable(f"data.{err.key}", err.problem, err.allowed, err.value)


def check_suite_sources(suite) -> None:
    """Every model, retain model and data source of a suite; raises SourceUnavailable naming the first
    that cannot be loaded (the caller adds the suite file)."""
    from bench.data.store import check_data_sources

    for i, model in enumerate(suite.models):
        check_model(model, f"models[{i}]")
    if suite.prepare.retain_model and suite.prepare.retain_model != NO_RETAIN_MODEL:
        check_model(suite.prepare.retain_model, "prepare.retain_model")
    try:
        check_data_sources(suite.data)
    except SourceUnavailable as err:
        raise _in_data_section(err) from None
