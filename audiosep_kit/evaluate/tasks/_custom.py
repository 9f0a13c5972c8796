"""A user's own data as a task: ``csv:PATH`` (a labels CSV) or ``folder:DIR`` (one sub-folder per class).

Both give an ordinary ``Task`` and ``Example`` list, so the protocols, reports and feature cache of the
built-in tasks apply unchanged. A CSV (``path`` and ``label`` required)::

    path,label,split,group
    clips/dog_01.wav,dog,train,rec1
    clips/dog_02.wav,dog,test,rec2
    /data/cat_01.wav,cat,train,rec3

* ``path``: relative paths are relative to the CSV's folder (the same CSV works from any directory).
* ``label``: a class name. Label ids are the sorted unique names (numerically when every name is an
  integer, e.g. speaker ids, else as strings), so the same CSV always gives the same ids.
* ``split`` (optional): ``train``/``valid``/``test`` → a split task; a ``test`` split is required and
  without ``valid`` the split protocol carves validation from train (by group when given).
* ``fold`` (optional, instead of ``split``): fold ids → a fold task (each fold is the test set once).
* ``group`` (optional): recording or speaker; generated folds keep a group in one fold.

With neither ``split`` nor ``fold`` the task gets :data:`N_FOLDS` generated folds, made once over every
row the CSV lists (so ``allow_missing`` never moves an example to another fold): scikit-learn's
``StratifiedGroupKFold`` when every row has a group, else ``StratifiedKFold``, shuffled with
``random_state=0``. ``folder:DIR`` reads ``DIR/<class>/**`` (audio found recursively by
``scan_audio_folder``) and always gets generated folds without groups.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from audiosep_kit.audio import scan_audio_folder
from audiosep_kit.errors import DatasetError
from audiosep_kit.evaluate.tasks._common import DataLocation, keep_present, shown
from audiosep_kit.evaluate.tasks._task import Example, Task

CSV_PREFIX = "csv:"
FOLDER_PREFIX = "folder:"
#: Folds generated for data that names no split or fold.
N_FOLDS = 5
_SPLITS = ("train", "valid", "test")
_CSV_FIX = "see docs/custom-datasets.md for the CSV format"


@dataclass(frozen=True)
class _Row:
    """One labelled file as the user's data names it (before label ids and missing audio)."""

    path: Path
    name: str
    split: str | None
    group: str | None


def is_custom(name: str) -> bool:
    """Whether ``name`` is a ``csv:PATH`` or ``folder:DIR`` task rather than a registered one."""
    return name.startswith((CSV_PREFIX, FOLDER_PREFIX))


def run_name(task_name: str) -> str:
    """A file-system-safe name for run folders: ``csv:/a/b.csv`` → ``csv-b``, ``folder:/x/dogs`` → ``folder-dogs``."""
    if is_custom(task_name):
        kind, _, where = task_name.partition(":")
        task_name = f"{kind}-{Path(where).stem or 'data'}"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", task_name).strip("-") or "task"


def custom_location(task: Task) -> DataLocation:
    """Where a custom task's data lives (its CSV's folder, or the class folder root)."""
    return DataLocation(task.name, Path(task.data_dir), f"--task {task.name}", task.data_dir)


def custom_task(name: str) -> Task:
    """The Task that ``csv:PATH`` or ``folder:DIR`` names, read from the data (label names, splits)."""
    kind, _, where = name.partition(":")
    if not where:
        raise DatasetError(f"--task {name!r} names no file or folder; expected e.g. csv:labels.csv or folder:clips/.")
    source = Path(where).expanduser().resolve()
    if kind == "csv":
        rows, column = _csv_rows(source)
        return _task_from_rows(f"csv:{source}", source.parent, rows, column)
    return _task_from_rows(f"folder:{source}", source, _folder_rows(source), None)


def _sorted_names(names: set[str]) -> tuple[str, ...]:
    numeric = all(re.fullmatch(r"-?\d+", name) for name in names)
    return tuple(sorted(names, key=int if numeric else str))


def _fail(where: str, problem: str, fix: str = _CSV_FIX) -> DatasetError:
    return DatasetError(f"{where}: {problem}; {fix}.")


