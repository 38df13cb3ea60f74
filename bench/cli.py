"""The `bench` command line: run, status, prepare, meta, eval, validate, plan, list, leaderboard, report, ablate, demo, perf."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from bench.core.atomic import LockedError
from bench.report.aggregate import ReportError
from bench.core.registry import PluginError
from bench.config.errors import SuiteError
from bench.core.names import EXTRACTION_STRENGTHS, PRECISIONS, PROMPT_FORMATS


def _load(path: str, smoke: bool = False, check_sources: bool = True):
    # Imported here, not at the top: the suite schema loads torch (the metrics' settings), and the
    # report, leaderboard and status commands must print without it.
    from bench.config.smoke import smoke_suite
    from bench.config.suite import load_suite

    suite = load_suite(path, check_sources=check_sources)
    return smoke_suite(suite) if smoke else suite


def _storage_paths(args) -> tuple[Path, Path]:
    """The prepare cache and the results root: `--cache-dir` / `--results-dir` where given, else the
    parts of `--storage` (DIR/cache, DIR/results), else the defaults. Absolute, since the cache path is
    handed to Ray tasks that may run on other nodes."""
    from bench.models.prepare import default_cache

    storage = Path(args.storage).resolve() if getattr(args, "storage", None) else None
    if args.cache_dir:
        cache = Path(args.cache_dir).resolve()
    else:
        cache = storage / "cache" if storage else default_cache()
    results = getattr(args, "results_dir", None)
    results_root = Path(results).resolve() if results else storage / "results" if storage else Path("results").resolve()
    return cache, results_root


def cmd_run(args) -> int:
    from bench.core.atomic import atomic_file
    from bench.report.document import build_report, leaderboard_section
    from bench.report.every_setting import render
    from bench.run.results import read_rows
    from bench.run.runner import run_suite

    from bench.models.memory import check_fits

    suite = _load(args.suite, args.smoke)
    if not args.skip_memory_check:
        check_fits(suite)  # before any model is built
    cache, results_root = _storage_paths(args)
    out_dir = run_suite(suite, results_root, cache, args.address, args.max_concurrent, args.retry_failed)
    rows = read_rows(out_dir)
    with atomic_file(out_dir / "_settings.md") as tmp:
        tmp.write_text(f"# Every setting: {suite.name}\n\n{render(rows)}")
    try:
        table = leaderboard_section(rows, out_dir)
    except ReportError as err:  # e.g. every trial failed: the rows and _settings.md are still written
        print(f"\n{render(rows)}\nNo leaderboard: {err}")
        return 0
    with atomic_file(out_dir / "_leaderboard.md") as tmp:
        tmp.write_text(f"# Leaderboard: {suite.name}\n\n{table}")
    print(f"\n{table}\nRows: {out_dir}   Leaderboard: {out_dir / '_leaderboard.md'}   "
          f"Every setting: {out_dir / '_settings.md'}")
    try:
        report = build_report(out_dir)
    except ReportError as err:
        print(f"No report: {err}")
    else:
        print(f"Report: {report.path} (figures: {', '.join(p.name for p in report.figures)})")
    return 0


def cmd_meta(args) -> int:
    import os

    from bench.report.meta import write_meta_report
    from bench.run.meta import read_meta_rows, run_meta

    suite = _load(args.suite, args.smoke)
    cache, results_root = _storage_paths(args)
    started = time.perf_counter()
    out = run_meta(suite, results_root, cache, threads=args.threads or min(4, os.cpu_count() or 1))
    path, table = write_meta_report(read_meta_rows(out), out, suite.name, suite.meta.bootstrap)
    print(f"\n{table}\n\nMeta-evaluation: {path} (figure: {path.with_suffix('.png')}); "
          f"{time.perf_counter() - started:.0f} s")
    return 0


def cmd_prepare(args) -> int:
    from bench.models.baseline_stats import load_baseline_stats
    from bench.run.runner import attach_baseline_stats, prepare_all

    suite = _load(args.suite, args.smoke)
    cache, _ = _storage_paths(args)
    for (model, _), p in attach_baseline_stats(suite, prepare_all(suite, cache, args.address), cache, args.address).items():
        auc = load_baseline_stats(p.baseline_stats).get("retain_mia_mink_pp_auc")
        print(f"{model}\n  data:       {p.data_dir}\n  target:     {p.target_dir}\n  retain:     {p.retain_dir or 'none'}\n"
              f"  baseline statistics: {p.baseline_stats}" + (f" (retain Min-K%++ AUROC {auc:.3f})" if auc is not None else ""))
    return 0


def cmd_validate(args) -> int:
    from bench.models.memory import check_fits
    from bench.config.suite import load_suite

    for path in args.suites:
        suite = load_suite(path, check_sources=not args.skip_sources)
        print(f"{path}: ok ({len(suite.trials())} trials over {len(suite.models)} model(s) and seeds {list(suite.seeds)},"
              f" + {len(suite.baseline_trials())} baseline rows); {_memory_line(check_fits(suite), suite)}")
    return 0


def _memory_line(rows, suite) -> str:
    """The largest estimate of a suite's plan, in a few words."""
    from bench.models.memory import GIB, device_memory

    known = [r for r in rows if r.estimate is not None]
    if not known:
        return "memory not estimated (no model configuration found here)"
    top = max(known, key=lambda r: r.estimate.total)
    room = device_memory(suite.resources)
    where = f"fits {room[1]}" if room else "GPU memory not checked (no GPU visible here)"
    return f"at most {top.estimate.total / GIB:.2f} GiB per device ({top.model}, {', '.join(top.methods)}), {where}"


