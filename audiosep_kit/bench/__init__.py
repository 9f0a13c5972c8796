"""The bench layer: backends measured against each other, for speed (``run_bench``) and agreement (``run_parity``),
and an extraction's rate measured on its own first inputs (``calibrate``, for ``audiosep-extract --dry-run``).

It sits above runtime and features because it drives them: it builds backends from the registry, runs
the same inputs through each, and compares with eager float32 using the numerics table. Nothing here
asserts a time; benchmarks report them.
"""

from audiosep_kit.bench._calibrate import CALIBRATION_AUDIO_S, Calibration, calibrate
from audiosep_kit.bench._measure import (
    STAGE_MAC_PER_PADDED_FRAME,
    STFT_MAC_PER_FRAME,
    Peak,
    encoder_macs,
    gflop_per_audio_second,
    latency_summary,
    measure_peak,
    peak_rss_during,
    stft_frames,
    synthetic_clips,
    throughput,
    time_calls,
)
from audiosep_kit.bench._parity import BackendParity, golden_clips, run_parity, synthetic_parity_clips
from audiosep_kit.bench._run import BackendSpec, build_backends, end_to_end, load_clips, run_bench

__all__ = [
    "BackendParity",
    "CALIBRATION_AUDIO_S",
    "Calibration",
    "BackendSpec",
    "Peak",
    "STAGE_MAC_PER_PADDED_FRAME",
    "STFT_MAC_PER_FRAME",
    "build_backends",
    "calibrate",
    "encoder_macs",
    "end_to_end",
    "gflop_per_audio_second",
    "golden_clips",
    "latency_summary",
    "load_clips",
    "measure_peak",
    "peak_rss_during",
    "run_bench",
    "run_parity",
    "stft_frames",
    "synthetic_clips",
    "synthetic_parity_clips",
    "throughput",
    "time_calls",
]
