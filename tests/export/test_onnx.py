"""ONNX export: dynamic shapes that survive the pad-to-32 trap, verification, publish-or-fail, fp16.

Most exports use layer block2 with pooling 'none': the (B, 64, Tp/4, 256) map has a time axis that
depends on the padded frame count, so a baked-in pad shows up as a wrong shape, while the graph stays
small enough to export and verify in seconds. The full encoder is covered by the golden conformance
suite (tests/runtime/backends) and by the slow full-sweep test here.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from audiosep_kit.errors import ConfigError, VerificationError
from audiosep_kit.export._onnx import export_onnx
from audiosep_kit.export._pipeline import SWEEPS
from audiosep_kit.model._config import EncoderConfig
from audiosep_kit.numerics import Tolerance

BLOCK2_MAP = EncoderConfig(layer="block2", pooling="none")


def _padded_frames(length: int) -> int:
    frames = length // 320 + 1
    return -(-frames // 32) * 32


@pytest.fixture(scope="module")
def block2_export(random_weights, tmp_path_factory):
    """Quick-verified export with the optimised graph saved too."""
    root = tmp_path_factory.mktemp("onnx_block2")
    return export_onnx(
        random_weights, BLOCK2_MAP, root / "block2.onnx", sweep="quick", save_optimized=root / "block2.opt.onnx"
    )


def test_verified_export_is_published_with_its_report(block2_export):
    path, report_path = block2_export.path, block2_export.report_path
    assert path.name == "block2.onnx" and report_path.name == "block2.verify.json"
    assert not list(path.parent.glob("*.tmp-*")) and not list(path.parent.glob("*.failed*"))
    report = json.loads(report_path.read_text())
    assert report["status"] == "passed" and report["format_version"] == 1
    assert {(c["length"], c["batch"]) for c in report["cases"]} == {(n, b) for n in SWEEPS["quick"] for b in (1, 3)}
    onnx.checker.check_model(str(path))


def test_every_swept_length_has_its_own_padded_shape(block2_export):
    """Traced at 50 001 samples; 1025 ... 105 600 samples each give Tp/4 time steps, not the example's."""
    for case in block2_export.report["cases"]:
        expected = (case["batch"], 64, _padded_frames(case["length"]) // 4, 256)
        assert tuple(case["shape_got"]) == tuple(case["shape_ref"]) == expected
        assert case["max_abs"] <= 1e-5 + 1e-4 * case["scale"]


def test_axes_are_dynamic_and_named(block2_export):
    model = onnx.load(str(block2_export.path), load_external_data=False)
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "samples"] and model.graph.output[0].name == "features"
    assert model.opset_import[0].version >= 17


def test_metadata_props_record_weights_options_and_versions(block2_export, random_weights):
    model = onnx.load(str(block2_export.path), load_external_data=False)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["weights_sha256"] == random_weights.sha256 and meta["weights_random"] == "true"
    assert (meta["film"], meta["layer"], meta["pooling"], meta["pad_to_32"]) == ("none", "block2", "none", "true")
    assert (meta["sample_rate"], meta["n_fft"], meta["hop"]) == ("32000", "2048", "320")
    assert meta["condition_sha256"] == "" and meta["output_dim"] == "" and meta["precision"] == "fp32"
    assert meta["torch_version"] == torch.__version__ and meta["onnx_version"] == onnx.__version__
    assert meta["format_version"] == "1" and meta["package_version"]


def test_saved_optimized_graph_keeps_metadata_and_runs(block2_export, random_weights):
    from audiosep_kit.runtime.backends import make_backend

    optimized = block2_export.path.with_name("block2.opt.onnx")
    engine = make_backend("onnx", random_weights, BLOCK2_MAP, "cpu", model_path=optimized)
    assert engine.run(np.zeros((1, 1025), np.float32)).shape == (1, 64, 8, 256)


