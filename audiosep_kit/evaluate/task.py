"""What a downstream task is: its labels, its official protocol and its examples.

A Task is metadata (frozen, validated); reading a dataset is a plain function registered beside it
(see ``audiosep_kit.evaluate.tasks``). An Example points at audio (optionally a segment of a file)
and says which split or fold it belongs to, so protocols never need to know a dataset's layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from audiosep_kit.errors import ConfigError

__all__ = ["Example", "Task", "PROTOCOL_KINDS"]

#: "folds": every fold is the test set once (ESC-50, UrbanSound8K); "split": fixed train/valid/test.
PROTOCOL_KINDS = ("folds", "split")


@dataclass(frozen=True)
class Example:
    """One labelled clip. ``split`` is a fold id ("1".."10") for fold tasks, else "train"/"valid"/"test".

    ``start_s``/``end_s`` cut a segment (ICBHI respiratory cycles); ``group`` names the source
    (recording, patient, speaker) that must never straddle train and test.
    """

    path: Path
    label: int
    split: str
    start_s: float | None = None
    end_s: float | None = None
    group: str | None = None

    @property
    def key(self) -> str:
        """Identity of the audio this example reads (file plus segment)."""
        if self.start_s is None and self.end_s is None:
            return str(self.path)
        return f"{self.path}#{self.start_s:.3f}-{self.end_s:.3f}"


@dataclass(frozen=True)
class Task:
    """Metadata of one evaluation task; ``scores`` lists metric names, the primary one first."""

    name: str
    label_names: tuple[str, ...]
    protocol: str
    splits: tuple[str, ...]
    scores: tuple[str, ...] = ("accuracy", "macro_f1", "balanced_accuracy")
    description: str = ""
    data_dir: str = ""  # folder name under the data root, e.g. "esc50"

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOL_KINDS:
            raise ConfigError(f"`protocol` must be one of {PROTOCOL_KINDS}; got {self.protocol!r}.")
        if len(self.label_names) < 2:
            raise ConfigError(f"task {self.name!r} needs at least 2 labels; got {len(self.label_names)}.")
        if len(set(self.label_names)) != len(self.label_names):
            raise ConfigError(f"task {self.name!r} has duplicate label names.")
        if not self.splits:
            raise ConfigError(f"task {self.name!r} declares no splits or folds.")
        if self.protocol == "split" and "test" not in self.splits:
            raise ConfigError(f"split task {self.name!r} must have a 'test' split; got {self.splits}.")

    @property
    def num_classes(self) -> int:
        return len(self.label_names)
