"""ESC-50 and its ESC-10 subset: 5-s environmental clips, five official cross-validation folds.

Layout (Piczak's release): ``esc50/audio/<filename>.wav`` and ``esc50/meta/esc50.csv`` with the columns
``filename, fold, target, category, esc10, src_file, take``. Examples follow the csv's row order, so
features saved in that order (the seed project's ``esc50_features_audiosep.pt``, labels = ``target``)
line up with ``load_metadata("esc50", ...)`` row for row. ``group`` is ``src_file``, the freesound clip
the 5-s excerpts were cut from; the official folds already keep each clip within one fold.
"""

from __future__ import annotations

from pathlib import Path

from audiosep_kit.evaluate.tasks._common import DataLocation, class_id, csv_examples, fold_of
from audiosep_kit.evaluate.tasks._task import Example, Task

#: Category names indexed by ESC-50's ``target`` column.
ESC50_LABELS: tuple[str, ...] = (
    "dog", "rooster", "pig", "cow", "frog", "cat", "hen", "insects", "sheep", "crow",
    "rain", "sea_waves", "crackling_fire", "crickets", "chirping_birds", "water_drops", "wind",
    "pouring_water", "toilet_flush", "thunderstorm", "crying_baby", "sneezing", "clapping",
    "breathing", "coughing", "footsteps", "laughing", "brushing_teeth", "snoring",
    "drinking_sipping", "door_wood_knock", "mouse_click", "keyboard_typing", "door_wood_creaks",
    "can_opening", "washing_machine", "vacuum_cleaner", "clock_alarm", "clock_tick",
    "glass_breaking", "helicopter", "chainsaw", "siren", "car_horn", "engine", "train",
    "church_bells", "airplane", "fireworks", "hand_saw",
)  # fmt: skip
#: ESC-50 targets of the ten ESC-10 classes; ESC-10 label i is ESC-50 target ESC10_TARGETS[i].
ESC10_TARGETS: tuple[int, ...] = (0, 1, 10, 11, 12, 20, 21, 38, 40, 41)
METADATA = Path("meta") / "esc50.csv"
_COLUMNS = ("filename", "fold", "target", "category", "esc10", "src_file")
_FOLDS = ("1", "2", "3", "4", "5")


def _row_example(row: dict[str, str], number: int, task: Task, location: DataLocation) -> Example:
    """One csv row as an Example, after checking that target, category and fold agree with the task."""
    where = f"{location.folder / METADATA} row {number}"
    class_id(row, "target", "category", ESC50_LABELS, where, location, dataset="ESC-50",
             fix="use the official meta/esc50.csv")  # fmt: skip
    if row["category"] not in task.label_names:
        raise location.error(f"{where}: category {row['category']!r} is not a class of {task.name}")
    return Example(
        path=location.folder / "audio" / row["filename"],
        label=task.label_names.index(row["category"]),
        split=fold_of(row, task, where, location),
        group=row["src_file"],
    )


def read_esc50(task: Task, location: DataLocation, *, allow_missing: bool, check_audio: bool) -> list[Example]:
    """ESC-50 (or ESC-10 when ``task`` is ESC10) examples in ``meta/esc50.csv`` row order."""
    subset = task.name == ESC10.name
    return csv_examples(
        location, METADATA, _COLUMNS, lambda row, number: _row_example(row, number, task, location),
        allow_missing=allow_missing, check_audio=check_audio, keep=lambda row: not subset or row["esc10"] == "True",
    )  # fmt: skip


ESC50 = Task(
    name="esc50",
    label_names=ESC50_LABELS,
    protocol="folds",
    splits=_FOLDS,
    description="ESC-50 environmental sounds, 50 classes, 5 official folds (Piczak 2015).",
    data_dir="esc50",
    reader=read_esc50,
)

ESC10 = Task(
    name="esc10",
    label_names=tuple(ESC50_LABELS[target] for target in ESC10_TARGETS),
    protocol="folds",
    splits=_FOLDS,
    description="ESC-10: the esc10==True rows of ESC-50, 10 classes re-indexed 0..9, 5 official folds.",
    data_dir="esc50",
    reader=read_esc50,
)
