"""Evaluation tasks: their metadata (``TASKS``) and readers that turn a dataset folder into Examples.

    from audiosep_kit.evaluate.tasks import TASKS, get_task, load_examples
    examples = load_examples("esc50", "/data")          # or $AUDIOSEP_DATA_ROOT, or task_root=...

One module per dataset family (esc50, urbansound8k, icbhi, nsynth, librispeech, speechcommands) holds
its Task objects, its layout and protocol notes, and its reader; ``registry`` ties them together.
"""

from __future__ import annotations

from audiosep_kit.evaluate.tasks._common import DATA_ROOT_ENV
from audiosep_kit.evaluate.tasks.librispeech import split_manifest
from audiosep_kit.evaluate.tasks.registry import (
    DATA_DEFINED_LABELS,
    READERS,
    TASKS,
    get_task,
    load_examples,
    load_metadata,
    resolve_task,
)

__all__ = [
    "TASKS",
    "READERS",
    "DATA_DEFINED_LABELS",
    "DATA_ROOT_ENV",
    "get_task",
    "resolve_task",
    "load_examples",
    "load_metadata",
    "split_manifest",
]
