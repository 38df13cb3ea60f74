"""Sweeps that survive: an interrupted suite resumes without losing or duplicating a row; diverging,
raising and crashing trials are recorded as such and the sweep goes on; `--retry-failed` reruns
only the failed; the same suite gives the same numbers run after run, at any concurrency.

Each run is `bench` in a subprocess with its own Ray, as a user would run it; the miniature models
are prepared once for the module (a shared cache).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers import mini_suite

pytestmark = pytest.mark.slow  # Ray and whole suites: minutes


# Registered through BENCH_PLUGINS, as a user's own method would be: `flaky` raises and `crashy`
# kills its worker process when the environment says so, and otherwise ascend the forget NLL.
PLUGIN = '''
import os
from dataclasses import dataclass

from methods import METHODS
from methods.losses import mean_nll


@dataclass(frozen=True)
class NoArgs:
    pass


@METHODS.register("flaky", args=NoArgs, needs={"forget"}, version=1)
def flaky(model, batch, ctx):
    if os.environ.get("FLAKY_RAISE") == "1":
        raise RuntimeError("injected failure")
    return -mean_nll(model, batch["forget"]), {}


@METHODS.register("crashy", args=NoArgs, needs={"forget"}, version=1)
def crashy(model, batch, ctx):
    if os.environ.get("FLAKY_CRASH") == "1":
        os._exit(3)  # the worker process dies: no exception, no row
    return -mean_nll(model, batch["forget"]), {}
'''


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("resilience")
    (root / "plugins").mkdir()
    (root / "plugins" / "fault_plugins.py").write_text(PLUGIN)
    return root


def _suite(root: Path, name: str, methods: str, steps: int = 3) -> Path:
    path = root / f"{name}.yaml"
    path.write_text(mini_suite(name, methods, steps=steps))
    return path


def _command(root: Path, suite: Path, results: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "bench.cli", "run", str(suite), "--cache-dir", str(root / "cache"),
            "--results-dir", str(root / results), *extra]


def _env(root: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("FLAKY_RAISE", "FLAKY_CRASH")}
    pythonpath = os.pathsep.join(filter(None, [str(root / "plugins"), env.get("PYTHONPATH")]))
    return {**env, "BENCH_PLUGINS": "fault_plugins", "PYTHONPATH": pythonpath, **extra}


def _driver_lines(output: str) -> str:
    """The driver's own output: Ray prefixes what its workers print with "(name pid=N)" (a worker
    torn down at shutdown may print an interpreter warning there, which is not the harness's)."""
    return "\n".join(line for line in output.splitlines() if " pid=" not in line.split(")")[0])


def _bench(root: Path, suite: Path, results: str, *extra: str, **env: str) -> subprocess.CompletedProcess:
    done = subprocess.run(_command(root, suite, results, *extra), env=_env(root, **env), capture_output=True,
                          text=True, timeout=600)
    assert "Traceback" not in _driver_lines(done.stderr), done.stderr
    return done


def _row_bytes(out_dir: Path) -> dict[str, bytes]:
    return {p.stem: p.read_bytes() for p in out_dir.glob("*.parquet")}


def _plan_ids(out_dir: Path) -> set[str]:
    return {t["trial_id"] for t in json.loads((out_dir / "_trials.json").read_text())["trials"]}


RESUME_METHODS = "  - name: grad_ascent\n    grid: {lr: [1e-4, 2e-4, 3e-4, 4e-4, 5e-4]}"


