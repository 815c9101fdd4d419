"""Results on disk: atomic writes, per-seed records for resume, validated summaries, the report."""

from noisereg.results.store import ResultsError, atomic_write_bytes, atomic_write_text

__all__ = ["ResultsError", "atomic_write_bytes", "atomic_write_text"]
