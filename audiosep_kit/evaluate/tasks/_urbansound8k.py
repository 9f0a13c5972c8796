"""UrbanSound8K: 8732 urban-sound slices (<= 4 s), 10 classes, the 10 predefined folds.

Layout (Salamon et al.'s release): ``urbansound8k/metadata/UrbanSound8K.csv`` (``slice_file_name, fsID,
start, end, salience, fold, classID, class``) and ``urbansound8k/audio/fold{N}/{slice_file_name}``.
The authors ask for 10-fold cross validation on exactly these folds (re-shuffling leaks slices of one
recording across train and test), so ``split`` is the fold and ``group`` the freesound recording
``fsID``. Examples follow the csv's row order.
"""

from __future__ import annotations

from pathlib import Path

from audiosep_kit.evaluate.tasks._common import DataLocation, class_id, csv_examples, fold_of
from audiosep_kit.evaluate.tasks._task import Example, Task

#: Class names indexed by the csv's ``classID``.
URBANSOUND8K_LABELS: tuple[str, ...] = (
    "air_conditioner", "car_horn", "children_playing", "dog_bark", "drilling",
    "engine_idling", "gun_shot", "jackhammer", "siren", "street_music",
)  # fmt: skip
METADATA = Path("metadata") / "UrbanSound8K.csv"
_COLUMNS = ("slice_file_name", "fsID", "fold", "classID", "class")


def _row_example(row: dict[str, str], number: int, task: Task, location: DataLocation) -> Example:
    """One csv row as an Example, after checking class id, class name and fold."""
    where = f"{location.folder / METADATA} row {number}"
    label = class_id(row, "classID", "class", task.label_names, where, location, dataset="UrbanSound8K",
                     fix="use the official metadata/UrbanSound8K.csv")  # fmt: skip
    fold = fold_of(row, task, where, location)
    return Example(
        path=location.folder / "audio" / f"fold{fold}" / row["slice_file_name"],
        label=label,
        split=fold,
        group=row["fsID"],
    )


def read_urbansound8k(task: Task, location: DataLocation, *, allow_missing: bool, check_audio: bool) -> list[Example]:
    """UrbanSound8K examples in ``metadata/UrbanSound8K.csv`` row order."""
    return csv_examples(
        location, METADATA, _COLUMNS, lambda row, number: _row_example(row, number, task, location),
        allow_missing=allow_missing, check_audio=check_audio,
    )  # fmt: skip


URBANSOUND8K = Task(
    name="urbansound8k",
    label_names=URBANSOUND8K_LABELS,
    protocol="folds",
    splits=tuple(str(fold) for fold in range(1, 11)),
    description="UrbanSound8K urban sounds, 10 classes, 10 predefined folds (Salamon et al. 2014).",
    data_dir="urbansound8k",
    reader=read_urbansound8k,
)
