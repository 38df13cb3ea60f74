"""Where a pretrained model known by a short name (`bench.core.names.PRETRAINED`) comes from here.

In order: the hub id, when the local Hugging Face cache holds it or the hub is reachable; else the GGUF
file of the installed package that ships it (the package is found, never imported: it may need
packages the weights do not); else a SourceUnavailable that names the one install command. The
identity a row records says which: `<hub id>@<commit>`, or the package, its version, the file and the
file's SHA-256.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from bench.core.errors import SourceUnavailable
from bench.core.names import PRETRAINED


@dataclass(frozen=True)
class Located:
    """A named model's weights: `hub_id` (loaded from the hub or its cache), or `gguf` (a file path)."""

    name: str
    hub_id: str | None = None
    gguf: Path | None = None

    @property
    def distribution(self) -> str:
        """The shipping package as installed (`name==version`), for the weights' identity."""
        name = PRETRAINED[self.name]["package"].replace("_", "-")
        return f"{name}=={importlib.metadata.version(name)}"


def is_pretrained_name(name: str) -> bool:
    return name in PRETRAINED


def _hub_has(hub_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    from bench.core.hub import hub_reachable

    if isinstance(try_to_load_from_cache(hub_id, "config.json"), str):
        return True
    return hub_reachable()[0]


def gguf_path(name: str) -> Path | None:
    """The GGUF file of the installed package that ships `name`, or None."""
    entry = PRETRAINED[name]
    spec = importlib.util.find_spec(entry["package"])
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / entry["gguf_file"]
    return path if path.is_file() else None


def locate(name: str) -> Located:
    """Where `name`'s weights come from (see the module docstring).

    Raises:
        SourceUnavailable: neither the hub nor the package has them; the message gives the install command.
    """
    entry = PRETRAINED[name]
    if _hub_has(entry["hub_id"]):
        return Located(name, hub_id=entry["hub_id"])
    path = gguf_path(name)
    if path is not None:
        return Located(name, gguf=path)
    raise SourceUnavailable("model", f"{name!r} is not in the local Hugging Face cache, the hub cannot be reached, "
                            f"and the package {entry['package'].replace('_', '-')} that ships its weights is not "
                            f"installed", f"the same name once its weights are installed (`{entry['install']}`), a zoo model, "
                            "a local directory or a reachable hub id", name)