def cmd_plan(args) -> int:
    from bench.models.memory import DoesNotFit, check_fits, device_memory, plan_suite, plan_table

    suite = _load(args.suite, args.smoke, check_sources=False)  # the estimate needs configurations, not weights
    room = device_memory(suite.resources)
    print(f"{suite.path}: memory per device of each configuration's unlearning, in GiB (an upper bound: every "
          f"sequence at prepare.max_length); a device here: {room[1] if room else 'no GPU visible, not checked'}\n")
    print(plan_table(plan_suite(suite), room))
    try:
        check_fits(suite)
    except DoesNotFit as err:
        print(f"\nerror: {err}", file=sys.stderr)
        return 2
    return 0


def cmd_list(args) -> int:
    if args.what == "methods":
        from methods import METHODS

        for m in METHODS:
            hps = ", ".join(f"{k}={v!r}" for k, v in m.hyperparameters().items()) or "(no arguments)"
            print(f"{m.name:<14} v{m.version}  {m.description}\n{'':<18}{hps}"
                  + (f"\n{'':<18}paper: {m.paper}" if m.paper else ""))
    elif args.what == "metrics":
        from metrics import METRICS

        for m in METRICS:
            opt_in = "" if m.default else f"\n{'':<27}opt-in: runs only where a suite's `metrics:` names it"
            print(f"{m.name:<23} v{m.version}  {m.description}\n{'':<27}{', '.join(m.outputs)}{opt_in}")
    elif args.what == "attacks":
        from attacks import ATTACKS

        for a in ATTACKS:
            settings = ", ".join(f"{k}={v!r}" for k, v in a.defaults().items()) or "(no settings)"
            grid = ", ".join(f"{k} in {list(v)}" for k, v in a.grid.items())
            print(f"{a.name:<15} v{a.version}  {a.description}\n{'':<19}{settings}"
                  + (f"\n{'':<19}default sweep: {grid}" if grid else ""))
    elif args.what == "data":
        from bench.data.kinds import KINDS

        for kind in KINDS:
            summary = " ".join((type(kind).__doc__ or "").split())
            families = ", ".join(kind.metric_families) or "every default family"
            print(f"{kind.name:<18} {summary}\n{'':<19}metrics when a suite names none: {families}")
    else:
        from bench.models.zoo import ZOO

        from bench.core.names import PRETRAINED

        for z in ZOO.values():
            print(f"{z.name:<12} {z.description}")
        for name, entry in PRETRAINED.items():
            print(f"{name:<12} pretrained: {entry['hub_id']} (hub, or `{entry['install']}`)")
        print("Any other name is a Hugging Face hub id or a local save_pretrained directory.")
    return 0


