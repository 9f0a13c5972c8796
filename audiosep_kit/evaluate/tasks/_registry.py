"""The task registry: one explicit dict from task name to ``Task`` (metadata and the reader of its data).

An unknown name fails with the list of valid ones. ``load_examples`` finds the task's folder
(``task_root``, else ``<data_root>/<Task.data_dir>``, else ``$AUDIOSEP_DATA_ROOT/<Task.data_dir>``) and
runs the task's reader. ``csv:PATH`` and ``folder:DIR`` name a user's own data (see ``_custom``): the
Task is read from there and no data root is needed.

Completeness is the default: metadata that names absent audio raises ``DatasetError`` (how many, the
first few, where, what to change). ``allow_missing=True`` skips them instead (cut-down samples);
``check_audio=False`` (or ``load_metadata``) returns every example the metadata names, in metadata
order, without looking for the audio: the way to align precomputed features saved in that order.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Protocol

from audiosep_kit._validation import check_choice
from audiosep_kit.errors import ConfigError
from audiosep_kit.evaluate.tasks._common import DataLocation, locate
from audiosep_kit.evaluate.tasks._custom import custom_location, custom_task, is_custom
from audiosep_kit.evaluate.tasks._esc50 import ESC10, ESC50
from audiosep_kit.evaluate.tasks._icbhi import ICBHI, ICBHI_2CLASS
from audiosep_kit.evaluate.tasks._librispeech import LIBRISPEECH_SPEAKER
from audiosep_kit.evaluate.tasks._nsynth import NSYNTH
from audiosep_kit.evaluate.tasks._speechcommands import (
    DEMO,
    SPEECHCOMMANDS_V1,
    SPEECHCOMMANDS_V1_12,
    SPEECHCOMMANDS_V2,
    SPEECHCOMMANDS_V2_12,
)
from audiosep_kit.evaluate.tasks._task import Example, Task
from audiosep_kit.evaluate.tasks._urbansound8k import URBANSOUND8K


class Reader(Protocol):
    """Reads one dataset folder into Examples whose labels index the task's label names."""

    def __call__(
        self, task: Task, location: DataLocation, *, allow_missing: bool, check_audio: bool
    ) -> list[Example]: ...


TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        ESC50,
        ESC10,
        URBANSOUND8K,
        ICBHI,
        ICBHI_2CLASS,
        NSYNTH,
        LIBRISPEECH_SPEAKER,
        SPEECHCOMMANDS_V2,
        SPEECHCOMMANDS_V1,
        SPEECHCOMMANDS_V2_12,
        SPEECHCOMMANDS_V1_12,
        DEMO,
    )
}


def get_task(name: str) -> Task:
    """The registered Task called ``name``; an unknown name raises ConfigError listing the valid ones.

    ``csv:PATH`` / ``folder:DIR`` build the Task from that data (reading it; DatasetError when malformed).
    """
    if is_custom(name):
        return custom_task(name)
    return TASKS[check_choice("task", name, TASKS)]


def _as_task(task_or_name: Task | str) -> Task:
    task = task_or_name if isinstance(task_or_name, Task) else get_task(task_or_name)
    if task.reader is None:
        raise ConfigError(f"task {task.name!r} has no dataset reader; give its Task a reader= function.")
    return task


def resolve_task(
    task_or_name: Task | str, data_root: Path | str | None = None, *, task_root: Path | str | None = None
) -> Task:
    """The Task with the label names ``load_examples`` uses for this data.

    The registered Task itself for every task with a fixed label set; for a task with
    ``labels_from_data`` a copy whose ``label_names`` are read from the data folder.
    """
    task = _as_task(task_or_name)
    if task.labels_from_data is None:
        return task
    location = _locate(task, data_root, task_root)
    return replace(task, label_names=task.labels_from_data(location))


def _locate(task: Task, data_root: Path | str | None, task_root: Path | str | None) -> DataLocation:
    """A custom task's own folder (no data root needed), else ``locate``."""
    return custom_location(task) if is_custom(task.name) else locate(task, data_root, task_root)


def load_examples(
    task_or_name: Task | str,
    data_root: Path | str | None = None,
    *,
    task_root: Path | str | None = None,
    allow_missing: bool = False,
    check_audio: bool = True,
) -> list[Example]:
    """All examples of a task, in the dataset's deterministic order (see each reader's module).

    ``data_root`` holds the datasets in their folder names (``esc50/``, ``urbansound8k/``,
    ``icbhi2017/``, ``nsynth/``, ``librispeech/``, ``speech_commands_v2/``, ``speech_commands_v1/`` or
    ``speech_commands_sc09/``); None reads ``$AUDIOSEP_DATA_ROOT``. ``task_root`` is this task's folder
    itself and wins over both. ``Example.label`` indexes ``resolve_task(...).label_names`` (the same as
    ``get_task(name).label_names`` for all but the tasks with ``labels_from_data``).

    Raises DatasetError when the folder, a metadata file or (unless ``allow_missing``) audio that the
    metadata names is absent, or when nothing is left to evaluate.
    """
    task = _as_task(task_or_name)
    location = _locate(task, data_root, task_root)
    reader: Reader = task.reader  # type: ignore[assignment]
    examples = reader(task, location, allow_missing=allow_missing, check_audio=check_audio)
    if not examples:
        raise location.error("no examples found", fix="check that the folder holds the dataset's audio")
    return examples


def load_metadata(
    task_or_name: Task | str, data_root: Path | str | None = None, *, task_root: Path | str | None = None
) -> list[Example]:
    """Every example the metadata names, in metadata order, whether or not its audio is present.

    ``load_examples(..., check_audio=False)``: e.g. the 2000 rows of ``esc50/meta/esc50.csv`` in csv
    order, to align features saved in that order (``esc50_features_audiosep.pt``, labels = ``target``).
    """
    return load_examples(task_or_name, data_root, task_root=task_root, check_audio=False)
