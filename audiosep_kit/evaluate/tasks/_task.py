"""What a downstream task is: its labels, its official protocol and its examples.

A Task is metadata (frozen, validated) plus the plain function that reads its dataset, so the task
registry (``TASKS``) is one dict. An Example points at audio (an ``AudioSegment``: a file, or a
segment of it) and says which split or fold it belongs to, so protocols never need to know a
dataset's layout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audiosep_kit._validation import check_choice
from audiosep_kit.audio import AudioSegment
from audiosep_kit.errors import ConfigError

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
    def segment(self) -> AudioSegment:
        """The audio this example reads, in the type stores and caches take."""
        return AudioSegment(self.path, self.start_s, self.end_s)

    @property
    def key(self) -> str:
        """Identity of the audio this example reads (file plus segment): ``AudioSegment.key``."""
        return self.segment.key


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
    #: ``reader(task, location, *, allow_missing, check_audio) -> list[Example]`` (see ``_registry``).
    reader: Callable[..., list[Example]] | None = field(default=None, compare=False, repr=False)
    #: For tasks whose label set is read from the data (LibriSpeech speakers): ``location -> names``;
    #: ``label_names`` is then a placeholder and ``resolve_task`` gives the real ones.
    labels_from_data: Callable[[Any], tuple[str, ...]] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        check_choice("protocol", self.protocol, PROTOCOL_KINDS)
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
