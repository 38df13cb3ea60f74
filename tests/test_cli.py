"""`--storage DIR`: one directory for the prepare cache and the results, its parts overridable."""

from pathlib import Path

import pytest

from bench.cli import _storage_paths, build_parser


def paths(*argv):
    return _storage_paths(build_parser().parse_args(["run", "suite.yaml", *argv]))


def test_storage_holds_cache_and_results(tmp_path):
    assert paths("--storage", str(tmp_path)) == (tmp_path / "cache", tmp_path / "results")


def test_explicit_dirs_override_the_parts_of_storage(tmp_path):
    cache, results = paths("--storage", str(tmp_path), "--results-dir", str(tmp_path / "elsewhere"))
    assert (cache, results) == (tmp_path / "cache", tmp_path / "elsewhere")
    cache, results = paths("--storage", str(tmp_path), "--cache-dir", str(tmp_path / "c"))
    assert (cache, results) == (tmp_path / "c", tmp_path / "results")


def test_paths_are_absolute_for_other_nodes(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "env_cache"))
    cache, results = paths("--storage", "shared")
    assert cache == tmp_path / "shared" / "cache" and cache.is_absolute()
    assert paths() == (tmp_path / "env_cache", tmp_path / "results")  # no --storage: the defaults
    assert Path(paths("--results-dir", "r")[1]) == tmp_path / "r"


@pytest.mark.slow  # a subprocess
@pytest.mark.parametrize("command", ["report", "leaderboard", "status"])
def test_reading_commands_never_import_torch(tmp_path, command):
    """`bench report`, `leaderboard` and `status` read Parquet with pandas: loading torch (seconds) before
    printing anything would be waste. Run in a fresh interpreter, so nothing else has loaded torch."""
    import subprocess
    import sys

    import pandas as pd

    out = tmp_path / "results" / "mini"
    out.mkdir(parents=True)
    for seed in (0, 1):
        for method, fq in (("none", 1e-6), ("retain", 1.0), ("npo", 0.1 + seed / 10)):
            pd.DataFrame([{"suite": "mini", "trial_id": f"{method}{seed}", "model": "m", "method": method,
                           "seed": seed, "status": "ok", "error": "", "forget_quality": fq, "model_utility": 0.8,
                           "step": 10, "is_final": True}]).to_parquet(out / f"{method}{seed}.parquet")
    assert not pd.read_parquet(out).empty
    code = ("import sys; from bench.cli import main; code = main([%r, %r]); "
            "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(code)" % (command, str(out)))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_eval_names_precisions_as_suites_do():
    """`bench eval --precision` takes a suite's precision names (and auto), not torch's dtype names."""
    assert build_parser().parse_args(["eval", "--model", "m", "--data", "d", "--precision", "bf16"]).precision == "bf16"
    assert build_parser().parse_args(["eval", "--model", "m", "--data", "d"]).precision == "auto"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["eval", "--model", "m", "--data", "d", "--precision", "bfloat16"])


def test_eval_takes_the_prompt_formats_suites_take():
    args = build_parser().parse_args(["eval", "--model", "m", "--data", "d", "--prompt", "plain"])
    assert args.prompt == "plain"
    assert build_parser().parse_args(["eval", "--model", "m", "--data", "d"]).prompt == "auto"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["eval", "--model", "m", "--data", "d", "--prompt", "jinja"])


def test_bench_meta_takes_threads_and_no_ray_address():
    """`bench meta` runs in one process: it takes --threads, and refuses --address rather than ignore it."""
    from bench.cli import build_parser

    args = build_parser().parse_args(["meta", "suites/meta_tofu.yaml", "--threads", "2"])
    assert args.fn.__name__ == "cmd_meta" and args.threads == 2
    with pytest.raises(SystemExit):
        build_parser().parse_args(["meta", "suites/meta_tofu.yaml", "--address", "auto"])


def test_list_data_names_every_kind_and_what_it_is_scored_with(capsys):
    from bench.cli import main
    from bench.data.kinds import KINDS

    assert main(["list", "data"]) == 0
    out = capsys.readouterr().out
    assert all(line.split()[0] in KINDS.names() for line in out.splitlines() if not line.startswith(" "))
    assert len([line for line in out.splitlines() if not line.startswith(" ")]) == len(KINDS.names())
    wmdp = out.split("wmdp ")[1]
    assert "metrics when a suite names none: multiple_choice, perplexity" in wmdp.splitlines()[1]
