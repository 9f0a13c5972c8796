"""Speech Commands (Warden 2018) keyword spotting, v0.02 and v0.01, full word sets and the 12-class variant.

Layout (the release archives): ``<folder>/<word>/<speaker>_nohash_<n>.wav`` (1 s, 16 kHz),
``<folder>/_background_noise_/*.wav`` (long noise recordings, not a word) and the official
``validation_list.txt`` / ``testing_list.txt`` (``<word>/<file>`` lines) at the folder's root, or in
``v1_lists/`` (how the shared v0.01 sample stores them). Every clip of a word folder that neither list
names is ``train``; ``group`` is the speaker hash before ``_nohash_`` (the official lists are built by
hashing it, so speakers never straddle splits). Examples come word by word (sorted), files sorted.

* ``speechcommands-v2``: the 35 words of v0.02; ``speechcommands-v1``: the 30 words of v0.01
  (data folder ``speech_commands_v1/``, or the shared SC09 sample ``speech_commands_sc09/``).
* ``speechcommands-v2-12`` / ``-v1-12``: the SUPERB 12-class variant (s3prl ``downstream/speech_commands``,
  v0.01): yes, no, up, down, left, right, on, off, stop, go; ``_unknown_`` is every other word of that
  version (all of its clips, none dropped); ``_silence_`` is 1-s crops of the background noise.

  **Silence.** SUPERB adds each ``_background_noise_/*.wav`` to train and to valid as a ``_silence_``
  entry and takes a new random 1-s crop of it every time it is drawn. Frozen features need a fixed
  set, so here the crops are drawn once with a fixed seed (``SILENCE_SEED``, one stream per split):
  ``ceil(10 %)`` of the split's core-word clips (``SILENCE_PERCENT``: Warden's ``silence_percentage``,
  so ``_silence_`` is about as frequent as one target word, as SUPERB's class-balanced sampler makes it),
  each start uniform over every possible 1-s window (sample-exact, at the file's own rate) of the
  recordings, sorted by (recording, start). Unlike SUPERB, whose train and valid crops come from the
  same whole files, each split crops only its own part of each recording: of a recording's
  ``floor(duration)`` whole seconds the first ``floor(0.8 n)`` belong to train, up to ``floor(0.9 n)``
  to valid, the rest to test (``segment_splits``), so no noise audio is on both sides of a boundary.
  ``group`` is ``_background_noise_/<recording>:<split>``. The v0.02 recordings (~400 s) give
  ~320/40/40 s of noise to crop from; crops of one split may overlap each other (as SUPERB's do).

  **Test set.** When the release's separate test archive is present, the test split is that archive
  (``speech_commands_test_set_v0.01/`` for v1-12, as in SUPERB; ``speech_commands_test_set_v0.02/``
  for v2-12): its ``<label>/*.wav`` folders, ``_silence_`` and ``_unknown_`` included, labelled by
  folder; no silence is cropped for test and the main archive's ``testing_list.txt`` clips are left
  out (SUPERB discards them too). It is looked for inside the dataset folder first
  (``speech_commands_v1/speech_commands_test_set_v0.01/``), then beside it
  (``<data root>/speech_commands_test_set_v0.01/``). Without it the test split is ``testing_list.txt``
  of the main archive plus cropped silence, which is not the SUPERB test set.
* ``demo-words``: the same reader over the words of ``audiosep_kit.evaluate._demo_data`` (yes, no, up,
  down) in a ``speech_commands_v2/`` folder: the synthetic demo set, or that subset of real v0.02.

A word folder the task needs that is absent, or a list entry whose file is absent, is missing data.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from audiosep_kit.errors import ConfigError
from audiosep_kit.evaluate.tasks._common import INCOMPLETE_FIX, DataLocation, shown
from audiosep_kit.evaluate.tasks._task import Example, Task

_log = logging.getLogger(__name__)

V1_WORDS: tuple[str, ...] = (
    "bed", "bird", "cat", "dog", "down", "eight", "five", "four", "go", "happy", "house", "left",
    "marvin", "nine", "no", "off", "on", "one", "right", "seven", "sheila", "six", "stop", "three",
    "tree", "two", "up", "wow", "yes", "zero",
)  # fmt: skip
V2_WORDS: tuple[str, ...] = tuple(sorted((*V1_WORDS, "backward", "follow", "forward", "learn", "visual")))
CORE_WORDS: tuple[str, ...] = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
UNKNOWN = "_unknown_"
SILENCE = "_silence_"
TWELVE_LABELS: tuple[str, ...] = (*CORE_WORDS, UNKNOWN, SILENCE)
DEMO_WORDS: tuple[str, ...] = ("yes", "no", "up", "down")
NOISE_DIR = "_background_noise_"
#: Split -> official list file; everything else is train.
LIST_FILES = {"valid": "validation_list.txt", "test": "testing_list.txt"}
_LIST_DIRS = (".", "v1_lists")
_SPLITS = ("train", "valid", "test")
_VERSION_WORDS = {"speech_commands_v1": V1_WORDS, "speech_commands_v2": V2_WORDS}
#: 12-class task's data_dir -> the folder name of that release's separate test archive.
TEST_ARCHIVES = {
    "speech_commands_v1": "speech_commands_test_set_v0.01",
    "speech_commands_v2": "speech_commands_test_set_v0.02",
}
#: ``_silence_`` crops per split, in percent of that split's core-word clips (rounded up).
SILENCE_PERCENT = 10
#: Seed of the crop positions (with the split's index: one independent stream per split).
SILENCE_SEED = 0


def speaker_of(filename: str) -> str:
    """The speaker hash of a clip name ``<speaker>_nohash_<n>.wav``."""
    return filename.split("_nohash_", 1)[0]


def segment_splits(n_segments: int) -> list[str]:
    """Splits of a noise recording's 1-s segments: first 80 % train, next 10 % valid, rest test."""
    n_train, n_train_valid = (8 * n_segments) // 10, (9 * n_segments) // 10
    n_valid, n_test = n_train_valid - n_train, n_segments - n_train_valid
    return ["train"] * n_train + ["valid"] * n_valid + ["test"] * n_test


