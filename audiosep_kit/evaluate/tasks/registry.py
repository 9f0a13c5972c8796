"""The task registry: task name -> ``Task`` metadata, and task name -> the reader of its dataset.

Both are explicit dicts, so the set of tasks is visible in one place and an unknown name fails with
the list of valid ones. ``load_examples`` finds the task's folder (``task_root``, else
``<data_root>/<Task.data_dir>``, else ``$AUDIOSEP_DATA_ROOT/<Task.data_dir>``) and runs its reader.

Completeness is the default: metadata that names absent audio raises ``DatasetError`` (how many, the
first few, where, what to change). ``allow_missing=True`` skips them instead (cut-down samples);
``check_audio=False`` (or ``load_metadata``) returns every example the metadata names, in metadata
order, without looking for the audio: the way to align precomputed features saved in that order.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Protocol

from audiosep_kit.errors import ConfigError
from audiosep_kit.evaluate.task import Example, Task
from audiosep_kit.evaluate.tasks import esc50, icbhi, librispeech, nsynth, speechcommands, urbansound8k
from audiosep_kit.evaluate.tasks._common import DataLocation, locate

__all__ = [
    "TASKS",
    "READERS",
    "DATA_DEFINED_LABELS",
    "Reader",
    "get_task",
    "resolve_task",
    "load_examples",
    "load_metadata",
]


class Reader(Protocol):
    """Reads one dataset folder into Examples whose labels index the task's label names."""

    def __call__(
        self, task: Task, location: DataLocation, *, allow_missing: bool, check_audio: bool
    ) -> list[Example]: ...


TASKS: dict[str, Task] = {
    "esc50": esc50.ESC50,
    "esc10": esc50.ESC10,
    "urbansound8k": urbansound8k.URBANSOUND8K,
    "icbhi": icbhi.ICBHI,
    "icbhi-2class": icbhi.ICBHI_2CLASS,
    "nsynth": nsynth.NSYNTH,
    "librispeech-speaker": librispeech.LIBRISPEECH_SPEAKER,
    "speechcommands-v2": speechcommands.SPEECHCOMMANDS_V2,
    "speechcommands-v1": speechcommands.SPEECHCOMMANDS_V1,
    "speechcommands-v2-12": speechcommands.SPEECHCOMMANDS_V2_12,
    "speechcommands-v1-12": speechcommands.SPEECHCOMMANDS_V1_12,
    "demo-words": speechcommands.DEMO,
}

READERS: dict[str, Reader] = {
    "esc50": esc50.read_esc50,
    "esc10": esc50.read_esc50,
    "urbansound8k": urbansound8k.read_urbansound8k,
    "icbhi": icbhi.read_icbhi,
    "icbhi-2class": icbhi.read_icbhi,
    "nsynth": nsynth.read_nsynth,
    "librispeech-speaker": librispeech.read_librispeech_speaker,
    "speechcommands-v2": speechcommands.read_speech_commands,
    "speechcommands-v1": speechcommands.read_speech_commands,
    "speechcommands-v2-12": speechcommands.read_speech_commands,
    "speechcommands-v1-12": speechcommands.read_speech_commands,
    "demo-words": speechcommands.read_speech_commands,
}

#: Tasks whose label names are read from the data: ``TASKS[name].label_names`` is a placeholder there,
#: and ``resolve_task`` gives the real ones (LibriSpeech: the speaker folders of train-clean-100).
DATA_DEFINED_LABELS: frozenset[str] = frozenset({"librispeech-speaker"})


def get_task(name: str) -> Task:
    """The registered Task called ``name``; an unknown name raises ConfigError listing the valid ones."""
    try:
        return TASKS[name]
    except KeyError:
        raise ConfigError(f"`task` must be one of {sorted(TASKS)}; got {name!r}.") from None


def _as_task(task_or_name: Task | str) -> Task:
    task = task_or_name if isinstance(task_or_name, Task) else get_task(task_or_name)
    if task.name not in READERS:
        raise ConfigError(f"no dataset reader for task {task.name!r}; readers exist for {sorted(READERS)}.")
    return task


def resolve_task(
    task_or_name: Task | str, data_root: Path | str | None = None, *, task_root: Path | str | None = None
) -> Task:
    """The Task with the label names ``load_examples`` uses for this data.

    The registered Task itself for every task with a fixed label set; for the tasks in
    ``DATA_DEFINED_LABELS`` a copy whose ``label_names`` are read from the data folder.
    """
    task = _as_task(task_or_name)
    if task.name not in DATA_DEFINED_LABELS:
        return task
    location = locate(task, data_root, task_root)
    return replace(task, label_names=librispeech.speaker_ids(location))


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
    ``get_task(name).label_names`` for all but ``DATA_DEFINED_LABELS``).

    Raises DatasetError when the folder, a metadata file or (unless ``allow_missing``) audio that the
    metadata names is absent, or when nothing is left to evaluate.
    """
    task = _as_task(task_or_name)
    location = locate(task, data_root, task_root)
    examples = READERS[task.name](task, location, allow_missing=allow_missing, check_audio=check_audio)
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
