"""audiosep-kit: the AudioSep encoder as a bit-faithful, exportable, benchmarked feature extractor.

The layers, each a subpackage, with data flowing one way (audio -> runtime -> features -> evaluate ->
report): ``model`` (network, options, strict loading), ``audio`` (the front door), ``export`` (ONNX and
AOTInductor artifacts, verified), ``runtime`` (backends, FeatureExtractor), ``features`` (stores and
their cache), ``evaluate`` (tasks, heads, protocols, reports), ``bench`` (speed and parity across
backends), ``cli`` (the commands). ``errors`` and ``numerics`` are shared by all of them.
"""

from audiosep_kit.audio import AudioSegment, load_audio, read_audio
from audiosep_kit.errors import (
    ArtifactMismatchError,
    AudioDecodeError,
    AudioSepKitError,
    BackendUnavailableError,
    CheckpointError,
    ConfigError,
    DatasetError,
    StoreError,
    VerificationError,
)
from audiosep_kit.features import FeatureStore, extract_to_store
from audiosep_kit.model import SAMPLE_RATE, EncoderConfig, load_weights
from audiosep_kit.runtime import FeatureExtractor

__version__ = "0.1.0"

__all__ = [
    "ArtifactMismatchError",
    "AudioDecodeError",
    "AudioSegment",
    "AudioSepKitError",
    "BackendUnavailableError",
    "CheckpointError",
    "ConfigError",
    "DatasetError",
    "EncoderConfig",
    "FeatureExtractor",
    "FeatureStore",
    "SAMPLE_RATE",
    "StoreError",
    "VerificationError",
    "__version__",
    "extract_to_store",
    "load_audio",
    "load_weights",
    "read_audio",
]
