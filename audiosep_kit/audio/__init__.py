"""The audio layer, the front door: any file or array in, the 32 kHz mono float32 waveform the model expects.

Decoding is soundfile's (libsndfile), the downmix is the channel mean, the resampler soxr 'HQ'.
Every refusal raises AudioDecodeError naming the file.
"""

from audiosep_kit.audio._io import (
    AUDIO_EXTENSIONS,
    DEFAULT_MAX_SECONDS,
    RESAMPLER,
    AudioClip,
    load_audio,
    prepare_waveform,
    read_audio,
    resample,
    to_mono,
)
from audiosep_kit.audio._segment import AudioSegment, audio_files

__all__ = [
    "AUDIO_EXTENSIONS",
    "AudioClip",
    "AudioSegment",
    "DEFAULT_MAX_SECONDS",
    "RESAMPLER",
    "audio_files",
    "load_audio",
    "prepare_waveform",
    "read_audio",
    "resample",
    "to_mono",
]
