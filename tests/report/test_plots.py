"""The figures' content (read back from matplotlib, not from the pixels)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from bench.report import plots  # noqa: E402


def _pareto_axes(tmp_path, monkeypatch):
    kept = {}
    monkeypatch.setattr(plots, "_save", lambda fig, path: kept.setdefault("fig", fig) and path)
    points = pd.DataFrame({"method": ["npo", "ga_gd"], "forget_quality": [0.27, 0.07],
                           "model_utility": [0.745, 0.775], "front": [True, True]})
    references = {"none": (1e-5, 0.787), "retain": (1.0, 0.78)}
    plots.pareto_plot(points, references, tmp_path / "p.png", "t", threshold=0.7)
    return kept["fig"].axes[0]


def test_reference_labels_name_their_own_markers(tmp_path, monkeypatch):
    """The references are named by their marker's legend entry, never by free text that can sit
    beside another point (the retain label once spread over NPO's point at forget quality 0.27)."""
    ax = _pareto_axes(tmp_path, monkeypatch)
    labels = dict(zip(*reversed(ax.get_legend_handles_labels())))
    retain_label = plots.BASELINE_STYLE["retain"][1]
    assert retain_label in labels
    assert tuple(labels[retain_label].get_offsets()[0]) == (1.0, 0.78)
    assert not [t.get_text() for t in ax.texts if t.get_text() in {s[1] for s in plots.BASELINE_STYLE.values()}]
    plt.close("all")
