"""`--storage DIR`: one directory for the prepare cache and the results, its parts overridable."""

from pathlib import Path

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