def _read_lists(location: DataLocation) -> dict[str, str]:
    """``<word>/<file>`` -> "valid"/"test" from the official lists (root, else ``v1_lists/``)."""
    assigned: dict[str, str] = {}
    for split, filename in LIST_FILES.items():
        candidates = [location.folder / folder / filename for folder in _LIST_DIRS]
        path = next((candidate for candidate in candidates if candidate.is_file()), None)
        if path is None:
            looked = " and ".join(str(candidate) for candidate in candidates)
            raise location.error(f"official list {filename} not found: looked for {looked}")
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                assigned[line.strip()] = split
    return assigned


def _label_map(task: Task) -> dict[str, int]:
    """Word folder -> label index: the word itself, or (12-class) core word / ``_unknown_``."""
    if task.label_names != TWELVE_LABELS:
        return {word: index for index, word in enumerate(task.label_names)}
    words = _VERSION_WORDS.get(task.data_dir)
    if words is None:
        raise ConfigError(
            f"12-class task {task.name!r} needs `data_dir` in {sorted(_VERSION_WORDS)}; got {task.data_dir!r}."
        )
    unknown = TWELVE_LABELS.index(UNKNOWN)
    return {word: CORE_WORDS.index(word) if word in CORE_WORDS else unknown for word in words}


def _word_examples(
    location: DataLocation, labels: dict[str, int], lists: dict[str, str], present_only: bool
) -> tuple[list[Example], list[str], list[str]]:
    """Examples of the word folders, plus the absent word folders and absent listed files."""
    listed: dict[str, set[str]] = {}
    for entry in lists:
        word, _, name = entry.partition("/")
        listed.setdefault(word, set()).add(name)
    examples: list[Example] = []
    absent_words: list[str] = []
    absent_files: list[str] = []
    for word in sorted(labels):
        folder = location.folder / word
        present = {path.name for path in folder.glob("*.wav")} if folder.is_dir() else set()
        if not folder.is_dir():
            absent_words.append(word)
        wanted = listed.get(word, set())
        absent_files += sorted(f"{word}/{name}" for name in wanted - present)
        for name in sorted(present if present_only else present | wanted):
            split = lists.get(f"{word}/{name}", "train")
            examples.append(Example(folder / name, labels[word], split, group=speaker_of(name)))
    return examples, absent_words, absent_files


