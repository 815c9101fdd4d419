"""Runs experiments seed by seed into a results directory and builds their summaries.

The finished results of an experiment, ``DIR/<name>/``, are replaced only by a run that
succeeds. A run works in ``DIR/.<name>.partial/``: each finished seed is added to its
``runs.jsonl`` at once (an interrupted run resumes from there with ``resume=True``), then the
claims and plots are made there, ``summary.json`` last. That file marks the run as done: its
files are moved into ``DIR/<name>/``, the summary last, and a writer that finds a partial
folder with a summary (a commit cut short) completes the commit before anything else. A run
that raises leaves ``DIR/<name>/`` as it was and ends with :class:`RunError`.

Everything is written by one process holding the folder's lock (:mod:`noisereg.lab.results.lock`).
:func:`run_seed` is a pure function of (experiment, config, seed): a parallel runner hands it
to workers and writes the records they return.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from noisereg._atomic import remove_stale_temps, write_json
from noisereg.lab._progress import Eta, bar
from noisereg.lab._threads import one_thread
from noisereg.lab.experiments.base import (
    Experiment,
    Summary,
    config_to_dict,
    to_jsonable,
)
from noisereg.lab.results.lock import writer_lock
from noisereg.lab.results.store import (
    ResultsError,
    nonfinite_paths,
    read_json,
    read_runs,
    read_summary,
    write_runs,
)

Record = dict[str, Any]
_POLL_SECONDS = 1.0  # how often jobs that are not concurrent.futures.Future are asked


class RunError(RuntimeError):
    """An experiment raised while running a seed, deciding its claims or plotting."""


def _partial(out: Path, name: str) -> Path:
    return out / f".{name}.partial"


def _failure(exp: Experiment, what: str, err: BaseException, out: Path, kept: int = 0
             ) -> RunError:
    text = " ".join(str(err).split()) or "no message"
    rest = f" ({kept} finished seed(s) kept for --resume)" if kept else ""
    return RunError(f"{exp.name}: {what} failed: {type(err).__name__}: {text}; the results in "
                    f"{out / exp.name} are unchanged{rest}")


def run_seed(exp: Experiment, config: Any, seed: int, digest: str) -> Record:
    """The record of one seed. Its metrics are in their stored form (JSON, keys sorted), so a
    resumed run builds exactly what a fresh one builds; non-finite values are null and their
    paths listed in ``nonfinite``."""
    start = time.perf_counter()
    with one_thread():  # the same numbers in this process and in a worker of any pool
        raw = exp.run(config, seed)
    if not isinstance(raw, dict) or not raw:
        raise TypeError(f"run must return a non-empty dict of metrics, got {type(raw).__name__}")
    metrics = json.loads(json.dumps(to_jsonable(raw), sort_keys=True, allow_nan=False))
    record = {"experiment": exp.name, "config_hash": digest, "seed": seed, "metrics": metrics,
              "seconds": round(time.perf_counter() - start, 3)}
    flagged = sorted(nonfinite_paths(raw))
    if flagged:
        record["nonfinite"] = flagged
    return record


def _as_floats(value: Any) -> Any:
    """Stored metrics with null (a non-finite value) read back as NaN, for claims and plots."""
    if isinstance(value, dict):
        return {k: _as_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_floats(v) for v in value]
    return math.nan if value is None else value


def _reusable(exp: Experiment, out: Path, digest: str) -> dict[int, Record]:
    """Seeds of this config already finished: in the partial folder or the finished results."""
    stored = []
    folder = out / exp.name
    if (folder / "summary.json").exists():
        summary = read_summary(folder / "summary.json")  # checks runs.jsonl against it
        stored = read_runs(folder / "runs.jsonl", experiment=exp.name, seeds=summary["seeds"])
    stored += read_runs(_partial(out, exp.name) / "runs.jsonl", experiment=exp.name)
    return {r["seed"]: r for r in stored if r["config_hash"] == digest}


def _commit(partial: Path, folder: Path) -> None:
    """Move the finished run of ``partial`` into ``folder``: every file the summary needs,
    ``summary.json`` last; then drop the previous run's plots the new one does not make."""
    names = ["config.json", "runs.jsonl", *_plot_names(partial / "summary.json")]
    try:
        previous = _plot_names(folder / "summary.json")
    except ResultsError:  # no previous run, or one that is unreadable: nothing to drop
        previous = []
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        if (partial / name).is_file():  # already moved when completing a cut-short commit
            (partial / name).replace(folder / name)
    (partial / "summary.json").replace(folder / "summary.json")
    for name in set(previous) - set(names):
        (folder / name).unlink(missing_ok=True)
    shutil.rmtree(partial)


def _is_file_name(name: object) -> bool:
    """A plain file name: no folder part, so nothing outside the folder it is joined to."""
    return isinstance(name, str) and name not in ("", ".", "..") and Path(name).name == name


