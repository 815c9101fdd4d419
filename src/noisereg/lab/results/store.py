"""Files of one experiment's results, written atomically (:mod:`noisereg._atomic`).

Layout of ``DIR/<experiment>/``: ``config.json``, ``runs.jsonl`` (one record per seed, keyed by
the config hash so ``--resume`` only reuses runs of the same config), ``summary.json`` and plots.
A reader refuses, naming the file, a file it cannot parse, that lacks the expected keys or
holds a wrongly typed value, and a summary that does not match its folder's ``config.json``
and ``runs.jsonl``: results are never used silently when corrupted.

A metric that was not finite is stored as null, and its path is listed in the record's
``nonfinite`` (see :func:`nonfinite_paths`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from noisereg._atomic import atomic_write_text

SUMMARY_KEYS = ("experiment", "paper", "claim", "preset", "config", "config_hash", "seeds", "runs",
                "claims", "plots")
CLAIM_KEYS = ("name", "source", "statement", "basis", "expected", "rule", "measured", "interval",
              "seeds", "outcome", "verdict", "note")
RUN_KEYS = ("experiment", "config_hash", "seed", "metrics")
_TEXT_FIELDS = ("experiment", "paper", "claim", "preset", "config_hash")
_CLAIM_TEXT = ("name", "statement", "basis", "expected", "rule", "verdict", "note")



class ResultsError(RuntimeError):
    """A results file that is missing, unreadable or does not have the expected structure."""


def nonfinite_paths(value: Any, path: str = "") -> list[str]:
    """Paths ("key/index/key") of the non-finite numbers in ``value`` (dicts, lists, tuples,
    arrays, tensors); a list or array of numbers is named once, not per element."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in nonfinite_paths(v, f"{path}/{k}")]
    if hasattr(value, "detach") and hasattr(value, "tolist"):  # torch tensors
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray) and value.dtype.kind in "fc":
        return [] if np.all(np.isfinite(value)) else [path.lstrip("/")]
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, (float, int, np.number)) for v in value):
            return [] if all(math.isfinite(v) for v in value) else [path.lstrip("/")]
        return [p for i, v in enumerate(value) for p in nonfinite_paths(v, f"{path}/{i}")]
    if isinstance(value, (float, np.floating)) and not math.isfinite(value):
        return [path.lstrip("/")]
    return []


# ----------------------------------------------------------------------------- readers


def _corrupted(path: Path, what: str) -> ResultsError:
    return ResultsError(f"{path}: corrupted results file: {what}")


