"""UrbanSound8K: 8732 urban-sound slices (<= 4 s), 10 classes, the 10 predefined folds.

Layout (Salamon et al.'s release): ``urbansound8k/metadata/UrbanSound8K.csv`` (``slice_file_name, fsID,
start, end, salience, fold, classID, class``) and ``urbansound8k/audio/fold{N}/{slice_file_name}``.
The authors ask for 10-fold cross validation on exactly these folds (re-shuffling leaks slices of one
recording across train and test), so ``split`` is the fold and ``group`` the freesound recording
``fsID``. Examples follow the csv's row order.
"""

from __future__ import annotations

from pathlib import Path

from audiosep_kit.evaluate.tasks._common import DataLocation, keep_present, read_csv_rows
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
    try:
        label = int(row["classID"])
    except ValueError:
        raise location.error(f"{where}: classID {row['classID']!r} is not an integer") from None
    if not 0 <= label < task.num_classes or task.label_names[label] != row["class"]:
        raise location.error(
            f"{where}: classID {label} / class {row['class']!r} do not match UrbanSound8K's classes",
            fix="use the official metadata/UrbanSound8K.csv",
        )
    if row["fold"] not in task.splits:
        raise location.error(f"{where}: fold {row['fold']!r} is not one of {task.splits}")
    return Example(
        path=location.folder / "audio" / f"fold{row['fold']}" / row["slice_file_name"],
        label=label,
        split=row["fold"],
        group=row["fsID"],
    )


def read_urbansound8k(task: Task, location: DataLocation, *, allow_missing: bool, check_audio: bool) -> list[Example]:
    """UrbanSound8K examples in ``metadata/UrbanSound8K.csv`` row order."""
    rows = read_csv_rows(location.folder / METADATA, _COLUMNS, location)
    examples = [_row_example(row, number, task, location) for number, row in enumerate(rows, start=1)]
    return keep_present(
        examples,
        location,
        listed_in=str(location.folder / METADATA),
        allow_missing=allow_missing,
        check_audio=check_audio,
    )


URBANSOUND8K = Task(
    name="urbansound8k",
    label_names=URBANSOUND8K_LABELS,
    protocol="folds",
    splits=tuple(str(fold) for fold in range(1, 11)),
    description="UrbanSound8K urban sounds, 10 classes, 10 predefined folds (Salamon et al. 2014).",
    data_dir="urbansound8k",
    reader=read_urbansound8k,
)