def test_export_traced_at_5_s_is_right_for_other_lengths(random_weights, tmp_path):
    """The trap of ENCODER_SPEC §6.1: a 5 s example must not fix the pad of shorter inputs."""
    from audiosep_kit.runtime.backends import make_backend

    result = export_onnx(random_weights, BLOCK2_MAP, tmp_path / "from5s.onnx", verify=False, example_shape=(1, 160_000))
    engine = make_backend("onnx", random_weights, BLOCK2_MAP, "cpu", model_path=result.path)
    reference = make_backend("eager", random_weights, BLOCK2_MAP, "cpu")
    rng = np.random.default_rng(3)
    for batch, length in [(1, 1025), (3, 32_000), (2, 50_001)]:
        x = (0.1 * rng.standard_normal((batch, length))).astype(np.float32)
        got, ref = engine.run(x), reference.run(x)
        assert got.shape == ref.shape == (batch, 64, _padded_frames(length) // 4, 256)
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5 * max(1.0, float(np.abs(ref).max())))


def test_failed_verification_is_not_left_as_good(random_weights, tmp_path, monkeypatch):
    import audiosep_kit.export._onnx as onnx_export

    monkeypatch.setattr(onnx_export, "tolerance_for", lambda precision: Tolerance(min_cosine=1.5))
    monkeypatch.setattr(onnx_export, "sweep_lengths", lambda sweep: (1025,))
    target = tmp_path / "enc.onnx"
    with pytest.raises(VerificationError, match=r"failed verification against eager.*enc\.failed\.onnx"):
        export_onnx(random_weights, EncoderConfig(layer="block1"), target, sweep="quick", batch_sizes=(1,))
    assert not target.exists() and (tmp_path / "enc.failed.onnx").is_file()
    assert json.loads((tmp_path / "enc.failed.verify.json").read_text())["status"] == "failed"
    assert not list(tmp_path.glob("*.tmp-*"))


def test_fp16_keeps_the_front_end_in_float32(random_weights, tmp_path):
    result = export_onnx(
        random_weights,
        EncoderConfig(layer="block2"),
        tmp_path / "half.onnx",
        precision="fp16",
        sweep="quick",
        batch_sizes=(1,),
    )
    assert result.report["status"] == "passed" and result.metadata["precision"] == "fp16"
    assert result.report["worst"]["min_cosine"] >= 0.999
    model = onnx.load(str(result.path))
    types = {init.name: init.data_type for init in model.graph.initializer}
    stft = [name for name in types if "stft" in name or "bn0" in name]
    assert stft and all(types[name] == onnx.TensorProto.FLOAT for name in stft)
    assert onnx.TensorProto.FLOAT16 in types.values()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"output": "model.pt"}, r"must end in \.onnx; got .*model\.pt \(set --output\)"),
        ({"opset": 16}, r"`opset` must be >= 17"),
        ({"sweep": "tiny"}, r"`sweep` must be one of .*got 'tiny'"),
        ({"precision": "int8"}, r"`precision` must be one of .*got 'int8'"),
    ],
)
def test_bad_arguments_are_refused(random_weights, tmp_path, kwargs, message):
    kwargs = {"output": "model.onnx", **kwargs}
    output = tmp_path / kwargs.pop("output")
    with pytest.raises(ConfigError, match=message):
        export_onnx(random_weights, EncoderConfig(layer="block1"), output, verify=False, **kwargs)
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_full_encoder_full_sweep(random_weights, tmp_path, precision):
    """1025 samples to 30 s, batch 1 and 3, the whole encoder (minutes on two cores)."""
    result = export_onnx(random_weights, EncoderConfig(), tmp_path / f"full_{precision}.onnx", precision=precision)
    report = result.report
    assert report["status"] == "passed" and len(report["cases"]) == 2 * len(SWEEPS["full"])
    assert all(tuple(c["shape_got"]) == (c["batch"], 384) for c in report["cases"])
