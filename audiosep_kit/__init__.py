"""audiosep-kit: the AudioSep encoder as a bit-faithful, exportable, benchmarked feature extractor."""

from audiosep_kit.errors import (
    ArtifactMismatchError,
    AudioDecodeError,
    AudioSepKitError,
    BackendUnavailableError,
    CheckpointError,
    ConfigError,
    DatasetError,
    StoreError,
)
from audiosep_kit.model.checkpoint import load_weights
from audiosep_kit.model.config import SAMPLE_RATE, EncoderConfig
from audiosep_kit.runtime.audio import load_audio, read_audio
from audiosep_kit.runtime.extractor import FeatureExtractor

__version__ = "0.1.0"

__all__ = [
    "FeatureExtractor",
    "EncoderConfig",
    "load_audio",
    "read_audio",
    "load_weights",
    "SAMPLE_RATE",
    "AudioSepKitError",
    "ConfigError",
    "CheckpointError",
    "AudioDecodeError",
    "BackendUnavailableError",
    "ArtifactMismatchError",
    "DatasetError",
    "StoreError",
    "__version__",
]
