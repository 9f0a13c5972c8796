"""Artifact metadata: what is recorded, and the check that names every difference."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from audiosep_kit.errors import ArtifactMismatchError
from audiosep_kit.export._metadata import (
    IDENTITY_KEYS,
    build_metadata,
    check_metadata,
    identity,
    read_onnx_metadata,
    write_onnx_metadata,
)
from audiosep_kit.model._config import EncoderConfig

SHA = "ab" * 32
OTHER_SHA = "cd" * 32


class _Weights:
    sha256, source, is_random = SHA, "/models/audiosep.ckpt", False


def _meta(config: EncoderConfig | None = None) -> dict[str, str]:
    return build_metadata(_Weights(), config or EncoderConfig(), precision="fp32", exporter="test", opset=18)


def test_record_holds_identity_provenance_and_versions():
    condition = np.ones(512, np.float32) / np.sqrt(512)
    meta = _meta(EncoderConfig(film="query", condition=condition, layer="block6"))
    assert set(IDENTITY_KEYS) <= set(meta)
    assert meta["film"] == "query" and len(meta["condition_sha256"]) == 64 and meta["output_dim"] == "384"
    assert meta["weights_random"] == "false" and meta["weights_source"] == "/models/audiosep.ckpt"
    assert meta["opset"] == "18" and meta["format_version"] == "1" and meta["torch_version"]
    assert all(isinstance(v, str) for v in meta.values())


def test_matching_request_passes():
    check_metadata(_meta(), SHA, EncoderConfig(), artifact="m.onnx", precision="fp32")


def test_other_weights_are_named():
    with pytest.raises(
        ArtifactMismatchError,
        match=rf"m\.onnx was exported from other weights.*"
        rf"weights_sha256: artifact has '{SHA}', requested '{OTHER_SHA}'",
    ):
        check_metadata(_meta(), OTHER_SHA, EncoderConfig(), artifact="m.onnx")


def test_every_differing_option_is_listed():
    config = EncoderConfig(film="zero", pooling="max", pad_to_32=False)
    with pytest.raises(
        ArtifactMismatchError,
        match=r"film: artifact has 'none', requested 'zero'; pooling: .*'max'; "
        r"pad_to_32: artifact has 'true', requested 'false'",
    ):
        check_metadata(_meta(), SHA, config, artifact="m.onnx")


def test_other_condition_vector_is_refused():
    first = EncoderConfig(film="query", condition=np.ones(512, np.float32))
    second = EncoderConfig(film="query", condition=-np.ones(512, np.float32))
    with pytest.raises(
        ArtifactMismatchError, match=r"condition_sha256: artifact has '[0-9a-f]{64}', requested '[0-9a-f]{64}'"
    ):
        check_metadata(_meta(first), SHA, second, artifact="m.onnx")


def test_unknown_format_version_is_refused():
    meta = {**_meta(), "format_version": "2"}
    with pytest.raises(ArtifactMismatchError, match=r"format_version '2'; this audiosep-kit reads \[1\]"):
        check_metadata(meta, SHA, EncoderConfig(), artifact="m.onnx")


def test_foreign_artifact_is_refused():
    with pytest.raises(ArtifactMismatchError, match=r"carries no audiosep-kit metadata"):
        check_metadata({"producer": "someone"}, SHA, EncoderConfig(), artifact="m.onnx")


def test_identity_strings():
    assert identity(SHA, EncoderConfig(pad_to_32=False))["pad_to_32"] == "false"


def test_onnx_roundtrip_replaces_keys(tmp_path):
    node = helper.make_node("Identity", ["x"], ["y"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    helper.set_model_props(model, {"keep": "me", "film": "old"})
    write_onnx_metadata(model, _meta())
    path = tmp_path / "tiny.onnx"
    onnx.save(model, str(path))
    read = read_onnx_metadata(path)
    assert read["keep"] == "me" and read["film"] == "none" and read["weights_sha256"] == SHA


def test_missing_or_broken_model_names_the_path(tmp_path):
    with pytest.raises(ArtifactMismatchError, match=r"ONNX model not found: .*nothing\.onnx"):
        read_onnx_metadata(tmp_path / "nothing.onnx")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\xff not protobuf")
    with pytest.raises(ArtifactMismatchError, match=r"broken\.onnx is not a readable ONNX model"):
        read_onnx_metadata(broken)