def cmd_leaderboard(args) -> int:
    from bench.report.document import leaderboard_section
    from bench.report.every_setting import render
    from bench.run.results import read_rows

    df = read_rows(Path(args.results))
    if df.empty:
        print(f"{args.results}: no result rows", file=sys.stderr)
        return 1
    print(render(df) if args.every_setting else leaderboard_section(df, args.results))
    return 0


def cmd_status(args) -> int:
    from bench.run.status import render_status

    print(render_status(Path(args.results)))
    return 0


def cmd_report(args) -> int:
    from bench.report.document import build_report, leaderboard_section
    from bench.run.results import read_rows

    # The leaderboard first (a second or two), then the figures, which take matplotlib several seconds.
    rows = read_rows(Path(args.results))
    if not rows.empty:
        print(leaderboard_section(rows, args.results), flush=True)
    report = build_report(Path(args.results))
    print(f"\nReport: {report.path}\nFigures: " + ", ".join(str(p) for p in report.figures))
    return 0


def cmd_ablate(args) -> int:
    from bench.report.ablation import ablation_grid, write_heatmap
    from bench.report.document import REPORT_DIR
    from bench.run.results import read_rows

    results = Path(args.results)
    df = read_rows(results)
    if df.empty:
        raise ReportError(f"{results}: no result rows (<trial_id>.parquet files written by `bench run`)")
    grid = ablation_grid(df, args.x, args.y, args.metric, model=args.model, method=args.method)
    suite = df["suite"].dropna().iloc[0] if df["suite"].notna().any() else results.name
    path = write_heatmap(grid, results / REPORT_DIR, suite)
    print(f"{grid.markdown()}\nHeatmap: {path}")
    return 0


def cmd_eval(args) -> int:
    from metrics import METRICS, metric_columns, metric_outputs

    from bench.models.prepare import default_cache
    from bench.core.registry import UnknownNameError
    from bench.run.results import row_schema, write_row
    from bench.eval import evaluate_external

    try:
        for name in args.metrics or []:
            METRICS.get(name)
    except UnknownNameError as err:
        raise SuiteError(f"--metrics: {err}") from None
    cache = Path(args.cache_dir).resolve() if args.cache_dir else default_cache()
    row = evaluate_external(args.model, args.data, cache, args.retain_model, args.metrics, args.label,
                            args.device, args.precision, args.prompt, batch_size=args.batch_size,
                            max_new_tokens=args.max_new_tokens, extraction_strength=args.extraction_strength)
    unavailable = json.loads(row["metrics_unavailable"] or "{}")
    shown = [c for c in metric_columns(args.metrics) if c in row]
    width = max(map(len, shown))
    for col in shown:
        print(f"{col:<{width}}  " + (f"missing: {unavailable.get(col, '')}" if math.isnan(row[col]) else f"{row[col]:.6g}"))
    print(f"eval {row['eval_s']:.1f} s, {row['eval_forward_passes']} forward passes, "
          f"{row['eval_generated_prompts']} prompts decoded ({row['eval_decode_steps']} decode steps), "
          f"peak memory {row['peak_mem_mb']:.0f} MB")
    out_dir = Path(args.results_dir) / "eval"
    path = write_row(out_dir, row, row_schema([], metric_outputs()))
    print(f"Row: {path}")
    return 0


def cmd_demo(args) -> int:
    from bench.demo import DEMO_SUITES, render_paris, run_paris_demo
    from bench.models.prepare import default_cache

    cache = Path(args.cache_dir).resolve() if args.cache_dir else default_cache()
    if args.model not in DEMO_SUITES[args.name]:
        raise SuiteError(f"--model: no {args.name} demo for {args.model!r}; allowed: {', '.join(DEMO_SUITES[args.name])}")
    result = run_paris_demo(cache, args.model, threads=args.threads)
    print(f"\n{render_paris(result)}\n\nUnlearning {result['train_s']:.1f} s; whole demo {result['seconds']:.0f} s "
          f"(models cached in {cache})")
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not an integer >= 1")
    return value


