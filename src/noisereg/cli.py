"""Command line: ``noisereg list | run | reproduce | report | bench``.

Bad input (unknown experiment, unknown or ill-typed ``--set``) prints one line and exits 2,
before anything is written.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from noisereg._progress import bar, quiet
from noisereg.experiments.base import ConfigError, apply_overrides
from noisereg.results.store import ResultsError


class UsageError(Exception):
    """Bad command-line input: reported as one line with exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="noisereg", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    listing = sub.add_parser("list", help="list the experiments: name, paper, claims and sources")
    listing.add_argument("--json", action="store_true",
                         help="print every experiment with its declared claims as JSON")

    def presets(p: argparse.ArgumentParser) -> None:
        group = p.add_mutually_exclusive_group()
        group.add_argument("--quick", dest="preset", action="store_const", const="quick")
        group.add_argument("--full", dest="preset", action="store_const", const="full")
        p.set_defaults(preset="quick")
        p.add_argument("--out", type=Path, default=Path("results"))
        p.add_argument("--quiet", action="store_true", help="no progress bars")

    run = sub.add_parser("run", help="run one experiment and print its claims")
    run.add_argument("name")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    run.add_argument("--seeds", type=int, default=None, help="number of seeds (0..N-1)")
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    run.add_argument("--resume", action="store_true")
    presets(run)

    rep = sub.add_parser("reproduce", help="run every experiment and write the report")
    rep.add_argument("--only", nargs="+", default=None, metavar="NAME")
    rep.add_argument("--resume", action="store_true", help="skip seeds already stored")
    presets(rep)

    report = sub.add_parser("report", help="rebuild the report from stored results")
    report.add_argument("dir", type=Path)

    bench = sub.add_parser("bench", help="speed targets, measured side by side")
    bench.add_argument("--only", nargs="+", default=None, metavar="NAME")
    bench.add_argument("--json", action="store_true")
    bench.add_argument("--peers", action="store_true", help="also time installed external tools")
    bench.add_argument("--write", type=Path, default=None, metavar="FILE",
                       help="write the markdown table (e.g. BENCHMARKS.md)")
    return parser


def _claims_table(summary: dict) -> str:
    from noisereg.experiments.claims import shown_verdict, void_verdicts

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
    if n < 1:
        raise UsageError(f"--seeds must be >= 1, got {n}")
    return list(range(n))


def _cmd_list(as_json: bool) -> int:
    from collections import Counter
    from dataclasses import asdict

    from noisereg.experiments.registry import experiments

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


def _cmd_run(args: argparse.Namespace) -> int:
    from noisereg.runner import run_experiment

    exp = _lookup(args.name)
    config = apply_overrides(exp.preset(args.preset), args.overrides)
    preset = args.preset if not args.overrides else f"{args.preset}+overrides"
    seeds = _seeds(args.seeds, exp.default_seeds(args.preset))
    summary = run_experiment(exp, config, seeds, args.out, preset=preset, resume=args.resume)
    print(json.dumps(summary, indent=2, sort_keys=True) if args.json else _claims_table(summary))
    return 0


def _lookup(name: str):
    from noisereg.experiments.registry import get

    try:
        return get(name)
    except ValueError as err:
        raise UsageError(str(err)) from None


def _write_report(out: Path) -> None:
    """The report of every experiment stored in ``out``, in registry order."""
    from noisereg.experiments.registry import experiments
    from noisereg.results.report import write_report

    registry = experiments()
    paths = write_report(out, list(registry), {n: e.description for n, e in registry.items()})
    print(f"report: {paths[0]} and {paths[1]}")


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from collections import Counter

    from noisereg.experiments.claims import shown_verdict, void_verdicts
    from noisereg.experiments.registry import experiments
    from noisereg.runner import run_experiment

    selected = [_lookup(n) for n in args.only] if args.only else list(experiments().values())
    for exp in bar(selected, desc="reproduce", leave=True):
        seeds = list(range(exp.default_seeds(args.preset)))
        summary = run_experiment(exp, exp.preset(args.preset), seeds, args.out,
                                 preset=args.preset, resume=args.resume)
        verdicts = Counter(shown_verdict(c, void_verdicts(summary["claims"]))
                           for c in summary["claims"])
        print(f"{exp.name}: " + ", ".join(f"{n} {v}" for v, n in sorted(verdicts.items())),
              flush=True)
    _write_report(args.out)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    _write_report(args.dir)
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from noisereg.bench import main as bench_main
    from noisereg.bench import select

    try:
        chosen = select(args.only, peers=args.peers)
    except ValueError as err:  # an unknown --only name: bad input like any other
        raise UsageError(str(err)) from None
    return bench_main(chosen, as_json=args.json, write=args.write, scaling_plot=not args.only)


def _terminate(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


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
    except (UsageError, ConfigError) as err:
        print(f"noisereg: error: {err}", file=sys.stderr)
        return 2
    except ResultsError as err:
        print(f"noisereg: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("noisereg: interrupted; finished runs are kept (rerun with --resume)",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