def _csv_rows(path: Path) -> tuple[list[_Row], str | None]:
    """The CSV's rows in file order and its split or fold column (None: neither), after checking them."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [field.strip() for field in reader.fieldnames or ()]
            records = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise _fail(
            str(path), f"cannot read the labels CSV ({exc})", "pass --task csv:PATH with a readable CSV"
        ) from exc
    absent = [column for column in ("path", "label") if column not in header]
    if absent:
        raise _fail(
            str(path),
            f"expected the columns path,label (and optionally split or fold, group); missing {absent}, got {header}",
        )
    if "split" in header and "fold" in header:
        raise _fail(str(path), "has both a split and a fold column; expected at most one of them")
    column = "split" if "split" in header else "fold" if "fold" in header else None
    return [_csv_row(record, number, path, column) for number, record in enumerate(records, start=2)], column


def _csv_row(record: dict[str, str], line: int, csv_path: Path, column: str | None) -> _Row:
    values = {key.strip(): (value or "").strip() for key, value in record.items() if key is not None}
    where = f"{csv_path} line {line}"
    if not values["path"]:
        raise _fail(where, "empty path")
    if not values["label"]:
        raise _fail(where, f"empty label for {values['path']!r}; every row needs a class name")
    split = values.get(column) if column else None
    if column and not split:
        raise _fail(where, f"empty {column} for {values['path']!r}")
    if column == "split" and split not in _SPLITS:
        raise _fail(where, f"split must be one of {_SPLITS}; got {split!r}")
    group = values.get("group") or None
    path = Path(values["path"]).expanduser()
    return _Row(path if path.is_absolute() else csv_path.parent / path, values["label"], split, group)


def _folder_rows(root: Path) -> list[_Row]:
    """One row per audio file under ``root/<class>/`` (sorted class folders, files in scan order)."""
    if not root.is_dir():
        raise _fail(str(root), "no such folder", "pass --task folder:DIR with one sub-folder per class")
    rows = []
    for class_dir in sorted(entry for entry in root.iterdir() if entry.is_dir() and not entry.name.startswith(".")):
        rows += [_Row(path, class_dir.name, None, None) for path in scan_audio_folder(class_dir).files]
    return rows


def _task_from_rows(name: str, folder: Path, rows: list[_Row], column: str | None) -> Task:
    """The Task over ``rows``: split task (``split`` column), fold task (``fold``) or generated folds."""
    if not rows:
        raise _fail(name, "lists no audio", "give at least one labelled file per class")
    label_names = _sorted_names({row.name for row in rows})
    if len(label_names) < 2:
        raise _fail(name, f"needs at least 2 classes; got {list(label_names)}", "label files with 2 or more classes")
    if column is None:
        rows, protocol = _generated_folds(rows, label_names, name), "folds"
        splits = tuple(str(fold) for fold in range(1, N_FOLDS + 1))
    elif column == "split":
        _check_test_split(name, rows, label_names)
        has_valid = any(row.split == "valid" for row in rows)
        splits, protocol = (_SPLITS if has_valid else ("train", "test")), "split"
    else:
        splits, protocol = _sorted_names({str(row.split) for row in rows}), "folds"
    examples = _examples(rows, label_names)

    def read(task: Task, location: DataLocation, *, allow_missing: bool, check_audio: bool) -> list[Example]:
        return keep_present(examples, location, listed_in=name, allow_missing=allow_missing, check_audio=check_audio)

    description = f"user data {name}: {len(label_names)} classes, {len(rows)} files, {protocol} protocol"
    return Task(name, label_names, protocol, splits, description=description, data_dir=str(folder), reader=read)


def _check_test_split(name: str, rows: Sequence[_Row], label_names: Sequence[str]) -> None:
    if not any(row.split == "test" for row in rows):
        raise _fail(name, "has no test rows; a split task needs split=test rows", "mark some rows split=test")
    absent = sorted(set(label_names) - {row.name for row in rows if row.split == "test"})
    if absent:
        raise _fail(
            name, f"class(es) {shown(absent)} have no test rows, so they could never be scored",
            "give every class some split=test rows, or drop the split column to get generated folds",
        )  # fmt: skip


def _generated_folds(rows: list[_Row], label_names: Sequence[str], name: str) -> list[_Row]:
    """``rows`` with ``split`` set to a generated fold "1".."N_FOLDS" (see the module docstring).

    Every class needs ``N_FOLDS`` files (and, with groups, ``N_FOLDS`` groups) so that each fold can
    hold each class; fewer is refused rather than given folds that some classes never reach.
    """
    labels = [label_names.index(row.name) for row in rows]
    groups = [row.group for row in rows]
    grouped = all(group is not None for group in groups)
    per_class = Counter(zip(labels, groups, strict=True) if grouped else ((label, i) for i, label in enumerate(labels)))
    sizes = Counter(label for label, _ in per_class)
    small = [f"{label_names[c]} ({sizes.get(c, 0)})" for c in range(len(label_names)) if sizes.get(c, 0) < N_FOLDS]
    if small:
        unit = "groups" if grouped else "files"
        raise _fail(
            name, f"{N_FOLDS} generated folds need at least {N_FOLDS} {unit} per class; too few: {shown(small)}",
            f"add {unit}, or give a split or fold column",
        )  # fmt: skip
    if grouped:
        splits = StratifiedGroupKFold(N_FOLDS, shuffle=True, random_state=0).split(rows, labels, groups=groups)
    else:
        splits = StratifiedKFold(N_FOLDS, shuffle=True, random_state=0).split(rows, labels)
    fold_of = [""] * len(rows)
    for fold, (_, test) in enumerate(splits, start=1):
        for i in test:
            fold_of[i] = str(fold)
    return [_Row(row.path, row.name, fold_of[i], row.group) for i, row in enumerate(rows)]


def _examples(rows: Sequence[_Row], label_names: Sequence[str]) -> list[Example]:
    index = {name: i for i, name in enumerate(label_names)}
    return [Example(row.path, index[row.name], str(row.split), group=row.group) for row in rows]
