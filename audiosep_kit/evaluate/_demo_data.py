"""A tiny synthetic keyword set in the Speech Commands layout, for end-to-end runs without real data.

``make_demo_dataset(root)`` writes ``root/speech_commands_v2/`` as the real release lays it out: one
folder per word of 1-s 16 kHz mono PCM16 clips named ``<speaker>_nohash_<n>.wav``, the official-style
``validation_list.txt`` / ``testing_list.txt`` and a short ``_background_noise_/`` recording. It is
read by the ``demo-words`` task (the Speech Commands reader over ``DEMO_WORDS``), and, with
``allow_missing=True``, by ``speechcommands-v2`` / ``-v2-12``. For other ``words`` use
``demo_task(words)`` as the task.

Each word is a distinct, learnable pattern, so a linear probe on any reasonable feature separates
them: a harmonic tone whose pitch band is the word's own (160 Hz * 1.3**index), gliding 6 % up or down
by word, amplitude-modulated at a word-specific rate, with per-speaker pitch (+-5 %) and per-clip
pitch (+-2 %), onset, length, loudness and noise jitter. Every clip is a pure function of
(seed, word index, clip index), so the set is identical across runs and machines.

Speakers: clip ``i`` of every word is speaker ``i // 2`` (each speaker says each word twice); the
last speaker's clips are listed for testing, the one before for validation, the rest are train (as
in the real lists, speakers never straddle splits).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import soundfile as sf

from audiosep_kit.errors import ConfigError
from audiosep_kit.evaluate.tasks._speechcommands import DEMO_WORDS, LIST_FILES, NOISE_DIR, word_task
from audiosep_kit.evaluate.tasks._task import Task

SAMPLE_RATE = 16_000
#: Pitch bands 160 Hz * 1.3**k stay well inside 8 kHz, with harmonics, up to this many words.
MAX_WORDS = 12
_TAKES_PER_SPEAKER = 2
_NOISE_SECONDS = 6
_DATA_DIR = "speech_commands_v2"


def demo_task(words: tuple[str, ...] = DEMO_WORDS) -> Task:
    """The ``demo-words`` task over ``words`` (the registered one when ``words`` is DEMO_WORDS)."""
    return word_task("demo-words", tuple(words), _DATA_DIR, f"Synthetic demo words {tuple(words)}.")


def speaker_hash(seed: int, speaker: int) -> str:
    """An 8-hex-digit speaker id like the real ones, stable for (seed, speaker)."""
    return hashlib.sha1(f"audiosep-kit-demo/{seed}/{speaker}".encode()).hexdigest()[:8]


def _check_arguments(words: tuple[str, ...], per_word: int) -> None:
    if not 2 <= len(words) <= MAX_WORDS or len(set(words)) != len(words):
        raise ConfigError(f"`words` must be 2 to {MAX_WORDS} distinct words; got {words!r}.")
    bad = [word for word in words if not word or "/" in word or word.startswith(("_", "."))]
    if bad:
        raise ConfigError(f"`words` must be plain folder names (no '/', no leading '_' or '.'); got {bad}.")
    if per_word < 3 * _TAKES_PER_SPEAKER:
        raise ConfigError(
            f"`per_word` must be >= {3 * _TAKES_PER_SPEAKER} so train, valid and test each get a speaker; "
            f"got {per_word}."
        )


def _clip(word_index: int, speaker_shift: float, rng: np.random.Generator) -> np.ndarray:
    """One 1-s clip of a word: (16000,) float32 in [-1, 1]."""
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    f0 = 160.0 * 1.3**word_index * speaker_shift * rng.uniform(0.98, 1.02)
    glide = 0.06 if word_index % 2 == 0 else -0.06
    onset, length = rng.uniform(0.05, 0.2), rng.uniform(0.55, 0.7)
    local = np.clip((t - onset) / length, 0.0, 1.0)
    phase = 2 * np.pi * f0 * length * (local + glide * local**2 / 2)
    tone = sum(np.sin(h * phase) / h for h in range(1, 5) if h * f0 * max(1.0, 1 + glide) < 7000.0)
    envelope = np.sin(np.pi * local) ** 2 * (0.6 + 0.4 * np.sin(2 * np.pi * (3 + 2 * (word_index % 3)) * t))
    wave = rng.uniform(0.3, 0.6) * envelope * tone / 2.1 + rng.normal(0.0, rng.uniform(0.005, 0.02), t.size)
    return np.clip(wave, -1.0, 1.0).astype(np.float32)


def _write_words(folder: Path, words: tuple[str, ...], per_word: int, seed: int) -> dict[str, list[str]]:
    """Write every clip; return split -> ``<word>/<file>`` entries for the valid and test lists."""
    n_speakers = -(-per_word // _TAKES_PER_SPEAKER)
    split_of = {n_speakers - 1: "test", n_speakers - 2: "valid"}
    shifts = [np.random.default_rng([seed, 1, s]).uniform(0.95, 1.05) for s in range(n_speakers)]
    listed: dict[str, list[str]] = {"valid": [], "test": []}
    for w, word in enumerate(words):
        (folder / word).mkdir(parents=True)
        for i in range(per_word):
            speaker = i // _TAKES_PER_SPEAKER
            name = f"{speaker_hash(seed, speaker)}_nohash_{i % _TAKES_PER_SPEAKER}.wav"
            wave = _clip(w, shifts[speaker], np.random.default_rng([seed, 2, w, i]))
            sf.write(folder / word / name, wave, SAMPLE_RATE, subtype="PCM_16")
            if speaker in split_of:
                listed[split_of[speaker]].append(f"{word}/{name}")
    return listed


def make_demo_dataset(
    root: Path | str, *, words: tuple[str, ...] = DEMO_WORDS, per_word: int = 12, seed: int = 0
) -> Path:
    """Write the demo set to ``root/speech_commands_v2/`` and return ``root`` (the data root to pass).

    ``per_word`` clips per word (>= 6; the default 12 gives 8 train, 2 valid, 2 test per word), plus a
    6-s background-noise recording (the 12-class task crops 4 train, 1 valid, 1 test silence clips from it).
    Refuses to write into an existing ``speech_commands_v2/`` so real data is never mixed or replaced.
    """
    words = tuple(words)
    _check_arguments(words, per_word)
    root = Path(root)
    folder = root / _DATA_DIR
    if folder.exists():
        raise ConfigError(f"{folder} already exists; make_demo_dataset writes only into a fresh folder.")
    listed = _write_words(folder, words, per_word, seed)
    for split, filename in LIST_FILES.items():
        lines = "".join(f"{entry}\n" for entry in sorted(listed[split]))
        (folder / filename).write_text(lines, encoding="utf-8")
    noise = np.random.default_rng([seed, 3]).normal(0.0, 0.05, _NOISE_SECONDS * SAMPLE_RATE)
    (folder / NOISE_DIR).mkdir()
    sf.write(folder / NOISE_DIR / "demo_noise.wav", noise.astype(np.float32), SAMPLE_RATE, subtype="PCM_16")
    return root
