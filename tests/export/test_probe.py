"""The load-time probe: an artifact must compute what the requested weights and options compute.

``probe_artifact`` takes any callable, so these tests feed it eager encoders (right weights, other
weights, other options, a crashing one) instead of exporting: the ONNX and AOTInductor files
themselves are probed in tests/runtime/backends.
"""

from __future__ import annotations

import numpy as np
import pytest

from audiosep_kit.errors import ArtifactMismatchError, BackendUnavailableError
from audiosep_kit.export import PROBE_LENGTH, probe_artifact
from audiosep_kit.model import EncoderConfig, build_encoder, load_weights, run_encoder

SMALL = EncoderConfig(layer="block1", pooling="mean")


def _eager(weights, config):
    model = build_encoder(weights, config)
    return lambda x: run_encoder(model, x)


def test_the_requested_weights_pass_and_say_how_close(random_weights):
    record = probe_artifact(
        _eager(random_weights, SMALL), random_weights, SMALL, precision="fp32", artifact="m.onnx", kind="onnx"
    )
    assert record["passed"] is True and record["max_rel"] == 0.0 and record["min_cosine"] > 0.999999
    assert str(PROBE_LENGTH) in record["probe"] and record["seconds"] > 0


def test_other_weights_are_refused_naming_file_distance_and_fix(random_weights):
    other = _eager(load_weights("random:1"), SMALL)
    pattern = (
        r"m\.onnx does not compute what its metadata claims: on a 16000-sample probe clip it gives max abs "
        r"difference [0-9.e+-]+ \(max rel [0-9.e+-]+, min cosine -?[0-9.]+; fp32 allows .*random:0, sha256 "
        r"[0-9a-f]{16}.*Re-export it .*`audiosep-export onnx --checkpoint CKPT -o m\.onnx`"
    )
    with pytest.raises(ArtifactMismatchError, match=pattern):
        probe_artifact(other, random_weights, SMALL, precision="fp32", artifact="dir/m.onnx", kind="onnx")


def test_other_pad_to_32_is_refused(random_weights):
    """0.5 s is 51 frames: padded to 64 or not, the pooled features differ."""
    unpadded = _eager(random_weights, EncoderConfig(layer="block1", pooling="mean", pad_to_32=False))
    with pytest.raises(ArtifactMismatchError, match=r"max abs difference"):
        probe_artifact(unpadded, random_weights, SMALL, precision="fp32", artifact="m.pt2", kind="aoti")


def test_other_pooling_is_refused_as_a_shape(random_weights):
    meanstd = _eager(random_weights, EncoderConfig(layer="block1", pooling="meanstd"))
    with pytest.raises(
        ArtifactMismatchError, match=r"features of shape \(1, 64\) where the requested options give \(1, 32\)"
    ):
        probe_artifact(meanstd, random_weights, SMALL, precision="fp32", artifact="m.pt2", kind="aoti")


def test_the_precision_sets_the_tolerance(random_weights):
    """A 1e-3 relative drift fails fp32's bound (1e-4 of the scale) and passes fp16's cosine >= 0.999."""
    eager = _eager(random_weights, SMALL)

    def drifted(x: np.ndarray) -> np.ndarray:
        return eager(x) * np.float32(1.001)

    probe_artifact(drifted, random_weights, SMALL, precision="fp16", artifact="m.onnx", kind="onnx")
    with pytest.raises(ArtifactMismatchError, match=r"fp32 allows"):
        probe_artifact(drifted, random_weights, SMALL, precision="fp32", artifact="m.onnx", kind="onnx")


def test_a_crash_on_the_probe_is_a_mismatch_and_toolkit_errors_pass(random_weights):
    def crashes(x: np.ndarray) -> np.ndarray:
        raise RuntimeError("Output size is too small\nmore detail")

    def gone(x: np.ndarray) -> np.ndarray:
        raise BackendUnavailableError("the device went away")

    with pytest.raises(
        ArtifactMismatchError,
        match=r"m\.onnx fails on a 16000-sample probe clip .*\(RuntimeError: Output size is too small\)",
    ):
        probe_artifact(crashes, random_weights, SMALL, precision="fp32", artifact="m.onnx", kind="onnx")
    with pytest.raises(BackendUnavailableError, match=r"the device went away"):
        probe_artifact(gone, random_weights, SMALL, precision="fp32", artifact="m.onnx", kind="onnx")
