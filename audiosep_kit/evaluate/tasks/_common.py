"""Shared plumbing of the dataset readers: where a dataset lives, and refusing incomplete data loudly.

A reader that silently drops the clips it cannot find produces a smaller, easier benchmark that looks
like the real one. So every reader first builds the full list of examples its metadata names, then
``keep_present`` either refuses (default: how many are missing, which ones, where, what to change) or,
when asked with ``allow_missing=True``, drops them.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from audiosep_kit.errors import DatasetError
from audiosep_kit.evaluate.tasks._task import Example, Task

#: Environment variable read when no data root is passed (the CLI's ``--data-root`` sets data_root).
DATA_ROOT_ENV = "AUDIOSEP_DATA_ROOT"
#: Other folder names accepted for a task's ``data_dir``: the shared sample of Speech Commands v0.01
#: is the SC09 digits subset, stored as ``speech_commands_sc09/``.
DIR_ALIASES: dict[str, tuple[str, ...]] = {"speech_commands_v1": ("speech_commands_sc09",)}
_SHOWN = 3
#: The way out of a missing-data error, shared by every reader.
INCOMPLETE_FIX = (
    f"complete the dataset there or point data_root= (--data-root), ${DATA_ROOT_ENV} or task_root= at a "
    "complete copy, or pass allow_missing=True to skip what is missing"
)


def shown(items: Sequence[object], limit: int = _SHOWN) -> str:
    """The first few items for an error message, with a count of the rest."""
    head = ", ".join(str(item) for item in items[:limit])
    rest = len(items) - limit
    return f"{head} (and {rest} more)" if rest > 0 else head


@dataclass(frozen=True)
class DataLocation:
    """The folder one task reads, and how it was chosen (so errors can say what to change)."""

    task: str
    folder: Path
    how: str  # e.g. "data_root=/data (--data-root)", "$AUDIOSEP_DATA_ROOT=/data", "task_root=/x"
    data_dir: str

    def fix(self) -> str:
        """What to change so the reader looks somewhere else."""
        if self.how.startswith("task_root"):
            return "pass task_root= (the per-task --data-root override) pointing at the dataset's own folder"
        return (
            f"point data_root= (--data-root) or ${DATA_ROOT_ENV} at the folder that holds "
            f"`{self.data_dir}/`, or pass task_root= (the per-task override) pointing at the dataset folder"
        )

    def error(self, problem: str, fix: str | None = None) -> DatasetError:
        """A DatasetError naming the task, the problem, the folder, how it was chosen and the fix."""
        return DatasetError(
            f"{self.task}: {problem} (dataset folder {self.folder}, chosen by {self.how}); {fix or self.fix()}."
        )

    def require(self, path: Path, what: str) -> Path:
        """``path`` if it exists, else a DatasetError saying which ``what`` is missing and where."""
        if not path.exists():
            raise self.error(f"{what} not found: {path}")
        return path


def _root_and_how(task: Task, data_root: Path | str | None) -> tuple[Path, str]:
    if data_root is not None:
        root = Path(data_root).expanduser()
        return root, f"data_root={root} (--data-root)"
    env = os.environ.get(DATA_ROOT_ENV, "").strip()
    if not env:
        raise DatasetError(
            f"{task.name}: no data root given: pass data_root= (CLI --data-root) or set "
            f"${DATA_ROOT_ENV} to the folder that holds `{task.data_dir}/`, or pass task_root= "
            "(the per-task override) pointing at the dataset folder itself."
        )
    root = Path(env).expanduser()
    return root, f"${DATA_ROOT_ENV}={root}"


def locate(task: Task, data_root: Path | str | None, task_root: Path | str | None) -> DataLocation:
    """Resolve the task's folder: ``task_root`` as is, else ``<data root>/<data_dir>`` (or an alias)."""
    if task_root is not None:
        folder = Path(task_root).expanduser()
        location = DataLocation(task.name, folder, f"task_root={folder}", task.data_dir)
        if not folder.is_dir():
            raise location.error(f"dataset folder not found: {folder}")
        return location
    root, how = _root_and_how(task, data_root)
    names = (task.data_dir, *DIR_ALIASES.get(task.data_dir, ()))
    candidates = [root / name for name in names]
    for folder in candidates:
        if folder.is_dir():
            return DataLocation(task.name, folder, how, task.data_dir)
    location = DataLocation(task.name, candidates[0], how, task.data_dir)
    looked = " or ".join(str(folder) for folder in candidates)
    raise location.error(f"dataset folder not found: looked for {looked} under the data root {root}")