def cmd_perf(args) -> int:
    from benchperf import DEFAULT_SUITE, run_perf
    from bench.models.prepare import default_cache

    cache = Path(args.cache_dir).resolve() if args.cache_dir else default_cache()
    run_perf(cache, args.suite or DEFAULT_SUITE, steps=args.steps, repeats=args.repeats, json_path=args.json)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench", description="Benchmark harness for LLM unlearning.")
    sub = parser.add_subparsers(dest="command", required=True)

    def suite_command(name, help_text, fn, ray=True):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("suite", help="suite YAML file, e.g. suites/tofu_small.yaml")
        p.add_argument("--cache-dir", help="prepared data and models (default: $BENCH_CACHE or ~/.cache/unlearning-bench)")
        if ray:
            p.add_argument("--address", help="address of an existing Ray cluster (default: start a local one)")
        p.add_argument("--storage", metavar="DIR",
                       help="one directory for the prepare cache (DIR/cache) and the results (DIR/results), e.g. a "
                            "disk every node of a cluster mounts at the same path; --cache-dir and --results-dir "
                            "override its parts")
        p.add_argument("--smoke", action="store_true", help="a tiny, minutes-long version of the suite (name + _smoke)")
        p.set_defaults(fn=fn)
        return p

    run = suite_command("run", "prepare models, run every trial of a suite, print the leaderboard", cmd_run)
    run.add_argument("--results-dir", help="where <suite>/ goes (default: DIR/results with --storage, else results)")
    run.add_argument("--max-concurrent", type=int, help="at most this many trials at once (default: as resources allow)")
    run.add_argument("--skip-memory-check", action="store_true",
                     help="run even where `bench plan` estimates that a configuration exceeds a device (the estimate "
                          "counts every sequence at prepare.max_length: an upper bound)")
    run.add_argument("--retry-failed", action="store_true",
                     help="also run again the trials whose row has status failed (diverged ones are results, kept)")
    suite_command("prepare", "build (or find) the data, target and retain models of a suite", cmd_prepare)
    meta = suite_command("meta", "meta-evaluate the metrics: faithfulness (knowing vs unknowing model pools) and "
                         "robustness (quantization, relearning) of each; writes results/SUITE/_meta/meta.md (runs in this "
                         "process, without Ray)", cmd_meta, ray=False)
    meta.add_argument("--results-dir", help="where <suite>/_meta/ goes (default: DIR/results with --storage, else results)")
    meta.add_argument("--threads", type=int, help="torch CPU threads (default: the machine's cores, at most 4)")

    suite_command("plan", "estimate each configuration's memory per device (weights, gradients, optimizer, kept copy, "
                  "reference, activations) and check it fits the devices here", cmd_plan, ray=False)

    p = sub.add_parser("validate", help="check suite files without running anything, memory included")
    p.add_argument("suites", nargs="+")
    p.add_argument("--skip-sources", action="store_true",
                   help="check the file only, not that its models and datasets can be loaded (e.g. offline)")
    p.set_defaults(fn=cmd_validate)
    p = sub.add_parser("eval", help="evaluate any saved causal LM with the full metric set; write one row")
    p.add_argument("--model", required=True, help="hub id or save_pretrained directory of the model to score")
    p.add_argument("--data", required=True,
                   help="a directory of split .jsonl files (forget, retain, holdout, real_authors, world_facts, "
                        "forget_bio) or a suite YAML (its data and eval settings)")
    p.add_argument("--retain-model", help="the model never trained on the forget set: forget quality and privacy "
                                          "leakage compare against it (missing without it)")
    p.add_argument("--metrics", nargs="+", metavar="FAMILY", help="metric families to run (default: all; "
                                                                  "see `bench list metrics`)")
    p.add_argument("--label", default="external", help="the row's `method` column (default: external)")
    p.add_argument("--results-dir", default="results", help="the row goes to <results-dir>/eval/ (default: results)")
    p.add_argument("--cache-dir", help="where a suite's data is generated (default: $BENCH_CACHE or ~/.cache/unlearning-bench)")
    p.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    p.add_argument("--prompt", choices=PROMPT_FORMATS, default="auto",
                   help="how questions become prompts: chat (the tokenizer's chat template), plain (Question:/Answer:), "
                        "or auto: chat where the tokenizer has a template (default)")
    p.add_argument("--precision", choices=("auto", *PRECISIONS), default="auto",
                   help="the weights' precision, as a suite's `prepare.precision` names it (default: auto, as saved)")
    p.add_argument("--batch-size", type=int, help="sequences per forward pass (default: the suite's, or 64)")
    p.add_argument("--max-new-tokens", type=int, help="greedy answer budget (default: the suite's, or 200)")
    p.add_argument("--extraction-strength", choices=EXTRACTION_STRENGTHS,
                   help="which definition of extraction strength (metrics/memorization.py; default: the suite's, or "
                        "harness)")
    p.set_defaults(fn=cmd_eval)
    p = sub.add_parser("demo", help="a classic demonstration: `paris` forgets the capital of France, keeps London")
    p.add_argument("name", choices=["paris"])
    p.add_argument("--model", default="tiny-llama",
                   help="tiny-llama (trained on capital facts here, ~1 minute) or smollm2-135m (the real pretrained "
                        "SmolLM2-135M-Instruct as it is, prompted through its chat template; ~2 minutes)")
    p.add_argument("--cache-dir", help="prepare cache (default $BENCH_CACHE or ~/.cache/unlearning-bench)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.set_defaults(fn=cmd_demo)
    p = sub.add_parser("list", help="list registered methods, metrics, attacks, data kinds or named models")
    p.add_argument("what", choices=["methods", "metrics", "attacks", "data", "models"])
    p.set_defaults(fn=cmd_list)
    p = sub.add_parser("leaderboard", help="print the leaderboard of a results directory: each method at the setting "
                                           "and checkpoint selected on the validation authors (as _leaderboard.md)")
    p.add_argument("results", help="e.g. results/tofu_small")
    p.add_argument("--every-setting", action="store_true",
                   help="every setting at its last step instead, without selection (as _settings.md)")
    p.set_defaults(fn=cmd_leaderboard)
    p = sub.add_parser("status", help="done / diverged / failed / pending trials per model and method of a results "
                                      "directory (works while the suite runs)")
    p.add_argument("results", help="e.g. results/tofu_small")
    p.set_defaults(fn=cmd_status)
    p = sub.add_parser("report", help="write results/SUITE/_report/report.md and its figures; print the leaderboard")
    p.add_argument("results", help="e.g. results/tofu_small")
    p.set_defaults(fn=cmd_report)
    p = sub.add_parser("ablate", help="a metric over two columns, mean over seeds: a Markdown grid and a heatmap "
                                      "in results/SUITE/_report/")
    p.add_argument("results", help="e.g. results/ablation_factor_lr")
    p.add_argument("--x", required=True, help="column across the grid, e.g. hp.forget_factor (hp. may be left out)")
    p.add_argument("--y", required=True, help="column down the grid, e.g. hp.lr")
    p.add_argument("--metric", default="forget_quality",
                   help="numeric column averaged per cell (default: forget_quality, averaged as log10)")
    p.add_argument("--model", help="only this model's rows (needed when several models have both columns)")
    p.add_argument("--method", help="only this method's rows (needed when several methods have both columns)")
    p.set_defaults(fn=cmd_ablate)
    p = sub.add_parser("perf", help="measure the harness's overhead, scaling, train loop and evaluation work on "
                                    "this machine; print each ratio with its target")
    p.add_argument("--cache-dir", help="prepare cache (default: $BENCH_CACHE or ~/.cache/unlearning-bench); "
                                       "a cold one is prepared first, timed apart")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    p.add_argument("--suite", help="suite whose first model and grad_diff trial are the workload "
                                   "(default: the shipped suites/tofu_small.yaml)")
    p.add_argument("--steps", type=_positive_int, help="unlearning steps of the measured trials (default: the suite's)")
    p.add_argument("--repeats", type=_positive_int, default=5, help="runs of each train loop; the median counts (default 5)")
    p.set_defaults(fn=cmd_perf)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except (SuiteError, ReportError, LockedError, PluginError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        print(f"\n{err or 'Interrupted. Finished rows are kept; run the same command again to finish the rest.'}",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
