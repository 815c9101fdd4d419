"""Command line: ``noisereg list | run | reproduce | report | bench``.

Every error is one line on stderr. Exit code 2: bad input (unknown experiment, unknown or
ill-typed ``--set``, a value validation refuses, an ``--out`` that cannot hold results, a
results folder another run is writing), refused before anything is written. Exit code 1: a
failure while running (an experiment that raises, a full disk, corrupted results files), with
the finished results kept. ``NOISEREG_TRACEBACK=1`` re-raises instead, for debugging.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from noisereg.lab._progress import Eta, quiet
from noisereg.lab.experiments.base import ConfigError, apply_overrides
from noisereg.lab.results.lock import LockedError, UnwritableError, writer_lock
from noisereg.lab.results.store import ResultsError

MAX_SEEDS = 1000
MAX_JOBS = 1024
JOBS_ENV = "NOISEREG_JOBS"
LOCAL_RAY = ""  # the value of a bare --ray: a local cluster


class UsageError(Exception):
    """Bad command-line input: reported as one line with exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


class _RayAddress(argparse.Action):
    """``--ray [ADDRESS]``: a value that is not an address is refused at once, so that
    ``run --ray NAME`` names the mistake instead of taking NAME for an address."""

    def __call__(self, parser, namespace, value, option_string=None) -> None:
        from noisereg.lab._ray import check_address

        if value != LOCAL_RAY:
            try:
                check_address(value)
            except ValueError as err:
                raise argparse.ArgumentError(self, f"{err}; write --ray=ADDRESS, or --ray "
                                             "after the experiment name") from None
        setattr(namespace, self.dest, value)


def _build_parser() -> argparse.ArgumentParser:
    formatter = argparse.ArgumentDefaultsHelpFormatter  # every option shows its default
    parser = _Parser(prog="noisereg", description=__doc__.splitlines()[0],
                     formatter_class=formatter)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, description=text, formatter_class=formatter)

    listing = command("list", "list the experiments: name, paper, claims and sources")
    listing.add_argument("--json", action="store_true",
                         help="print every experiment with its declared claims as JSON")

    def presets(p: argparse.ArgumentParser) -> None:
        group = p.add_mutually_exclusive_group()
        group.add_argument("--quick", dest="preset", action="store_const", const="quick",
                           help="the quick preset (minutes on a laptop)")
        group.add_argument("--full", dest="preset", action="store_const", const="full",
                           help="the full preset (the papers' scale, hours)")
        p.set_defaults(preset="quick")
        p.add_argument("--out", type=Path, default=Path("results"),
                       help="results folder, one subfolder per experiment")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        p.add_argument("--jobs", type=int, default=None, metavar="N",
                       help="worker processes running the seeds, 1 <= N <= "
                            f"{MAX_JOBS}; 1 runs them in this process; None: ${JOBS_ENV} "
                            "if set, else the number of cores (with --ray: the local "
                            "cluster's CPUs)")
        p.add_argument("--ray", nargs="?", const=LOCAL_RAY, default=None, metavar="ADDRESS",
                       action=_RayAddress,
                       help="run the seeds on Ray (the 'ray' extra): alone, a local cluster "
                            "started for the run; --ray=ADDRESS joins a running one (auto, "
                            "HOST:PORT or ray://HOST:PORT)")

    run = command("run", "run one experiment and print its claims")
    run.add_argument("name", help="experiment name (see `noisereg list`)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config field (repeatable; tuples comma separated)")
    run.add_argument("--seeds", type=int, default=None,
                     help=f"number of seeds 0..N-1, 1 <= N <= {MAX_SEEDS}; None: the preset's")
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    run.add_argument("--resume", action="store_true",
                     help="skip seeds already finished for the same config")
    presets(run)

    rep = command("reproduce", "run every experiment and write the report")
    rep.add_argument("--only", nargs="+", default=None, metavar="NAME",
                     help="run only these experiments; None: all of them")
    rep.add_argument("--resume", action="store_true",
                     help="skip seeds already finished for the same config")
    presets(rep)

    report = command("report", "rebuild the report from stored results")
    report.add_argument("dir", type=Path, help="results folder written by run or reproduce")

    bench = command("bench", "speed targets, measured side by side")
    bench.add_argument("--only", nargs="+", default=None, metavar="NAME",
                       help="measure only these benchmarks; None: all of them")
    bench.add_argument("--json", action="store_true", help="print the measurements as JSON")
    bench.add_argument("--peers", action="store_true", help="also time installed external tools")
    bench.add_argument("--write", type=Path, default=None, metavar="FILE",
                       help="write the markdown table (e.g. BENCHMARKS.md)")
    return parser