def silence_count(n_core_clips: int) -> int:
    """``_silence_`` crops for a split with ``n_core_clips`` target-word clips: ceil(SILENCE_PERCENT %)."""
    return math.ceil(n_core_clips * SILENCE_PERCENT / 100)


def crop_region(frames: int, samplerate: int, split: str) -> tuple[int, int]:
    """[lo, hi) in frames: the whole seconds of a recording that ``split`` crops from (see segment_splits)."""
    seconds = [k for k, s in enumerate(segment_splits(frames // samplerate)) if s == split]
    if not seconds:
        return 0, 0
    return seconds[0] * samplerate, (seconds[-1] + 1) * samplerate


def draw_crops(sizes: Sequence[tuple[int, int]], split: str, count: int) -> list[tuple[int, int]]:
    """``count`` distinct (recording index, start frame) 1-s crops of ``split``'s regions, sorted.

    ``sizes`` are (frames, samplerate) per recording. Every possible window of every recording is
    equally likely; the stream is ``default_rng([SILENCE_SEED, index of split])``, so the same files
    give the same crops. Fewer than ``count`` come back only when fewer windows exist.
    """
    starts = []  # (recording, first start, number of starts)
    for index, (frames, rate) in enumerate(sizes):
        lo, hi = crop_region(frames, rate, split)
        if hi - lo >= rate:
            starts.append((index, lo, hi - lo - rate + 1))
    total = sum(n for _, _, n in starts)
    if total == 0 or count == 0:
        return []
    rng = np.random.default_rng([SILENCE_SEED, _SPLITS.index(split)])
    flat = np.sort(rng.choice(total, size=min(count, total), replace=False))
    edges = np.cumsum([n for _, _, n in starts])
    crops = []
    for position in flat.tolist():
        which = int(np.searchsorted(edges, position, side="right"))
        index, lo, n = starts[which]
        crops.append((index, lo + position - int(edges[which] - n)))
    return crops


def _noise_sizes(location: DataLocation, allow_missing: bool) -> list[tuple[Path, int, int]]:
    """(path, frames, samplerate) of each background-noise recording, sorted by name."""
    folder = location.folder / NOISE_DIR
    recordings = sorted(folder.glob("*.wav")) if folder.is_dir() else []
    if not recordings and not allow_missing:
        raise location.error(
            f"no background-noise .wav in {folder}: the {SILENCE} class is cropped from them",
            fix=INCOMPLETE_FIX,
        )
    sizes = []
    for path in recordings:
        try:
            info = sf.info(str(path))
        except (RuntimeError, sf.LibsndfileError) as err:
            raise location.error(f"cannot read the header of {path} ({err})", fix="replace that file") from err
        sizes.append((path, int(info.frames), int(info.samplerate)))
    return sizes


def _silence_examples(location: DataLocation, label: int, counts: dict[str, int], allow_missing: bool) -> list[Example]:
    """``counts[split]`` seeded random 1-s crops of the noise recordings per split (module docstring)."""
    recordings = _noise_sizes(location, allow_missing)
    examples: list[Example] = []
    for split, count in counts.items():
        crops = draw_crops([(frames, rate) for _, frames, rate in recordings], split, count)
        if len(crops) < count and recordings:
            _log.info("%s: only %d of %d %s crops fit in the noise", location.task, len(crops), count, split)
        for index, start in crops:
            path, _, rate = recordings[index]
            group = f"{NOISE_DIR}/{path.stem}:{split}"
            examples.append(Example(path, label, split, start_s=start / rate, end_s=(start + rate) / rate, group=group))
    return examples


def find_test_archive(task: Task, location: DataLocation) -> Path | None:
    """The release's separate test archive folder, inside the dataset folder or beside it; None if absent."""
    name = TEST_ARCHIVES.get(task.data_dir)
    if name is None:
        return None
    for folder in (location.folder / name, location.folder.parent / name):
        if folder.is_dir():
            return folder
    return None


def _archive_examples(archive: Path, location: DataLocation, allow_missing: bool) -> list[Example]:
    """The test archive's clips, one folder per 12-class label (``_silence_``/``_unknown_`` included)."""
    absent = [name for name in TWELVE_LABELS if not (archive / name).is_dir()]
    if absent and not allow_missing:
        raise location.error(
            f"the test archive {archive} lacks the label folder(s) {shown(absent)}", fix=INCOMPLETE_FIX
        )
    examples = []
    for label, name in enumerate(TWELVE_LABELS):
        for path in sorted((archive / name).glob("*.wav")):
            examples.append(Example(path, label, "test", group=speaker_of(path.name)))
    return examples


def _missing_message(n_words: int, absent_words: list[str], absent_files: list[str]) -> str:
    """ "k of n word folder(s) absent (a, b ...), m file(s) named in the official lists absent (e.g. ...)"."""
    words = f" ({shown(absent_words)})" if absent_words else ""
    files = f" (e.g. {shown(absent_files)})" if absent_files else ""
    return (
        f"missing data: {len(absent_words)} of {n_words} word folder(s) absent{words}, "
        f"{len(absent_files)} file(s) named in the official lists absent{files}"
    )


def read_speech_commands(
    task: Task, location: DataLocation, *, allow_missing: bool, check_audio: bool
) -> list[Example]:
    """Word examples (and, for the 12-class variant, silence crops and the test archive) of a folder.

    ``check_audio=False`` also returns list entries whose file is absent and skips the completeness
    check (the metadata view); silence crops still need the noise recordings' headers.
    """
    labels = _label_map(task)
    lists = _read_lists(location)
    examples, absent_words, absent_files = _word_examples(location, labels, lists, present_only=check_audio)
    archive = find_test_archive(task, location) if task.label_names == TWELVE_LABELS else None
    if archive is not None:  # the archive is the test split: testing_list.txt clips take no part
        examples = [example for example in examples if example.split != "test"]
        absent_files = [entry for entry in absent_files if lists.get(entry) != "test"]
    if check_audio and not allow_missing and (absent_words or absent_files):
        raise location.error(_missing_message(len(labels), absent_words, absent_files), fix=INCOMPLETE_FIX)
    if task.label_names != TWELVE_LABELS:
        return examples
    core = [example.split for example in examples if example.label < len(CORE_WORDS)]
    counts = {split: silence_count(core.count(split)) for split in _SPLITS if archive is None or split != "test"}
    examples += _silence_examples(location, TWELVE_LABELS.index(SILENCE), counts, allow_missing)
    if archive is not None:
        _log.info("%s: test split read from the separate test archive %s", task.name, archive)
        examples += _archive_examples(archive, location, allow_missing)
    return examples


def word_task(name: str, label_names: tuple[str, ...], data_dir: str, description: str) -> Task:
    """A Speech Commands task over ``label_names`` (words, or TWELVE_LABELS for the 12-class variant)."""
    return Task(
        name=name,
        label_names=label_names,
        protocol="split",
        splits=_SPLITS,
        description=description,
        data_dir=data_dir,
        reader=read_speech_commands,
    )


SPEECHCOMMANDS_V2 = word_task(
    "speechcommands-v2", V2_WORDS, "speech_commands_v2", "Speech Commands v0.02, 35 words, official lists."
)

SPEECHCOMMANDS_V1 = word_task(
    "speechcommands-v1", V1_WORDS, "speech_commands_v1", "Speech Commands v0.01, 30 words, official lists."
)

_TWELVE_NOTE = (
    "10 words + _unknown_ (every other word) + _silence_ (seeded random 1-s crops of _background_noise_, "
    "10 % of each split's core-word clips); official lists; test = the separate {archive}/ archive "
    "(inside or beside the data folder) when present, else testing_list.txt + cropped silence."
)

SPEECHCOMMANDS_V2_12 = word_task(
    "speechcommands-v2-12", TWELVE_LABELS, "speech_commands_v2",
    "Speech Commands v0.02, SUPERB-style 12-class: "
    + _TWELVE_NOTE.format(archive=TEST_ARCHIVES["speech_commands_v2"]),
)  # fmt: skip

SPEECHCOMMANDS_V1_12 = word_task(
    "speechcommands-v1-12", TWELVE_LABELS, "speech_commands_v1",
    "Speech Commands v0.01, SUPERB 12-class: " + _TWELVE_NOTE.format(archive=TEST_ARCHIVES["speech_commands_v1"]),
)  # fmt: skip

DEMO = word_task(
    "demo-words", DEMO_WORDS, "speech_commands_v2",
    "The synthetic demo set of audiosep_kit.evaluate._demo_data (yes/no/up/down), Speech Commands layout.",
)  # fmt: skip
