"""Results on disk: per-seed records for resume, validated summaries, the report."""

from noisereg.results.store import ResultsError

__all__ = ["ResultsError"]
