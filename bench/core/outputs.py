"""How an output column of a metric reads: its direction, its name in tables and on axes, its scale and
number format, and where the report's tables show it.

A metric family declares one `Output` per column where it registers (metrics/); the result writer
stores the declarations with the rows, as JSON in each Parquet file's metadata under OUTPUTS_KEY
(bench.run.results); the report reads them back from there (bench.report.columns). The class lives
here, below both, because the report must not import the metric code: that loads torch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

# The Parquet file-metadata key holding a row file's declarations: {column: Output.to_json()}.
OUTPUTS_KEY = "bench.outputs"
SCALES = ("linear", "log")


@dataclass(frozen=True)
class Output:
    """The declaration of one output column.

    Attributes:
        higher_is_better: the column's direction.
        header: its short name in table headers ("" shows the column's own name).
        axis: its axis label, quantity and unit ("" uses the header).
        scale: "log" for values spanning many orders of magnitude (KS p-values): averaged, compared and
            drawn as log10, shown as a geometric mean; "linear" otherwise.
        fmt: the format of a mean and its interval's half-width (linear columns).
        leaderboard: its position among the leaderboard's metric columns (ascending; None: not shown).
        every_setting: its position in the every-setting table (ascending; None: not shown).
    """

    higher_is_better: bool
    header: str = ""
    axis: str = ""
    scale: str = "linear"
    fmt: str = "{:.3f}"
    leaderboard: int | None = None
    every_setting: int | None = None

    def __post_init__(self):
        if self.scale not in SCALES:
            raise ValueError(f"Output.scale is {self.scale!r}; allowed: {', '.join(SCALES)}")

    def to_json(self) -> dict:
        """The declaration as stored with the rows."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping) -> Output:
        """A stored declaration; keys this version does not know (written by a newer one) are ignored,
        keys it lacks take their defaults."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def encode_outputs(outputs: Mapping[str, Output]) -> str:
    """column -> declaration as the JSON text stored under OUTPUTS_KEY (columns in declaration order)."""
    return json.dumps({column: output.to_json() for column, output in outputs.items()})


def decode_outputs(text: str | bytes) -> dict[str, Output]:
    """The inverse of `encode_outputs`."""
    return {column: Output.from_json(data) for column, data in json.loads(text).items()}
