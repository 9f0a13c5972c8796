"""The model layer: the AudioSep encoder network, its options, and strict checkpoint loading.

Everything below ``conv_block7a`` of ResUNet30 with the official module names (so a checkpoint's
encoder subset loads with ``strict=True``), the validated :class:`EncoderConfig`, and
:func:`load_weights`, which reads the checkpoint files users have and identifies the weights by SHA-256.
"""

from audiosep_kit.model._checkpoint import (
    CHECKPOINT_ENV,
    LoadedWeights,
    build_encoder,
    load_weights,
    random_state_dict,
    read_state_dict,
    resolve_checkpoint,
    select_encoder_state,
    weights_sha256,
)
from audiosep_kit.model._config import (
    CONDITION_SIZE,
    FILM_MODES,
    HOP,
    LAYER_CHANNELS,
    LAYERS,
    MIN_SAMPLES,
    N_FFT,
    POOLINGS,
    SAMPLE_RATE,
    EncoderConfig,
)
from audiosep_kit.model._encoder import BLOCKS, AudioSepEncoder, pool_features, run_encoder, run_encoder_maps
from audiosep_kit.model._stft_kernels import dft_kernels

__all__ = [
    "AudioSepEncoder",
    "BLOCKS",
    "CHECKPOINT_ENV",
    "CONDITION_SIZE",
    "EncoderConfig",
    "FILM_MODES",
    "HOP",
    "LAYERS",
    "LAYER_CHANNELS",
    "LoadedWeights",
    "MIN_SAMPLES",
    "N_FFT",
    "POOLINGS",
    "SAMPLE_RATE",
    "build_encoder",
    "dft_kernels",
    "load_weights",
    "pool_features",
    "random_state_dict",
    "read_state_dict",
    "resolve_checkpoint",
    "run_encoder",
    "run_encoder_maps",
    "select_encoder_state",
    "weights_sha256",
]
