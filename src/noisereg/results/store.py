"""Files of one experiment's results, written atomically (temp file + rename).

Layout of ``DIR/<experiment>/``: ``config.json``, ``runs.jsonl`` (one record per seed, keyed by
the config hash so ``--resume`` only reuses runs of the same config), ``summary.json`` and plots.
A reader refuses a file it cannot parse or that lacks the expected keys: results are never used
silently when corrupted.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

SUMMARY_KEYS = ("experiment", "paper", "claim", "preset", "config", "config_hash", "seeds", "runs",
                "claims", "plots")
CLAIM_KEYS = ("name", "source", "statement", "basis", "expected", "rule", "measured", "interval",
              "seeds", "outcome", "verdict", "note")
RUN_KEYS = ("experiment", "config_hash", "seed", "metrics")


class ResultsError(RuntimeError):
    """A results file that is missing, unreadable or does not have the expected structure."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def dump_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, allow_nan=False) + "\n"


def write_json(path: Path, value: Any) -> None:
    atomic_write_text(path, dump_json(value))


def _require(path: Path, record: Any, keys: tuple[str, ...], what: str) -> None:
    if not isinstance(record, dict):
        raise ResultsError(f"{path}: corrupted results file: {what} is not a JSON object")
    missing = [k for k in keys if k not in record]
    if missing:
        raise ResultsError(f"{path}: corrupted results file: {what} lacks {', '.join(missing)}")


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError(f"{path}: results file not found") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ResultsError(f"{path}: corrupted results file: {err}") from None


def read_runs(path: Path) -> list[dict[str, Any]]:
    """The per-seed records of ``runs.jsonl`` (empty when the file does not exist)."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ResultsError(f"{path}: corrupted results file at line {number}: {err}") from None
        _require(path, record, RUN_KEYS, f"line {number}")
        records.append(record)
    return records


def write_runs(path: Path, records: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(r, sort_keys=True, allow_nan=False) + "\n" for r in records)
    atomic_write_text(path, text)


def read_summary(path: Path) -> dict[str, Any]:
    """A validated ``summary.json``."""
    path = Path(path)
    summary = read_json(path)
    _require(path, summary, SUMMARY_KEYS, "the summary")
    if not isinstance(summary["claims"], list) or not isinstance(summary["runs"], list):
        raise ResultsError(f"{path}: corrupted results file: claims and runs must be lists")
    for i, claim in enumerate(summary["claims"]):
        _require(path, claim, CLAIM_KEYS, f"claim {i}")
    for plot in summary["plots"]:
        if not (path.parent / plot).is_file():
            raise ResultsError(f"{path}: plot {plot!r} named by the summary is missing")
    return summary
