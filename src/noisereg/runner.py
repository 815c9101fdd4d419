"""Runs experiments seed by seed into a results directory and builds their summaries."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from noisereg._progress import bar
from noisereg.experiments.base import (
    Experiment,
    Summary,
    config_hash,
    config_to_dict,
    to_jsonable,
)
from noisereg.results.store import read_runs, write_json, write_runs


def run_experiment(
    exp: Experiment,
    config: Any,
    seeds: Sequence[int],
    out: Path,
    *,
    preset: str,
    resume: bool = False,
) -> Summary:
    """Run ``exp`` for every seed, write ``out/<name>/`` and return the summary.

    With ``resume``, seeds already stored for the same config hash are not run again. Each
    finished seed is written at once (atomically), so an interrupted run loses only the seed
    in progress.
    """
    directory = Path(out) / exp.name
    digest = config_hash(config)
    stored = read_runs(directory / "runs.jsonl") if resume else []
    records = {r["seed"]: r for r in stored if r["config_hash"] == digest and r["seed"] in seeds}
    write_json(directory / "config.json", {"experiment": exp.name, "preset": preset,
                                           "config": config_to_dict(config),
                                           "config_hash": digest, "seeds": list(seeds)})
    write_runs(directory / "runs.jsonl", [records[s] for s in sorted(records)])
    for seed in bar([s for s in seeds if s not in records], desc=exp.name):
        start = time.perf_counter()
        metrics = to_jsonable(exp.run(config, seed))
        records[seed] = {"experiment": exp.name, "config_hash": digest, "seed": seed,
                         "metrics": metrics, "seconds": round(time.perf_counter() - start, 3)}
        write_runs(directory / "runs.jsonl", [records[s] for s in sorted(records)])
    summary: Summary = {
        "experiment": exp.name,
        "paper": exp.paper,
        "claim": exp.claim,
        "preset": preset,
        "config": config_to_dict(config),
        "config_hash": digest,
        "seeds": list(seeds),
        # Timings stay in runs.jsonl: the summary is identical for identical seeds.
        "runs": [{"seed": s, "metrics": records[s]["metrics"]} for s in seeds],
    }
    summary["claims"] = [c.to_json() for c in exp.decided(summary)]
    summary["plots"] = list(exp.plot(summary, directory))
    summary = to_jsonable(summary)
    write_json(directory / "summary.json", summary)
    return summary