def _claims_table(summary: dict) -> str:
    from noisereg.lab.experiments.claims import shown_verdict, void_verdicts

    void = void_verdicts(summary["claims"])

    def number(value: object) -> str:
        return "-" if value is None else f"{value:.4g}"

    rows = [(c["name"], c["source"], number(c["measured"]),
             "-" if c["interval"] is None else
             f"[{number(c['interval'][0])}, {number(c['interval'][1])}]",
             str(c["seeds"]), c["expected"], shown_verdict(c, void))
            for c in summary["claims"]]
    header = ("claim", "source", "measured", "interval", "seeds", "expected", "verdict")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in rows]
    return f"{summary['experiment']} ({summary['paper']})\n" + "\n".join(lines)


def _seeds(n: int | None, default: int) -> list[int]:
    n = default if n is None else n
    if not 1 <= n <= MAX_SEEDS:
        raise UsageError(f"--seeds must be in [1, {MAX_SEEDS}], got {n}")
    return list(range(n))


def _cmd_list(as_json: bool) -> int:
    from collections import Counter
    from dataclasses import asdict

    from noisereg.lab.experiments.registry import experiments

    registry = experiments().values()
    if as_json:
        print(json.dumps([{"name": e.name, "paper": e.paper, "claim": e.claim,
                           "claims": [{**asdict(c), "expected": c.expected}
                                      for c in e.claim_specs]} for e in registry], indent=2))
        return 0
    for exp in registry:
        counts = Counter(spec.source for spec in exp.claim_specs)
        sources = ", ".join(f"{counts[k]} {k}" for k in ("paper", "derived", "exploratory",
                                                           "sanity") if counts[k])
        print(f"{exp.name:24s} {exp.paper:38s} [{sources}] {exp.claim}")
    return 0


def _jobs(n: int | None, ray: str | None = None) -> int:
    """``--jobs``, else ``$NOISEREG_JOBS``, else the number of cores."""
    from noisereg.lab._pool import default_jobs

    if n is not None and ray not in (None, LOCAL_RAY):
        raise UsageError(f"--jobs sets the CPUs of a local Ray cluster; the one at {ray!r} "
                         "has its own")
    where = "--jobs"
    if n is None and os.environ.get(JOBS_ENV):
        where, text = JOBS_ENV, os.environ[JOBS_ENV]
        try:
            n = int(text)
        except ValueError:
            raise UsageError(f"{JOBS_ENV} must be an integer in [1, {MAX_JOBS}], got "
                             f"{text!r}") from None
    n = default_jobs() if n is None else n
    if not 1 <= n <= MAX_JOBS:
        raise UsageError(f"{where} must be in [1, {MAX_JOBS}], got {n}")
    return n


@contextmanager
def _executor(jobs: int, units: int, ray: str | None = None) -> Iterator[Executor | None]:
    """A Ray cluster's executor with ``--ray``; else None (this process) for one job or one
    unit, else a local pool of worker processes."""
    from noisereg.lab._pool import local_pool

    if ray is not None:
        from noisereg.lab._ray import RayExecutor

        local = ray == LOCAL_RAY
        try:
            pool = RayExecutor(None if local else ray, num_cpus=jobs if local else None)
        except ImportError as err:  # the extra is missing: refused before anything runs
            raise UsageError(str(err)) from None
        with pool:
            yield pool
        return
    if min(jobs, units) <= 1:
        yield None
        return
    with local_pool(min(jobs, units)) as pool:
        yield pool


def _cmd_run(args: argparse.Namespace) -> int:
    from noisereg.lab.runner import run_experiment

    exp = _lookup(args.name)
    config = apply_overrides(exp.preset(args.preset), args.overrides)
    preset = args.preset if not args.overrides else f"{args.preset}+overrides"
    seeds = _seeds(args.seeds, exp.default_seeds(args.preset))
    with _executor(_jobs(args.jobs, args.ray), len(seeds), args.ray) as executor:
        summary = run_experiment(exp, config, seeds, args.out, preset=preset,
                                 resume=args.resume, executor=executor)
    print(json.dumps(summary, indent=2, sort_keys=True) if args.json else _claims_table(summary))
    return 0


