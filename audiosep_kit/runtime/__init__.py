"""The runtime layer: the backends that run the encoder, and the FeatureExtractor that feeds them.

Data flows audio -> runtime -> features: :class:`FeatureExtractor` takes waveforms or files (through
``audiosep_kit.audio``), groups them into equal-length batches and runs one backend from the registry
(``audiosep_kit.runtime.backends``). Backends only load artifacts; the export layer builds them.
:class:`SweepExtractor` computes several (layer, pooling) taps from one eager pass (an ablation sweep).
"""

from audiosep_kit.runtime._extractor import (
    SHORT_CLIP_SAMPLES,
    FeatureExtractor,
    check_clip_length,
    describe_extraction,
    min_samples,
    read_condition,
    run_grouped,
)
from audiosep_kit.runtime._sweep import SWEEP_POOLINGS, SweepExtractor, Tap, TapView, check_sweep_backend
from audiosep_kit.runtime._tiling import Tiling, estimate_peak_bytes, tap_stride
from audiosep_kit.runtime.backends import (
    BACKENDS,
    Backend,
    artifact_options,
    backend_names,
    backend_options,
    backend_variants,
    backends_taking,
    default_precision,
    make_backend,
    needs_cuda,
    parse_variant,
    register_backend,
)

__all__ = [
    "BACKENDS",
    "Backend",
    "artifact_options",
    "FeatureExtractor",
    "SHORT_CLIP_SAMPLES",
    "SWEEP_POOLINGS",
    "SweepExtractor",
    "Tap",
    "TapView",
    "Tiling",
    "backend_names",
    "check_clip_length",
    "check_sweep_backend",
    "backend_options",
    "backend_variants",
    "backends_taking",
    "default_precision",
    "needs_cuda",
    "parse_variant",
    "describe_extraction",
    "estimate_peak_bytes",
    "make_backend",
    "min_samples",
    "read_condition",
    "register_backend",
    "run_grouped",
    "tap_stride",
]