def _plot_names(path: Path) -> list[str]:
    """The plots a summary names."""
    try:
        plots = read_json(path)["plots"]
    except (TypeError, KeyError):
        plots = None
    if not (isinstance(plots, list) and all(_is_file_name(p) for p in plots)):
        raise ResultsError(f"{path}: corrupted results file: plots must be a list of file names")
    return plots


def recover(out: Path) -> None:
    """Under the lock: remove temp files of killed writers and complete cut-short commits."""
    out = Path(out)
    remove_stale_temps(out)
    for child in sorted(p for p in out.iterdir() if p.is_dir()):
        remove_stale_temps(child)
        if child.name.startswith(".") and child.name.endswith(".partial") \
                and (child / "summary.json").is_file():
            _commit(child, out / child.name[1:-len(".partial")])


@dataclass
class _Job:
    """One experiment's run in progress: the records it has, the seeds it still needs."""

    exp: Experiment
    config: Any
    seeds: list[int]
    preset: str
    digest: str
    partial: Path
    cache: dict[tuple[str, int], Record]  # every record of the partial folder's runs.jsonl
    records: dict[int, Record] = field(default_factory=dict)

    @property
    def missing(self) -> list[int]:
        return [s for s in self.seeds if s not in self.records]

    def add(self, seed: int, record: Record) -> None:
        """Store a finished seed at once, so an interrupted run keeps it."""
        self.records[seed] = self.cache[(self.digest, seed)] = record
        write_runs(self.partial / "runs.jsonl", list(self.cache.values()))


def _job(exp: Experiment, config: Any, seeds: Sequence[int], out: Path, preset: str,
         resume: bool) -> _Job:
    partial, digest = _partial(out, exp.name), exp.digest(config)
    # Without resume the partial folder's records (an unfinished run) are replaced.
    cache = {(r["config_hash"], r["seed"]): r for r in read_runs(
        partial / "runs.jsonl", experiment=exp.name)} if resume else {}
    done = _reusable(exp, out, digest) if resume else {}
    seeds = list(seeds)
    return _Job(exp, config, seeds, preset, digest, partial, cache,
                {s: done[s] for s in seeds if s in done})


Run = tuple[Experiment, Any, Sequence[int], str]  # experiment, config, seeds, preset


def run_many(runs: Sequence[Run], out: Path, *, resume: bool = False,
             executor: Executor | None = None,
             on_done: Callable[[Summary, Eta], None] | None = None) -> list[Summary]:
    """Run every (experiment, config, seeds, preset) of ``runs`` into ``out``; the summaries.

    Each seed is a unit of work: in this process one after another when ``executor`` is None,
    else every unit is submitted to ``executor`` (any :class:`concurrent.futures.Executor`: a
    local process pool, a cluster's) and this process, the folder's one writer, records what
    the units return. An experiment is finished (claims, plots, commit) as soon as its last
    seed is in, and ``on_done`` is called with its summary and the run's progress (units done
    out of those to run, and the time left). The summaries are the same bytes
    whatever the executor. On a failure, Ctrl-C or SIGTERM the pending units are cancelled;
    the finished seeds are kept for ``resume``.
    """
    out = Path(out)
    with writer_lock(out):
        recover(out)
        jobs = [_job(exp, config, seeds, out, preset, resume)
                for exp, config, seeds, preset in runs]
        summaries: dict[int, Summary] = {}

        def finished(i: int) -> None:
            job = jobs[i]
            summaries[i] = _finish(job.exp, job.config, job.seeds, job.records, job.partial,
                                   out / job.exp.name, preset=job.preset)
            if on_done is not None:
                on_done(summaries[i], eta)

        units = [(i, seed) for i, job in enumerate(jobs) for seed in job.missing]
        eta = Eta(len(units))
        for i, job in enumerate(jobs):
            if not job.missing:
                finished(i)
        results = _inline(jobs, units) if executor is None else _submitted(executor, jobs, units)
        for i, seed, result in bar(results, desc="units", total=len(units)):
            job = jobs[i]
            try:
                record = result()
            except Exception as err:
                raise _failure(job.exp, f"seed {seed}", err, out, kept=len(job.records)) \
                    from err
            job.add(seed, record)
            eta.update()
            if not job.missing:
                finished(i)
        return [summaries[i] for i in range(len(jobs))]


Unit = tuple[int, int, Callable[[], Record]]  # job index, seed, the record (or its error)


def _inline(jobs: list[_Job], units: list[tuple[int, int]]) -> Iterator[Unit]:
    """Every unit run in this process when its result is asked for."""
    for i, seed in units:
        job = jobs[i]
        yield i, seed, lambda job=job, seed=seed: run_seed(job.exp, job.config, seed, job.digest)


