"""A suite run on an existing Ray cluster: `ray start --head` in a temporary directory, then
`bench run --address`, then the head is stopped. Nothing else on the machine is touched: the head
runs with `--block` in a child process, and stopping that process stops exactly its node."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers import mini_suite

pytestmark = pytest.mark.slow  # Ray and whole suites: minutes

SUITE = mini_suite("on_cluster", "  - grad_diff", seeds="[0, 1]")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def head(tmp_path):
    """A one-CPU Ray head node; yields its address and the environment to reach it with."""
    # Ray puts sockets under its temp dir, whose path must stay short (a socket path has <= 107 bytes).
    temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    port = _free_port()
    # Token authentication off: the test's cluster lives on 127.0.0.1 for a minute, and no token is
    # written to the user's ~/.ray (the README shows how to pass a real cluster's token).
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    ray = Path(sys.executable).parent / "ray"
    proc = subprocess.Popen(
        [str(ray), "start", "--head", "--block", "--port", str(port), "--node-ip-address", "127.0.0.1",
         "--num-cpus", "1", "--num-gpus", "0", "--temp-dir", temp_dir, "--include-dashboard", "false",
         "--disable-usage-stats"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    output, deadline = [], time.monotonic() + 120
    for line in proc.stdout:  # the head prints "Ray runtime started." once it accepts drivers
        output.append(line)
        if "Ray runtime started" in line:
            break
        assert time.monotonic() < deadline, "".join(output)
    assert proc.poll() is None, "".join(output)
    try:
        yield f"127.0.0.1:{port}", env
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # `--block` stops its node's processes when it is stopped
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        subprocess.run(["rm", "-rf", temp_dir], check=False)


def test_a_suite_runs_on_an_existing_cluster(head, tmp_path):
    address, env = head
    suite = tmp_path / "on_cluster.yaml"
    suite.write_text(SUITE)
    done = subprocess.run(
        [sys.executable, "-m", "bench.cli", "run", str(suite), "--address", address,
         "--storage", str(tmp_path / "shared")],
        env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    # One CPU on the cluster: a local Ray of this machine's own would run 2 or more at a time.
    assert "Running 4 trials, 1 at a time" in done.stdout, done.stdout
    # --storage puts the cache the cluster's prepare tasks write and the rows under one directory.
    assert (tmp_path / "shared" / "cache" / "models").is_dir()
    df = pd.read_parquet(tmp_path / "shared" / "results" / "on_cluster")
    assert len(df) == 4 and (df["status"] == "ok").all(), df["error"].dropna().tolist()
    assert sorted(df["method"]) == ["grad_diff", "grad_diff", "none", "retain"]
