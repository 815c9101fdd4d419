"""Results on disk: per-seed records for resume, validated summaries, the report."""

from noisereg.lab.results.store import ResultsError

__all__ = ["ResultsError"]