def _require(path: Path, record: Any, keys: tuple[str, ...], what: str) -> None:
    if not isinstance(record, dict):
        raise _corrupted(path, f"{what} is not a JSON object")
    missing = [k for k in keys if k not in record]
    if missing:
        raise _corrupted(path, f"{what} lacks {', '.join(missing)}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _text(path: Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultsError(f"{path}: results file not found") from None
    except UnicodeDecodeError as err:
        raise _corrupted(path, f"not UTF-8 ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise ResultsError(f"{path}: cannot read results file: {err.strerror}") from None


def _parse(path: Path, text: str, where: str = "") -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise _corrupted(path, f"{where}{err}") from None
    except RecursionError:
        raise _corrupted(path, f"{where}JSON nested too deeply") from None


def read_json(path: Path) -> Any:
    return _parse(path, _text(path))


def _check_run(path: Path, record: dict[str, Any], what: str) -> None:
    if not _is_int(record["seed"]) or record["seed"] < 0:
        raise _corrupted(path, f"{what}: seed must be an integer >= 0, got {record['seed']!r}")
    if not isinstance(record["metrics"], dict) or not record["metrics"]:
        raise _corrupted(path, f"{what}: metrics must be a non-empty JSON object")
    flagged = record.get("nonfinite", [])
    if not isinstance(flagged, list) or not all(isinstance(p, str) for p in flagged):
        raise _corrupted(path, f"{what}: nonfinite must be a list of metric paths")


def read_runs(path: Path, *, experiment: str | None = None,
              seeds: Iterable[int] | None = None) -> list[dict[str, Any]]:
    """The per-seed records of ``runs.jsonl`` (empty when the file does not exist).

    Each record is checked: an integer seed (among ``seeds`` when given), a non-empty metrics
    object, the experiment named ``experiment`` when given, one record per (config, seed).
    """
    path = Path(path)
    if not path.exists():
        return []
    allowed = None if seeds is None else set(seeds)
    records, seen = [], set()
    for number, line in enumerate(_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        what = f"line {number}"
        record = _parse(path, line, f"{what}: ")
        _require(path, record, RUN_KEYS, what)
        _check_run(path, record, what)
        if not isinstance(record["config_hash"], str) or not isinstance(record["experiment"],
                                                                        str):
            raise _corrupted(path, f"{what}: experiment and config_hash must be strings")
        if experiment is not None and record["experiment"] != experiment:
            raise _corrupted(path, f"{what}: a run of {record['experiment']!r}, not "
                                   f"{experiment!r}")
        if allowed is not None and record["seed"] not in allowed:
            raise _corrupted(path, f"{what}: seed {record['seed']} is not one of the seeds "
                                   f"{sorted(allowed)}")
        key = (record["config_hash"], record["seed"])
        if key in seen:
            raise _corrupted(path, f"{what}: a second record of seed {record['seed']}")
        seen.add(key)
        records.append(record)
    return records


def write_runs(path: Path, records: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(r, sort_keys=True, allow_nan=False) + "\n" for r in records)
    atomic_write_text(path, text)


def _check_claim(path: Path, claim: Any, i: int) -> None:
    from noisereg.lab.experiments.claims import OUTCOMES, SOURCES

    what = f"claim {i}"
    _require(path, claim, CLAIM_KEYS, what)
    wrong = [k for k in _CLAIM_TEXT if not isinstance(claim[k], str)]
    if claim["source"] not in SOURCES:
        wrong.append("source")
    if claim["outcome"] not in OUTCOMES:
        wrong.append("outcome")
    if claim["measured"] is not None and not _is_number(claim["measured"]):
        wrong.append("measured")
    interval = claim["interval"]
    if interval is not None and not (isinstance(interval, list) and len(interval) == 2 and all(
            v is None or _is_number(v) for v in interval)):
        wrong.append("interval")
    if not _is_int(claim["seeds"]):
        wrong.append("seeds")
    if wrong:
        raise _corrupted(path, f"{what}: wrongly typed {', '.join(wrong)}")


def _check_summary(path: Path, summary: Any) -> None:
    _require(path, summary, SUMMARY_KEYS, "the summary")
    wrong = [k for k in _TEXT_FIELDS if not isinstance(summary[k], str)]
    if not isinstance(summary["config"], dict):
        wrong.append("config (an object)")
    seeds = summary["seeds"]
    if not (isinstance(seeds, list) and seeds and all(_is_int(s) for s in seeds)
            and len(set(seeds)) == len(seeds)):
        wrong.append("seeds (distinct integers)")
    if not (isinstance(summary["plots"], list) and all(isinstance(p, str)
                                                       for p in summary["plots"])):
        wrong.append("plots (a list of file names)")
    if not isinstance(summary["claims"], list):
        wrong.append("claims (a list)")
    if not isinstance(summary["runs"], list):
        wrong.append("runs (a list)")
    if wrong:
        raise _corrupted(path, f"wrongly typed {'; '.join(wrong)}")
    for i, claim in enumerate(summary["claims"]):
        _check_claim(path, claim, i)
    for i, run in enumerate(summary["runs"]):
        _require(path, run, ("seed", "metrics"), f"run {i}")
        _check_run(path, run, f"run {i}")
    if [run["seed"] for run in summary["runs"]] != seeds:
        raise _corrupted(path, "the runs do not follow the seeds")


def _check_folder(path: Path, summary: dict[str, Any]) -> None:
    """The summary was built from its folder's config.json and runs.jsonl (one run, one config)."""
    folder = path.parent
    config = read_json(folder / "config.json")
    if not isinstance(config, dict) or any(config.get(k) != summary[k] for k in (
            "experiment", "config", "config_hash", "seeds")):
        raise ResultsError(f"{path}: the summary's config ({summary['config_hash']}) does not "
                           f"match {folder / 'config.json'}: the folder mixes two runs; rerun "
                           "the experiment")
    runs = {r["seed"]: r for r in read_runs(folder / "runs.jsonl", experiment=summary[
        "experiment"], seeds=summary["seeds"]) if r["config_hash"] == summary["config_hash"]}
    for run in summary["runs"]:
        stored = runs.get(run["seed"])
        if stored is None or stored["metrics"] != run["metrics"] \
                or stored.get("nonfinite", []) != run.get("nonfinite", []):
            raise ResultsError(f"{path}: seed {run['seed']} of the summary does not match "
                               f"{folder / 'runs.jsonl'}: the folder mixes two runs; rerun the "
                               "experiment")


def read_summary(path: Path) -> dict[str, Any]:
    """A validated ``summary.json``, consistent with its folder's config and runs."""
    path = Path(path)
    summary = read_json(path)
    _check_summary(path, summary)
    for plot in summary["plots"]:
        if not (path.parent / plot).is_file():
            raise ResultsError(f"{path}: plot {plot!r} named by the summary is missing")
    _check_folder(path, summary)
    return summary
