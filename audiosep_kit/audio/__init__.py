"""The audio layer, the front door: any file or array in, the 32 kHz mono float32 waveform the model expects.

Decoding is soundfile's (libsndfile), or PyAV's for .m4a/.aac when it is installed; the downmix is the channel
mean, the resampler soxr 'HQ'. Every refusal raises AudioDecodeError naming the file, and a folder scan lists
every entry it will not decode with the reason.
"""

from audiosep_kit.audio._av import AV_EXTENSIONS, AV_INSTALL_HINT
from audiosep_kit.audio._batch import prepare_batch
from audiosep_kit.audio._decode import DEFAULT_MAX_SECONDS
from audiosep_kit.audio._io import (
    AUDIO_EXTENSIONS,
    RESAMPLER,
    SNDFILE_EXTENSIONS,
    AudioClip,
    load_audio,
    prepare_waveform,
    read_audio,
    resample,
    to_mono,
)
from audiosep_kit.audio._scan import FolderScan, SkippedFile, audio_files, scan_audio_folder
from audiosep_kit.audio._segment import AudioSegment

__all__ = [
    "AUDIO_EXTENSIONS",
    "AV_EXTENSIONS",
    "AV_INSTALL_HINT",
    "AudioClip",
    "AudioSegment",
    "DEFAULT_MAX_SECONDS",
    "FolderScan",
    "RESAMPLER",
    "SNDFILE_EXTENSIONS",
    "SkippedFile",
    "audio_files",
    "load_audio",
    "prepare_batch",
    "prepare_waveform",
    "read_audio",
    "resample",
    "scan_audio_folder",
    "to_mono",
]
