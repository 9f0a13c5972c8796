"""Speech Commands (Warden 2018) keyword spotting, v0.02 and v0.01, full word sets and the 12-class variant.

Layout (the release archives): ``<folder>/<word>/<speaker>_nohash_<n>.wav`` (1 s, 16 kHz),
``<folder>/_background_noise_/*.wav`` (long noise recordings, not a word) and the official
``validation_list.txt`` / ``testing_list.txt`` (``<word>/<file>`` lines) at the folder's root, or in
``v1_lists/`` (how the shared v0.01 sample stores them). Every clip of a word folder that neither list
names is ``train``; ``group`` is the speaker hash before ``_nohash_`` (the official lists are built by
hashing it, so speakers never straddle splits). Examples come word by word (sorted), files sorted.

* ``speechcommands-v2``: the 35 words of v0.02; ``speechcommands-v1``: the 30 words of v0.01
  (data folder ``speech_commands_v1/``, or the shared SC09 sample ``speech_commands_sc09/``).
* ``speechcommands-v2-12`` / ``-v1-12``: the SUPERB/HEAR 12-class variant: yes, no, up, down, left,
  right, on, off, stop, go, ``_unknown_`` (every other word of that version) and ``_silence_``.
  ``_silence_`` examples are cut from the background-noise recordings: each ``*.wav`` there (sorted by
  name) gives ``floor(duration)`` non-overlapping 1-s segments ``[k, k+1)`` s; of a file's ``n``
  segments the first ``floor(0.8 n)`` are train, up to ``floor(0.9 n)`` valid, the rest test
  (contiguous blocks, so neighbouring seconds of one recording stay on one side). The v0.02 release's
  six recordings give about 400 segments (~320/40/40). ``group`` is ``<recording>:<split>``.
  The test split is ``testing_list.txt`` of the main archive (not the separate v0.02 test archive).
* ``demo-words``: the same reader over the words of ``audiosep_kit.evaluate._demo_data`` (yes, no, up,
  down) in a ``speech_commands_v2/`` folder: the synthetic demo set, or that subset of real v0.02.

A word folder the task needs that is absent, or a list entry whose file is absent, is missing data.
"""

from __future__ import annotations

import soundfile as sf

from audiosep_kit.errors import ConfigError
from audiosep_kit.evaluate.tasks._common import INCOMPLETE_FIX, DataLocation, shown
from audiosep_kit.evaluate.tasks._task import Example, Task

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


def _silence_examples(location: DataLocation, label: int, allow_missing: bool) -> list[Example]:
    """1-s segments of the background-noise recordings, split by ``segment_splits``."""
    folder = location.folder / NOISE_DIR
    recordings = sorted(folder.glob("*.wav")) if folder.is_dir() else []
    if not recordings:
        if allow_missing:
            return []
        raise location.error(
            f"no background-noise .wav in {folder}: the {SILENCE} class is cut from them",
            fix=INCOMPLETE_FIX,
        )
    examples: list[Example] = []
    for path in recordings:
        try:
            info = sf.info(str(path))
        except (RuntimeError, sf.LibsndfileError) as err:
            raise location.error(f"cannot read the header of {path} ({err})", fix="replace that file") from err
        for k, split in enumerate(segment_splits(info.frames // info.samplerate)):
            group = f"{NOISE_DIR}/{path.stem}:{split}"
            examples.append(Example(path, label, split, start_s=float(k), end_s=float(k + 1), group=group))
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
    """Word examples (and, for the 12-class variant, silence segments) of a Speech Commands folder.

    ``check_audio=False`` also returns list entries whose file is absent and skips the completeness
    check (the metadata view); silence segments still need the noise recordings' headers.
    """
    labels = _label_map(task)
    lists = _read_lists(location)
    examples, absent_words, absent_files = _word_examples(location, labels, lists, present_only=check_audio)
    if check_audio and not allow_missing and (absent_words or absent_files):
        raise location.error(_missing_message(len(labels), absent_words, absent_files), fix=INCOMPLETE_FIX)
    if task.label_names == TWELVE_LABELS:
        examples += _silence_examples(location, TWELVE_LABELS.index(SILENCE), allow_missing)
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

SPEECHCOMMANDS_V2_12 = word_task(
    "speechcommands-v2-12", TWELVE_LABELS, "speech_commands_v2",
    "Speech Commands v0.02, 10 words + _unknown_ + _silence_ (SUPERB/HEAR 12-class), official lists.",
)  # fmt: skip

SPEECHCOMMANDS_V1_12 = word_task(
    "speechcommands-v1-12", TWELVE_LABELS, "speech_commands_v1",
    "Speech Commands v0.01, 10 words + _unknown_ + _silence_ (SUPERB/HEAR 12-class), official lists.",
)  # fmt: skip

DEMO = word_task(
    "demo-words", DEMO_WORDS, "speech_commands_v2",
    "The synthetic demo set of audiosep_kit.evaluate._demo_data (yes/no/up/down), Speech Commands layout.",
)  # fmt: skip