def _lookup(name: str):
    from noisereg.lab.experiments.registry import get

    try:
        return get(name)
    except ValueError as err:
        raise UsageError(str(err)) from None


def _write_report(out: Path) -> None:
    """The report of every experiment stored in ``out``, in registry order."""
    from noisereg.lab.experiments.registry import experiments
    from noisereg.lab.results.report import write_report
    from noisereg.lab.runner import recover

    if not out.is_dir():
        raise ResultsError(f"{out}: no such results directory")
    registry = experiments()
    with writer_lock(out):
        recover(out)  # a commit cut short by a killed run is completed first
        paths = write_report(out, list(registry),
                             {n: e.description for n, e in registry.items()})
    print(f"report: {paths[0]} and {paths[1]}")


def _print_verdicts(summary: dict, progress: Eta) -> None:
    """One line per finished experiment: its verdicts, the units done and the time left."""
    from collections import Counter

    from noisereg.lab.experiments.claims import shown_verdict, void_verdicts

    verdicts = Counter(shown_verdict(c, void_verdicts(summary["claims"]))
                       for c in summary["claims"])
    print(f"{summary['experiment']}: " + ", ".join(f"{n} {v}" for v, n in
                                                   sorted(verdicts.items()))
          + f" ({progress})", flush=True)


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from noisereg.lab.experiments.registry import experiments
    from noisereg.lab.runner import reproduce

    selected = [_lookup(n) for n in args.only] if args.only else list(experiments().values())
    units = sum(exp.default_seeds(args.preset) for exp in selected)
    with _executor(_jobs(args.jobs, args.ray), units, args.ray) as executor:
        reproduce(args.out, preset=args.preset, only=[exp.name for exp in selected],
                  resume=args.resume, executor=executor, on_done=_print_verdicts)
    print(f"report: {args.out / 'report.md'} and {args.out / 'report.html'}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    _write_report(args.dir)
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from noisereg.lab.bench import main as bench_main
    from noisereg.lab.bench import select

    try:
        chosen = select(args.only, peers=args.peers)
    except ValueError as err:  # an unknown --only name: bad input like any other
        raise UsageError(str(err)) from None
    return bench_main(chosen, as_json=args.json, write=args.write, scaling_plot=not args.only)


def _terminate(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


def _error(err: Exception, code: int) -> int:
    """Print ``err`` as one line (newlines in values escaped) and return ``code``."""
    from noisereg.lab.runner import RunError

    if isinstance(err, OSError) and err.strerror:
        text = f"{err.strerror}: {err.filename}" if err.filename else err.strerror
    elif isinstance(err, (UsageError, ConfigError, ResultsError, RunError)):
        text = str(err)
    else:  # not one of ours: name it, the traceback is one variable away
        text = f"{type(err).__name__}: {err} (NOISEREG_TRACEBACK=1 shows where)"
    print("noisereg: error: " + text.replace("\n", "\\n").replace("\r", "\\r"),
          file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``noisereg`` console script; returns the exit code."""
    try:
        args = _build_parser().parse_args(argv)
        signal.signal(signal.SIGTERM, _terminate)  # SIGTERM stops like Ctrl-C: no partial file
        with quiet(getattr(args, "quiet", False)):
            handler = {"list": lambda: _cmd_list(args.json), "run": lambda: _cmd_run(args),
                       "reproduce": lambda: _cmd_reproduce(args),
                       "report": lambda: _cmd_report(args), "bench": lambda: _cmd_bench(args)}
            return handler[args.command]()
    except KeyboardInterrupt:
        print("noisereg: interrupted; finished runs are kept (rerun with --resume)",
              file=sys.stderr)
        return 130
    except Exception as err:
        if os.environ.get("NOISEREG_TRACEBACK"):
            raise
        bad_input = isinstance(err, (UsageError, ConfigError, LockedError, UnwritableError))
        return _error(err, 2 if bad_input else 1)


if __name__ == "__main__":
    sys.exit(main())
