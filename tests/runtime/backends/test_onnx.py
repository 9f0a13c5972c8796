"""The onnx backend: explicit providers, no silent CPU fallback, refusal of mismatched models, cache."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from audiosep_kit._paths import CACHE_ENV, cache_root
from audiosep_kit.errors import ArtifactMismatchError, BackendUnavailableError, ConfigError
from audiosep_kit.runtime.backends import make_backend
from audiosep_kit.runtime.backends._onnx import providers_for


@pytest.fixture(scope="module")
def none_mean_model(golden_onnx):
    return golden_onnx("none", "mean")


def test_executed_reports_providers_and_threads(none_mean_model, golden_weights, golden_config):
    engine = make_backend(
        "onnx",
        golden_weights,
        golden_config(),
        "cpu",
        model_path=none_mean_model,
        intra_op_threads=1,
        graph_optimization="extended",
    )
    info = engine.executed()
    assert info["providers"] == ["CPUExecutionProvider"]
    assert (info["intra_op_threads"], info["inter_op_threads"], info["graph_optimization"]) == (1, 1, "extended")
    assert engine.precision == "fp32" and info["io_binding"] is False


def test_cuda_without_a_working_provider_fails_clearly(none_mean_model, golden_weights, golden_config):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present; the failure path needs a machine without one")
    with pytest.raises(
        BackendUnavailableError,
        match=r"needs CUDAExecutionProvider.*activated \['CPUExecutionProvider'\]|has no \['CUDAExecutionProvider'\]",
    ):
        make_backend("onnx", golden_weights, golden_config(), "cuda", model_path=none_mean_model)


def test_tensorrt_on_cpu_is_a_config_error(none_mean_model, golden_weights, golden_config):
    with pytest.raises(ConfigError, match=r"tensorrt=True needs device='cuda'"):
        make_backend("onnx", golden_weights, golden_config(), "cpu", model_path=none_mean_model, tensorrt=True)


def test_io_binding_on_cpu_is_refused(none_mean_model, golden_weights, golden_config):
    with pytest.raises(ConfigError, match=r"io_binding=True binds outputs on the GPU"):
        make_backend("onnx", golden_weights, golden_config(), "cpu", model_path=none_mean_model, io_binding=True)


def test_model_of_other_weights_is_refused(none_mean_model, golden_config):
    from audiosep_kit.model._checkpoint import load_weights

    with pytest.raises(
        ArtifactMismatchError, match=r"weights_sha256: artifact has '[0-9a-f]{64}', requested '[0-9a-f]{64}'"
    ):
        make_backend("onnx", load_weights("random:1"), golden_config(), "cpu", model_path=none_mean_model)


def test_model_of_other_film_mode_is_refused(none_mean_model, golden_weights, golden_config):
    with pytest.raises(ArtifactMismatchError, match=r"film: artifact has 'none', requested 'query'; condition_sha256"):
        make_backend("onnx", golden_weights, golden_config("query"), "cpu", model_path=none_mean_model)


def test_model_of_other_precision_is_refused(none_mean_model, golden_weights, golden_config):
    with pytest.raises(ArtifactMismatchError, match=r"precision: artifact has 'fp32', requested 'fp16'"):
        make_backend("onnx", golden_weights, golden_config(), "cpu", model_path=none_mean_model, precision="fp16")


def test_short_input_is_refused_before_the_graph(none_mean_model, golden_weights, golden_config):
    engine = make_backend("onnx", golden_weights, golden_config(), "cpu", model_path=none_mean_model)
    with pytest.raises(ConfigError, match=r"samples >= 1025"):
        engine.run(np.zeros((1, 1024), np.float32))


def test_cache_exports_once_then_reuses(none_mean_model, golden_weights, golden_config, tmp_path, monkeypatch):
    """Without model_path the model comes from $AUDIOSEP_CACHE/onnx/<key>.onnx (export stubbed: copy)."""
    import audiosep_kit.export._artifacts as artifacts

    calls = []

    def fake_export(weights, config, path, **kwargs):
        calls.append(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(none_mean_model, path)

    monkeypatch.setattr(artifacts, "export_onnx", fake_export)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    first = make_backend("onnx", golden_weights, golden_config(), "cpu")
    second = make_backend("onnx", golden_weights, golden_config(), "cpu")
    assert len(calls) == 1 and first.model_path == second.model_path == calls[0]
    assert first.model_path.parent == cache_root() / "onnx"
    with pytest.raises(ArtifactMismatchError, match=r"pooling: artifact has 'mean', requested 'max'"):
        make_backend("onnx", golden_weights, golden_config(pooling="max"), "cpu", model_path=first.model_path)


def test_providers_for_cuda_orders_tensorrt_cuda_cpu():
    names = [name for name, _ in providers_for("cuda:1", tensorrt=True)]
    assert names == ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    cuda = dict(providers_for("cuda:1")[0][1])
    assert cuda == {"device_id": "1", "use_tf32": "0", "cudnn_conv_algo_search": "EXHAUSTIVE", "prefer_nhwc": "0"}


def test_unknown_graph_optimization_is_refused(none_mean_model, golden_weights, golden_config):
    with pytest.raises(ConfigError, match=r"`graph_optimization` must be one of .*got 'max'"):
        make_backend(
            "onnx", golden_weights, golden_config(), "cpu", model_path=none_mean_model, graph_optimization="max"
        )


@pytest.mark.cuda
def test_cuda_provider_matches_golden(
    none_mean_model, golden_weights, golden_config, golden_inputs, golden_reference, golden_check
):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: torch.cuda.is_available() is False")
    engine = make_backend("onnx", golden_weights, golden_config(), "cuda", model_path=none_mean_model)
    assert engine.executed()["providers"][0] == "CUDAExecutionProvider"
    for clip in ("a", "c", "d"):
        golden_check(
            engine.run(golden_inputs[clip][None]),
            golden_reference(clip, "none", "mean"),
            f"onnx-cuda:{clip}",
            "onnx-cuda",
        )


# --- identity checked on the numbers, not only on the metadata ---------------------------------------

SMALL_CONFIG = {"layer": "block1", "pooling": "mean"}  # a small graph: seconds to export and to probe


@pytest.fixture(scope="module")
def random0_model(random_weights, tmp_path_factory):
    """An .onnx exported from random:0 weights (unverified: the probe is what is under test)."""
    from audiosep_kit.export import export_onnx
    from audiosep_kit.model import EncoderConfig

    target = tmp_path_factory.mktemp("onnx_random0") / "random0.onnx"
    return export_onnx(random_weights, EncoderConfig(**SMALL_CONFIG), target, verify=False).path


def _claiming(model_path, target, weights):
    """A copy of ``model_path`` whose metadata_props claim ``weights`` (what an edit can do)."""
    import onnx

    from audiosep_kit.export._metadata import write_onnx_metadata

    model = onnx.load(str(model_path))
    write_onnx_metadata(model, {"weights_sha256": weights.sha256, "weights_source": weights.source})
    onnx.save(model, str(target))
    return target


def test_correct_model_loads_and_reports_its_probe(random0_model, random_weights):
    from audiosep_kit.model import EncoderConfig

    engine = make_backend("onnx", random_weights, EncoderConfig(**SMALL_CONFIG), "cpu", model_path=random0_model)
    check = engine.executed()["load_check"]
    assert check["passed"] is True and check["max_rel"] < 1e-4


def test_metadata_edited_to_claim_other_weights_is_refused(random0_model, tmp_path):
    """random:0 weights inside, metadata claiming random:1: the metadata check passes, the probe does not."""
    from audiosep_kit.export import read_onnx_metadata
    from audiosep_kit.model import EncoderConfig
    from audiosep_kit.model._checkpoint import load_weights

    other = load_weights("random:1")
    liar = _claiming(random0_model, tmp_path / "liar.onnx", other)
    assert read_onnx_metadata(liar)["weights_sha256"] == other.sha256
    pattern = (
        r"liar\.onnx does not compute what its metadata claims: .*max abs difference .*min cosine .*"
        r"random:1, sha256 .*Re-export it .*audiosep-export onnx"
    )
    with pytest.raises(ArtifactMismatchError, match=pattern):
        make_backend("onnx", other, EncoderConfig(**SMALL_CONFIG), "cpu", model_path=liar)
