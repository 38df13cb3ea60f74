"""Which metric columns the report's tables show, in which order, and how: header, axis label, scale,
number format, as the metric families declared them (`bench.core.outputs.Output`) where they register.

The declarations come with the rows: the result writer stores them in each Parquet file's metadata and
`bench.run.results.read_rows` puts them in the frame's `attrs`. So a new metric family, a user's own
too, appears in the tables under its own header without editing any list here, and the report never
imports the metric code (which loads torch). Results written before rows carried declarations fall
back to LEGACY_OUTPUTS, the declarations of the metric columns the report showed then.

The report's own columns, derived from the rows, are declared the same way by the module that makes
them (the worst case after attacks: bench.report.robustness.WORST_OUTPUTS).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from bench.core.outputs import OUTPUTS_KEY, Output
from bench.report.robustness import WORST_OUTPUTS

# The metric columns as the tables showed them before the rows carried declarations; a declaration read
# from the rows replaces its column's entry here.
LEGACY_OUTPUTS = {
    "forget_quality": Output(True, header="forget quality", axis="forget quality (KS p-value, log scale)",
                             scale="log", leaderboard=10, every_setting=10),
    "model_utility": Output(True, header="model utility", axis="model utility (harmonic mean, 0–1)",
                            leaderboard=20, every_setting=20),
    "forget_rouge": Output(False, header="forget ROUGE", leaderboard=40, every_setting=30),
    "forget_greedy_exact_match": Output(False, header="forget EM", every_setting=40),
    "retain_greedy_exact_match": Output(True, header="retain EM", leaderboard=30, every_setting=50),
    "retain_rouge": Output(True, header="retain ROUGE", every_setting=60),
    "forget_verbmem": Output(False, header="forget VerbMem", every_setting=70),
    "mia_mink_pp_auc": Output(False, header="MIA AUROC (Min-K%++)", leaderboard=50, every_setting=80),
    "privleak": Output(False, header="privacy leakage", fmt="{:.1f}", leaderboard=60, every_setting=90),
}


def declared_outputs(rows: pd.DataFrame) -> dict[str, Output]:
    """column -> declaration, as the rows' files stored them (`read_rows`); {} for rows without any."""
    return {column: Output.from_json(data) for column, data in rows.attrs.get(OUTPUTS_KEY, {}).items()}


def with_outputs(rows: pd.DataFrame, outputs: dict[str, Output]) -> pd.DataFrame:
    """A copy of `rows` carrying the declarations `outputs` as `read_rows` gives them (for rows built in memory)."""
    out = rows.copy()
    out.attrs[OUTPUTS_KEY] = {column: output.to_json() for column, output in outputs.items()}
    return out


@dataclass(frozen=True)
class ReportColumns:
    """The declarations a report reads: column -> `Output`, metric columns and the report's own."""

    outputs: dict[str, Output]

    @classmethod
    def of(cls, rows: pd.DataFrame) -> ReportColumns:
        """The columns of these rows: LEGACY_OUTPUTS, replaced or extended by the rows' own declarations,
        then the report's derived columns."""
        return cls({**LEGACY_OUTPUTS, **declared_outputs(rows), **WORST_OUTPUTS})

    def __contains__(self, column: object) -> bool:
        return column in self.outputs

    def header(self, column: str) -> str:
        """The column's table header (its own name where it declares none)."""
        output = self.outputs.get(column)
        return output.header if output and output.header else column

    def axis_label(self, column: str) -> str:
        """The column's axis label, quantity and unit (its header where it declares none)."""
        output = self.outputs.get(column)
        return output.axis if output and output.axis else self.header(column)

    def fmt(self, column: str) -> str:
        output = self.outputs.get(column)
        return output.fmt if output else Output.fmt

    def is_log(self, column: str) -> bool:
        """Whether the column is averaged, compared and shown as log10 (p-values over many decades)."""
        output = self.outputs.get(column)
        return bool(output) and output.scale == "log"

    def leaderboard(self) -> list[str]:
        """The columns the leaderboard shows where the rows have them, in their declared order."""
        return self._shown("leaderboard")

    def every_setting(self) -> list[str]:
        """The columns the every-setting table shows where the rows have them, in their declared order."""
        return self._shown("every_setting")

    def _shown(self, table: str) -> list[str]:
        positions = {c: getattr(o, table) for c, o in self.outputs.items() if getattr(o, table) is not None}
        return sorted(positions, key=positions.get)  # stable: equal positions keep declaration order
