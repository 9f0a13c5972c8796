"""The synthetic demo set: layout and format, determinism, learnability, and that the readers load it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiosep_kit.errors import ConfigError
from audiosep_kit.evaluate._demo_data import DEMO_WORDS, demo_task, make_demo_dataset
from audiosep_kit.evaluate.tasks import TASKS, load_examples
from audiosep_kit.evaluate.tasks._speechcommands import SILENCE, TWELVE_LABELS


def _peak_hz(path: Path) -> float:
    wave, rate = sf.read(path)
    return float(np.argmax(np.abs(np.fft.rfft(wave)))) * rate / wave.shape[0]


def test_layout_and_format(tmp_path: Path) -> None:
    """Speech Commands layout: WORD/<hash>_nohash_<n>.wav, 1-s 16 kHz mono PCM16, lists and a noise file."""
    root = make_demo_dataset(tmp_path)
    folder = root / "speech_commands_v2"
    assert root == tmp_path
    assert sorted(path.name for path in folder.iterdir()) == sorted(
        [*DEMO_WORDS, "_background_noise_", "validation_list.txt", "testing_list.txt"]
    )
    clips = sorted(folder.glob("*/*_nohash_*.wav"))
    assert len(clips) == 4 * 12
    for clip in clips[:5]:
        info = sf.info(str(clip))
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (16000, 1, 16000, "PCM_16")
        assert len(clip.name.split("_nohash_")[0]) == 8
    noise = sf.info(str(folder / "_background_noise_" / "demo_noise.wav"))
    assert noise.frames == 6 * 16000


def test_loads_through_demo_words(tmp_path: Path) -> None:
    """The registered demo-words task reads it completely: 8/2/2 clips per word, speakers split apart."""
    examples = load_examples("demo-words", make_demo_dataset(tmp_path))
    assert TASKS["demo-words"].label_names == DEMO_WORDS
    assert Counter((ex.label, ex.split) for ex in examples) == {
        (label, split): count for label in range(4) for split, count in (("train", 8), ("valid", 2), ("test", 2))
    }
    speakers = {split: {ex.group for ex in examples if ex.split == split} for split in ("train", "valid", "test")}
    assert len(speakers["train"]) == 4 and len(speakers["valid"]) == len(speakers["test"]) == 1
    assert not speakers["train"] & (speakers["valid"] | speakers["test"])


def test_loads_through_speech_commands_with_allow_missing(tmp_path: Path) -> None:
    """speechcommands-v2-12 reads it with allow_missing (31 v2 words absent), silence from the noise file."""
    examples = load_examples("speechcommands-v2-12", make_demo_dataset(tmp_path), allow_missing=True)
    silence = [ex for ex in examples if TWELVE_LABELS[ex.label] == SILENCE]
    assert Counter(ex.split for ex in silence) == {"train": 4, "valid": 1, "test": 1}
    assert {TWELVE_LABELS[ex.label] for ex in examples} == {*DEMO_WORDS, SILENCE}


def test_is_deterministic(tmp_path: Path) -> None:
    """The same seed writes identical files; another seed writes different audio."""
    first = make_demo_dataset(tmp_path / "a") / "speech_commands_v2"
    second = make_demo_dataset(tmp_path / "b") / "speech_commands_v2"
    other = make_demo_dataset(tmp_path / "c", seed=1) / "speech_commands_v2"
    files = sorted(path.relative_to(first) for path in first.rglob("*") if path.is_file())
    assert files == sorted(path.relative_to(second) for path in second.rglob("*") if path.is_file())
    assert all((first / name).read_bytes() == (second / name).read_bytes() for name in files)
    first_clip, other_clip = sorted((first / "yes").glob("*.wav"))[0], sorted((other / "yes").glob("*.wav"))[0]
    assert not np.array_equal(sf.read(first_clip)[0], sf.read(other_clip)[0])


def test_is_learnable(tmp_path: Path) -> None:
    """Each word owns a pitch band: the nearest train centroid of the peak frequency gets valid+test right."""
    words = ("a", "b", "c", "d", "e", "f", "g", "h")
    examples = load_examples(demo_task(words), make_demo_dataset(tmp_path, words=words))
    peaks = np.log([_peak_hz(ex.path) for ex in examples])
    labels = np.array([ex.label for ex in examples])
    train = np.array([ex.split == "train" for ex in examples])
    centroids = np.array([peaks[train & (labels == k)].mean() for k in range(len(words))])
    predicted = np.abs(peaks[~train, None] - centroids[None, :]).argmin(axis=1)
    assert (predicted == labels[~train]).mean() == 1.0


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    """Too few clips, duplicate or odd words, and an existing folder are ConfigErrors saying what is allowed."""
    with pytest.raises(ConfigError, match=r"`per_word` must be >= 6 .*; got 4"):
        make_demo_dataset(tmp_path, per_word=4)
    with pytest.raises(ConfigError, match=r"`words` must be 2 to 12 distinct words; got \('yes', 'yes'\)"):
        make_demo_dataset(tmp_path, words=("yes", "yes"))
    with pytest.raises(ConfigError, match=r"plain folder names .*got \['_x'\]"):
        make_demo_dataset(tmp_path, words=("yes", "_x"))
    make_demo_dataset(tmp_path)
    with pytest.raises(ConfigError, match=r"speech_commands_v2 already exists"):
        make_demo_dataset(tmp_path)
