"""ICBHI 2017 respiratory sounds: one example per annotated breathing cycle, official train/test split.

Layout (the challenge release): ``icbhi2017/ICBHI_final_database/<recording>.wav`` with its annotation
``<recording>.txt`` beside it (or in ``icbhi2017/all_920_annotations/``), and
``icbhi2017/ICBHI_challenge_train_test.txt`` mapping each recording name to ``train`` or ``test``.

Each annotation line is ``start end crackles wheezes`` (seconds, seconds, 0/1, 0/1), tab separated.
The four-class label is read from those two numbers, never from words: normal (0, 0), crackle (1, 0),
wheeze (0, 1), both (1, 1). (The seed project searched the files for the words "crackle"/"wheeze",
which never occur, and labelled every cycle normal.) ``icbhi-2class`` is normal vs abnormal (any
adventitious sound). ``start_s``/``end_s`` are the cycle bounds; ``group`` is the patient id (the number
before the first ``_``), so a validation set carved from train by group keeps patients apart.

The official split file names ``226_1b1_Pl_sc_Meditron``, a recording that does not exist; the
database's recording of that patient and location is ``226_1b1_Pl_sc_LittC2SE`` (the same patient, so
the same side of the split). ``SPLIT_FILE_ERRATA`` maps the one to the other when only the second
exists; with it the 920 recordings give the challenge's 6898 cycles (4142 train, 2756 test).

Scores: the ICBHI 2017 challenge Score = (Sp + Se) / 2 first, then Se (abnormal cycles given exactly
their class) and Sp (normal cycles called normal), then the generic three (``evaluate._metrics``).
Every report shows beside them the constant-"normal" floor, which calling every cycle normal scores
(Sp 100, Se 0, Score 50 on any test set; ``evaluate._floors``): a Score near 50 says nothing.

There is no official validation split: ``splits = ("train", "test")``. Recordings follow the split
file's name order (sorted), cycles their annotation order.
"""

from __future__ import annotations

from pathlib import Path

from audiosep_kit.evaluate.tasks._common import INCOMPLETE_FIX, DataLocation, keep_present, shown
from audiosep_kit.evaluate.tasks._task import Example, Task

SPLIT_FILE = "ICBHI_challenge_train_test.txt"
AUDIO_DIR = "ICBHI_final_database"
#: Where an annotation ``<recording>.txt`` is looked for, in order.
ANNOTATION_DIRS = (AUDIO_DIR, "all_920_annotations")
_SPLITS = ("train", "test")
#: The challenge's score (Se + Sp) / 2 first, then its parts (names of ``evaluate.metrics.SCORES``).
_SCORES = ("icbhi_score", "se", "sp", "accuracy", "macro_f1", "balanced_accuracy")
#: Names in the official split file -> the recording they mean (see the module docstring).
SPLIT_FILE_ERRATA = {"226_1b1_Pl_sc_Meditron": "226_1b1_Pl_sc_LittC2SE"}

#: (start_s, end_s, crackles, wheezes) as written in an annotation line.
Cycle = tuple[float, float, int, int]


def cycle_label(task: Task, crackles: int, wheezes: int) -> int:
    """Label index of a cycle: 4-class ``crackles + 2 * wheezes``; 2-class ``1`` if either is set."""
    if task.num_classes == 2:
        return int(bool(crackles or wheezes))
    return crackles + 2 * wheezes


def _parse_line(line: str, where: str, location: DataLocation) -> Cycle:
    fields = line.split()
    if len(fields) != 4:
        raise location.error(f"{where}: expected 4 fields 'start end crackles wheezes'; got {line!r}")
    try:
        start, end = float(fields[0]), float(fields[1])
        crackles, wheezes = int(fields[2]), int(fields[3])
    except ValueError:
        raise location.error(f"{where}: fields are not numbers: {line!r}") from None
    if crackles not in (0, 1) or wheezes not in (0, 1) or not 0 <= start < end:
        raise location.error(f"{where}: need 0 <= start < end and 0/1 flags; got {line!r}")
    return start, end, crackles, wheezes


def parse_annotation(path: Path, location: DataLocation) -> list[Cycle]:
    """All cycles of one annotation file, in file order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [
        _parse_line(line, f"{path} line {number}", location)
        for number, line in enumerate(lines, start=1)
        if line.strip()
    ]


def _read_split_file(location: DataLocation) -> list[tuple[str, str]]:
    """(recording, split) pairs of the official split file, sorted by recording name."""
    path = location.require(location.folder / SPLIT_FILE, "official split file")
    pairs: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in _SPLITS:
            raise location.error(f"{path} line {number}: expected '<recording> train|test'; got {line!r}")
        pairs[fields[0]] = fields[1]
    return sorted(pairs.items())


def _find_annotation(location: DataLocation, recording: str) -> Path | None:
    """The recording's annotation file (beside the audio, else in all_920_annotations/), or None."""
    for folder in ANNOTATION_DIRS:
        path = location.folder / folder / f"{recording}.txt"
        if path.is_file():
            return path
    return None


def _recording_and_annotation(location: DataLocation, name: str) -> tuple[str, Path | None]:
    """The recording a split-file name means, with its annotation (applying SPLIT_FILE_ERRATA)."""
    annotation = _find_annotation(location, name)
    if annotation is None and name in SPLIT_FILE_ERRATA:
        fixed = _find_annotation(location, SPLIT_FILE_ERRATA[name])
        if fixed is not None:
            return SPLIT_FILE_ERRATA[name], fixed
    return name, annotation


def read_icbhi(task: Task, location: DataLocation, *, allow_missing: bool, check_audio: bool) -> list[Example]:
    """One Example per annotated cycle of every recording named in the official split file."""
    examples: list[Example] = []
    unannotated: list[str] = []
    for name, split in _read_split_file(location):
        recording, annotation = _recording_and_annotation(location, name)
        if annotation is None:
            unannotated.append(recording)
            continue
        audio = location.folder / AUDIO_DIR / f"{recording}.wav"
        patient = recording.split("_", 1)[0]
        for start, end, crackles, wheezes in parse_annotation(annotation, location):
            label = cycle_label(task, crackles, wheezes)
            examples.append(Example(audio, label, split, start_s=start, end_s=end, group=patient))
    if unannotated and not allow_missing:
        looked = " and ".join(str(location.folder / folder) for folder in ANNOTATION_DIRS)
        raise location.error(
            f"{len(unannotated)} recording(s) named in {SPLIT_FILE} have no annotation .txt in {looked}, "
            f"e.g. {shown(unannotated)}",
            fix=INCOMPLETE_FIX,
        )
    return keep_present(
        examples,
        location,
        listed_in=f"{location.folder / SPLIT_FILE} (+ annotations)",
        allow_missing=allow_missing,
        check_audio=check_audio,
    )


ICBHI = Task(
    name="icbhi",
    label_names=("normal", "crackle", "wheeze", "both"),
    protocol="split",
    splits=_SPLITS,
    scores=_SCORES,
    description="ICBHI 2017 respiratory cycles, 4 classes from the crackle/wheeze flags, official split.",
    data_dir="icbhi2017",
    reader=read_icbhi,
)

ICBHI_2CLASS = Task(
    name="icbhi-2class",
    label_names=("normal", "abnormal"),
    protocol="split",
    splits=_SPLITS,
    scores=_SCORES,
    description="ICBHI 2017 respiratory cycles, normal vs any crackle/wheeze, official split.",
    data_dir="icbhi2017",
    reader=read_icbhi,
)
