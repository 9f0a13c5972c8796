"""The rows a run into a store would process, and in how many shards, decided without running it.

Why through the store's own functions: a plan must pick the rows the run will pick (``rows_to_run`` on
the store as it is now: pending rows, errors that may be transient, every error with ``retry_failed``,
inputs whose content changed) and refuse what the run would refuse (a store of other inputs, or, when
the extractor is given, of another configuration), so that a dry run and the run cannot disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from audiosep_kit.audio import AudioSegment
from audiosep_kit.errors import ConfigError
from audiosep_kit.features._store import (
    FeatureStore,
    as_segment,
    check_extends,
    holds_store,
    rows_to_run,
    store_manifest,
)


@dataclass(frozen=True)
class RowPlan:
    """What a run would do with a store: ``store`` is 'new', 'overwrite' or 'resume'; ``rows`` the rows
    it would process, in order, ``reasons`` how many are new, retried and changed; ``kept`` rows stay."""

    store: str
    rows: list[int]
    reasons: dict[str, int]
    kept: int
    chunk_size: int

    @property
    def shards(self) -> int:
        """Committed chunks the run writes (``chunk_size`` rows each, the last one shorter)."""
        return -(-len(self.rows) // self.chunk_size)

    def describe(self) -> dict:
        return {
            "store": self.store,
            "rows_to_run": len(self.rows),
            **{f"rows_{name}": count for name, count in self.reasons.items()},
            "rows_kept": self.kept,
            "chunk_size": self.chunk_size,
            "shards": self.shards,
        }


def plan_rows(
    sources: Sequence[AudioSegment | str | Path],
    out_dir: str | Path,
    *,
    chunk_size: int = 64,
    overwrite: bool = False,
    retry_failed: bool = False,
    verify_content: bool = False,
    extractor=None,
) -> RowPlan:
    """The rows ``extract_to_store`` with these arguments would process now, without writing anything.

    Without ``extractor`` only the inputs are checked against an existing store (a run with another
    model configuration would still be refused; the plan cannot see that). Raises StoreError where the
    run would.
    """
    if chunk_size < 1:
        raise ConfigError(f"`chunk_size` must be >= 1; got {chunk_size}.")
    segments = [as_segment(s) for s in sources]
    root = Path(out_dir)
    if overwrite or not holds_store(root):
        everything = {"new": len(segments), "retried": 0, "changed": 0}
        state = "overwrite" if holds_store(root) else "new"
        return RowPlan(state, list(range(len(segments))), everything, 0, chunk_size)
    store = FeatureStore.open(root)
    check_extends(store, store_manifest(extractor, [s.key for s in segments]))
    rows, reasons = rows_to_run(store, retry_failed, verify_content)
    return RowPlan("resume", rows, reasons, len(segments) - len(rows), chunk_size)