def keep_present(
    examples: list[Example],
    location: DataLocation,
    *,
    listed_in: str,
    allow_missing: bool,
    check_audio: bool,
) -> list[Example]:
    """Examples whose audio exists; refuses (unless ``allow_missing``) when the metadata names absent files.

    ``check_audio=False`` returns ``examples`` untouched (metadata order, no file-system checks).
    """
    if not check_audio:
        return examples
    exists: dict[Path, bool] = {}
    for example in examples:
        if example.path not in exists:
            exists[example.path] = example.path.is_file()
    missing = [path for path, ok in exists.items() if not ok]
    if missing and not allow_missing:
        names = [_relative(path, location.folder) for path in missing]
        raise location.error(
            f"{len(missing)} of {len(exists)} audio files listed in {listed_in} are missing, e.g. {shown(names)}",
            fix=INCOMPLETE_FIX,
        )
    return [example for example in examples if exists[example.path]]


def _relative(path: Path, folder: Path) -> str:
    try:
        return str(path.relative_to(folder))
    except ValueError:
        return str(path)


def read_csv_rows(path: Path, columns: Iterable[str], location: DataLocation) -> list[dict[str, str]]:
    """All rows of a metadata CSV in file order, after checking that it has the expected columns."""
    location.require(path, "metadata file")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = set(reader.fieldnames or ())
        absent = [column for column in columns if column not in header]
        if absent:
            raise location.error(
                f"{path} lacks the column(s) {absent}; got {sorted(header)}",
                fix="use the dataset's original metadata file",
            )
        return list(reader)


def csv_examples(
    location: DataLocation,
    metadata: Path,
    columns: Iterable[str],
    row_example: Callable[[dict[str, str], int], Example],
    *,
    allow_missing: bool,
    check_audio: bool,
    keep: Callable[[dict[str, str]], bool] = lambda row: True,
) -> list[Example]:
    """The examples of a metadata CSV in row order (rows numbered from 1), then ``keep_present``."""
    path = location.folder / metadata
    rows = read_csv_rows(path, columns, location)
    examples = [row_example(row, number) for number, row in enumerate(rows, start=1) if keep(row)]
    return keep_present(examples, location, listed_in=str(path), allow_missing=allow_missing, check_audio=check_audio)


def class_id(
    row: dict[str, str],
    id_column: str,
    name_column: str,
    names: Sequence[str],
    where: str,
    location: DataLocation,
    *,
    dataset: str,
    fix: str,
) -> int:
    """The integer class id of a metadata row, refused unless it names the class the row says."""
    try:
        label = int(row[id_column])
    except ValueError:
        raise location.error(f"{where}: {id_column} {row[id_column]!r} is not an integer") from None
    if not 0 <= label < len(names) or names[label] != row[name_column]:
        raise location.error(
            f"{where}: {id_column} {label} / {name_column} {row[name_column]!r} do not match {dataset}'s classes",
            fix=fix,
        )
    return label


def fold_of(row: dict[str, str], task: Task, where: str, location: DataLocation) -> str:
    """The row's ``fold``, refused unless it is one of the task's folds."""
    if row["fold"] not in task.splits:
        raise location.error(f"{where}: fold {row['fold']!r} is not one of {task.splits}")
    return row["fold"]