@pytest.fixture(scope="module")
def resumed(root):
    """A 7-row suite (5 trials + 2 baselines) interrupted with SIGINT once 3 rows are written, then
    run again with the same command (at another concurrency). Returns its results directory, the
    rows written before the interrupt, and the interrupted run's output."""
    suite = _suite(root, "resume", RESUME_METHODS, steps=40)
    out_dir = root / "results" / "resume"
    # A shell without job control starts background jobs with SIGINT ignored, and the child would inherit
    # that (CI scripts, `pytest &`): the driver gets SIGINT's default disposition back, as in a terminal.
    driver = subprocess.Popen(_command(root, suite, "results", "--max-concurrent", "1"), env=_env(root),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300
    while len(list(out_dir.glob("*.parquet"))) < 3:
        assert driver.poll() is None and time.monotonic() < deadline, driver.communicate()
        time.sleep(0.1)
    driver.send_signal(signal.SIGINT)
    stdout, stderr = driver.communicate(timeout=120)
    before = _row_bytes(out_dir)
    again = _bench(root, suite, "results", "--max-concurrent", "2")
    assert again.returncode == 0, again.stderr
    return out_dir, before, driver.returncode, stdout + stderr


def test_interrupt_stops_cleanly_with_a_resume_hint(resumed):
    _, before, returncode, output = resumed
    assert returncode == 130
    assert "Traceback" not in _driver_lines(output)
    assert "Run the same command again" in output
    assert 3 <= len(before) < 7, "the interrupt came after the suite finished: nothing was left to resume"


def test_resume_writes_every_trial_once_and_keeps_earlier_rows(resumed):
    out_dir, before, _, _ = resumed
    after = _row_bytes(out_dir)
    assert set(after) == _plan_ids(out_dir) and len(after) == 7
    assert {k: after[k] for k in before} == before  # not rewritten: the same bytes
    df = pd.read_parquet(out_dir)
    assert df["trial_id"].is_unique and (df["status"] == "ok").all()
    assert not [p for p in out_dir.iterdir() if ".tmp-" in p.name]


def test_rows_record_the_environment(resumed):
    out_dir, _, _, _ = resumed
    df = pd.read_parquet(out_dir)
    for _, row in df.iterrows():
        env, versions = json.loads(row["environment"]), json.loads(row["versions"])
        assert env["device"] == "cpu" and env["device_count"] == 1 and env["threads"] == 1
        assert env["precision"] == "fp32" and env["mixed_precision"] == "no"
        trained = row["method"] == "grad_ascent"
        assert env["effective_batch_size"] == (4 if trained else 0)
        assert {"torch", "transformers", "accelerate", "ray", "python", "git_commit"} <= set(versions)


def test_two_runs_give_identical_metrics(root, resumed):
    """The resumed suite (concurrency 1, then 2, in two processes) against one fresh run at
    concurrency 2: every metric, loss and generation the same, bit for bit."""
    from metrics import metric_columns

    out_dir, _, _, _ = resumed
    suite = root / "resume.yaml"
    fresh = _bench(root, suite, "fresh")
    assert fresh.returncode == 0, fresh.stderr
    a = pd.read_parquet(out_dir).set_index("trial_id").sort_index()
    b = pd.read_parquet(root / "fresh" / "resume").set_index("trial_id").sort_index()
    assert list(a.index) == list(b.index)
    for col in [*metric_columns(), "final_loss", "train_log", "probe_generations", "steps_done", "tokens"]:
        for trial, x, y in zip(a.index, a[col], b[col]):
            same = x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y))
            assert same, (col, trial, x, y)


FAULT_METHODS = """  - name: grad_ascent
    grid: {lr: [1e-4, 1e3]}
  - flaky
  - crashy"""


def test_diverging_raising_and_crashing_trials(root):
    suite = _suite(root, "faults", FAULT_METHODS)
    out_dir = root / "results" / "faults"
    first = _bench(root, suite, "results", FLAKY_RAISE="1", FLAKY_CRASH="1")
    assert first.returncode == 0, first.stderr
    df = pd.read_parquet(out_dir).set_index("method")
    assert sorted(df.index) == ["flaky", "grad_ascent", "grad_ascent", "none", "retain"]  # crashy: no row
    diverged = df[df["status"] == "diverged"]
    assert len(diverged) == 1 and diverged["hp.lr"].iloc[0] == 1e3
    assert diverged["diverged_step"].iloc[0] >= 1 and "at step" in diverged["error"].iloc[0]
    assert math.isfinite(diverged["forget_quality"].iloc[0])  # evaluated as before the step that broke it
    assert df.loc["flaky", "status"] == "failed" and df.loc["flaky", "error"].startswith("RuntimeError: injected failure")
    ok = df[df["status"] == "ok"]
    assert sorted(ok.index) == ["grad_ascent", "none", "retain"]
    assert "CRASHED" in first.stdout and "3 ok, 1 diverged, 1 failed, 1 pending" in first.stdout
    assert "--retry-failed" in first.stdout
    _check_status(out_dir)

    # A plain rerun runs only the trial without a row; the failed one stays failed.
    rows = _row_bytes(out_dir)
    second = _bench(root, suite, "results", FLAKY_RAISE="1")
    assert second.returncode == 0 and "1 to run" in second.stdout, second.stdout
    after = _row_bytes(out_dir)
    assert {k: after[k] for k in rows} == rows and len(after) == 6

    # --retry-failed reruns the failed trial only; every other row keeps its bytes.
    third = _bench(root, suite, "results", "--retry-failed")
    assert third.returncode == 0 and "1 to run (1 failed ones again)" in third.stdout, third.stdout
    retried = _row_bytes(out_dir)
    changed = {k for k in retried if retried[k] != after[k]}
    flaky_id = pd.read_parquet(out_dir).set_index("method").loc["flaky", "trial_id"]
    assert changed == {flaky_id}
    final = pd.read_parquet(out_dir).set_index("method")
    assert final.loc["flaky", "status"] == "ok" and set(final["status"]) == {"ok", "diverged"}


def _check_status(out_dir: Path) -> None:
    """`bench status` of the first faulty run: every outcome counted where it happened."""
    from bench.cli import main
    from bench.run.status import status_table

    counts, problems, has_plan = status_table(out_dir)
    by_method = counts.set_index("method")
    assert has_plan and by_method.loc["grad_ascent", ["ok", "diverged", "failed", "pending"]].tolist() == [1, 1, 0, 0]
    assert by_method.loc["flaky", "failed"] == 1 and by_method.loc["crashy", "pending"] == 1
    assert sorted(problems["status"]) == ["diverged", "failed"]
    assert main(["status", str(out_dir)]) == 0
