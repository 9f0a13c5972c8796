"""NSynth instrument family: 4-s musical notes, 11 families, the official train/valid/test split.

Layout (Engel et al.'s release): ``nsynth/nsynth-{train,valid,test}/examples.json`` (note id -> fields,
among them ``instrument_family`` and ``instrument_family_str``) and ``.../audio/<note id>.wav``. The
label is ``instrument_family`` (NSynth's own numbering, checked against ``instrument_family_str``);
``group`` is the instrument (``instrument_str``): the official split keeps the valid/test instruments
out of train. Examples come split by split (train, valid, test), note ids sorted within a split.
"""

from __future__ import annotations

import json
from pathlib import Path

from audiosep_kit.evaluate.tasks._common import DataLocation, keep_present, shown
from audiosep_kit.evaluate.tasks._task import Example, Task

#: Family names indexed by NSynth's ``instrument_family`` number.
NSYNTH_FAMILIES: tuple[str, ...] = (
    "bass", "brass", "flute", "guitar", "keyboard", "mallet",
    "organ", "reed", "string", "synth_lead", "vocal",
)  # fmt: skip


def split_folder(location: DataLocation, split: str) -> Path:
    """The release folder of one split, e.g. ``nsynth/nsynth-valid``."""
    return location.folder / f"nsynth-{split}"


def _note_example(note: str, fields: dict, split: str, where: Path, location: DataLocation) -> Example:
    """One examples.json entry as an Example, after checking its family number and name agree."""
    family = fields.get("instrument_family")
    name = fields.get("instrument_family_str")
    if not (isinstance(family, int) and 0 <= family < len(NSYNTH_FAMILIES) and NSYNTH_FAMILIES[family] == name):
        raise location.error(
            f"{where}: note {note!r} has instrument_family {family!r} / {name!r}, "
            f"not one of NSynth's families {NSYNTH_FAMILIES}",
            fix="use the official examples.json",
        )
    return Example(
        path=split_folder(location, split) / "audio" / f"{note}.wav",
        label=family,
        split=split,
        group=str(fields.get("instrument_str", note.rsplit("-", 2)[0])),
    )


def _split_examples(split: str, location: DataLocation) -> list[Example]:
    path = split_folder(location, split) / "examples.json"
    try:
        notes = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise location.error(f"{path} is not valid JSON ({err})", fix="use the official examples.json") from err
    if not isinstance(notes, dict):
        raise location.error(f"{path} must map note ids to fields; got {type(notes).__name__}")
    return [_note_example(note, notes[note], split, path, location) for note in sorted(notes)]


def read_nsynth(task: Task, location: DataLocation, *, allow_missing: bool, check_audio: bool) -> list[Example]:
    """Examples of every split folder that has an examples.json; a missing split refuses unless allowed."""
    absent = [
        str(split_folder(location, split) / "examples.json")
        for split in task.splits
        if not (split_folder(location, split) / "examples.json").is_file()
    ]
    if absent and not allow_missing:
        raise location.error(
            f"{len(absent)} of {len(task.splits)} official split(s) are missing: no {shown(absent)}",
            fix="download the missing nsynth-<split> archives there, or pass allow_missing=True to skip them",
        )
    examples: list[Example] = []
    for split in task.splits:
        if (split_folder(location, split) / "examples.json").is_file():
            examples += _split_examples(split, location)
    return keep_present(
        examples,
        location,
        listed_in=str(location.folder / "nsynth-*" / "examples.json"),
        allow_missing=allow_missing,
        check_audio=check_audio,
    )


NSYNTH = Task(
    name="nsynth",
    label_names=NSYNTH_FAMILIES,
    protocol="split",
    splits=("train", "valid", "test"),
    description="NSynth instrument family, 11 classes, official train/valid/test (Engel et al. 2017).",
    data_dir="nsynth",
    reader=read_nsynth,
)