def _submitted(executor: Executor, jobs: list[_Job], units: list[tuple[int, int]]
               ) -> Iterator[Unit]:
    """Submit every unit; yield them as they complete. Leaving early (a failure, Ctrl-C)
    cancels the units not started."""
    futures = {executor.submit(run_seed, jobs[i].exp, jobs[i].config, seed, jobs[i].digest):
               (i, seed) for i, seed in units}
    try:
        for future in _completed(list(futures)):
            yield (*futures[future], future.result)
    finally:
        for future in futures:
            future.cancel()


def _completed(futures: list[Any]) -> Iterator[Any]:
    """The futures as they complete. A cluster executor's jobs may only look like futures
    (``done``, ``result``, ``cancel``; submitit's do): those are polled."""
    if all(isinstance(f, Future) for f in futures):
        yield from as_completed(futures)
        return
    while futures:
        done = [f for f in futures if f.done()]
        futures = [f for f in futures if f not in done]
        yield from done
        if not done:
            time.sleep(_POLL_SECONDS)


def run_experiment(exp: Experiment, config: Any, seeds: Sequence[int], out: Path, *,
                   preset: str, resume: bool = False, executor: Executor | None = None
                   ) -> Summary:
    """Run ``exp`` for every seed, replace ``out/<name>/`` and return the summary.

    With ``resume``, seeds already finished for the same config hash are not run again. The
    seeds run on ``executor`` when given (see :func:`run_many`). Raises :class:`RunError` when
    the experiment raises (the finished results are kept),
    :class:`~noisereg.lab.results.lock.LockedError` when another process writes ``out``.
    """
    return run_many([(exp, config, seeds, preset)], out, resume=resume, executor=executor)[0]


def _finish(exp: Experiment, config: Any, seeds: list[int], records: dict[int, Record],
            partial: Path, folder: Path, *, preset: str) -> Summary:
    """Claims, plots and summary in ``partial``, then the commit into ``folder``."""
    runs = [{"seed": s, "metrics": records[s]["metrics"],
             **({"nonfinite": records[s]["nonfinite"]} if "nonfinite" in records[s] else {})}
            for s in seeds]
    summary: Summary = {
        "experiment": exp.name, "paper": exp.paper, "claim": exp.claim, "preset": preset,
        "config": config_to_dict(config), "config_hash": exp.digest(config), "seeds": seeds,
        # Timings stay in runs.jsonl: the summary is identical for identical seeds.
        "runs": runs,
    }
    view = {**summary, "runs": [{**r, "metrics": _as_floats(r["metrics"])} for r in runs]}
    try:
        summary["claims"] = [c.to_json() for c in exp.decided(view)]
    except Exception as err:
        raise _failure(exp, "deciding the claims", err, folder.parent) from err
    partial.mkdir(parents=True, exist_ok=True)
    try:
        plots = list(exp.plot(view, partial))
    except Exception as err:
        if not any("nonfinite" in r for r in runs):
            raise _failure(exp, "plotting", err, folder.parent) from err
        plots = []  # a diverged seed the plot cannot draw: no plots, its claims fail
    if not all(_is_file_name(p) and (partial / p).is_file() for p in plots):
        raise _failure(exp, "plotting", ValueError(f"plot returned {plots!r}, not names of "
                                                   "files it wrote"), folder.parent)
    summary["plots"] = plots
    summary = to_jsonable(summary)
    write_runs(partial / "runs.jsonl", [records[s] for s in seeds])
    write_json(partial / "config.json", {key: summary[key] for key in (
        "experiment", "preset", "config", "config_hash", "seeds")})
    write_json(partial / "summary.json", summary)  # the run is done: commit
    _commit(partial, folder)
    return summary


def reproduce(out: Path, *, preset: str = "quick", only: Sequence[str] | None = None,
              resume: bool = False, executor: Executor | None = None,
              on_done: Callable[[Summary, Eta], None] | None = None) -> list[Summary]:
    """Run every experiment (or those named in ``only``) with the preset's config and seeds,
    then write ``out/report.md`` and ``out/report.html``; the summaries, in registry order.

    ``executor`` runs the seeds (see :func:`run_many`): None runs them in this process, and
    any :class:`concurrent.futures.Executor` will do, e.g. a local process pool or a cluster's.
    """
    from noisereg.lab.experiments.registry import experiments, get
    from noisereg.lab.results.report import write_report

    registry = experiments()
    selected = [get(name) for name in only] if only else list(registry.values())
    runs = [(exp, exp.preset(preset), range(exp.default_seeds(preset)), preset)
            for exp in selected]
    with writer_lock(out):  # one writer from the first experiment to the report
        summaries = run_many(runs, out, resume=resume, executor=executor, on_done=on_done)
        write_report(Path(out), list(registry), {n: e.description for n, e in registry.items()})
    return summaries
