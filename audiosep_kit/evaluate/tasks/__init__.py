"""Evaluation tasks: what each task is (``Task``), its examples (``Example``), and the one registry.

    from audiosep_kit.evaluate.tasks import TASKS, get_task, load_examples
    examples = load_examples("esc50", "/data")          # or $AUDIOSEP_DATA_ROOT, or task_root=...

One private module per dataset family (ESC-50, UrbanSound8K, ICBHI, NSynth, LibriSpeech, Speech
Commands) holds its Task objects, its layout and protocol notes, and its reader; ``TASKS`` lists them.
``csv:PATH`` and ``folder:DIR`` name a user's own data (``_custom``; docs/custom-datasets.md).
"""

from __future__ import annotations

from audiosep_kit.evaluate.tasks._common import DATA_ROOT_ENV, DataLocation
from audiosep_kit.evaluate.tasks._custom import CSV_PREFIX, FOLDER_PREFIX, N_FOLDS, is_custom, run_name
from audiosep_kit.evaluate.tasks._librispeech import split_manifest
from audiosep_kit.evaluate.tasks._registry import TASKS, Reader, get_task, load_examples, load_metadata, resolve_task
from audiosep_kit.evaluate.tasks._task import PROTOCOL_KINDS, Example, Task

__all__ = [
    "CSV_PREFIX",
    "FOLDER_PREFIX",
    "N_FOLDS",
    "DATA_ROOT_ENV",
    "DataLocation",
    "Example",
    "PROTOCOL_KINDS",
    "Reader",
    "TASKS",
    "Task",
    "get_task",
    "is_custom",
    "load_examples",
    "load_metadata",
    "resolve_task",
    "run_name",
    "split_manifest",
]
