"""The aoti backend: a .pt2 package that runs without the model code, checked against its request."""

from __future__ import annotations

import numpy as np
import pytest

from audiosep_kit.errors import ArtifactMismatchError


@pytest.fixture(scope="module")
def block1_package(golden_aoti):
    """A small package (layer block1, pooling none) so the C++ compile stays short."""
    return golden_aoti("none", "none", "block1")


def test_block1_package_matches_golden_any_length_and_batch(
    block1_package, golden_backend, golden_inputs, golden_taps, golden_check
):
    engine = golden_backend("aoti", "none", "none", "block1")
    for clip in ("a", "c", "d"):  # traced at 50 001 samples, run at 32 000, 50 001 and 1025
        golden_check(
            engine.run(golden_inputs[clip][None]), golden_taps[f"{clip}__none__block1"], f"aoti:{clip}", "aoti"
        )
    batch = np.stack([golden_inputs["a"]] * 3)
    golden_check(engine.run(batch), np.concatenate([golden_taps["a__none__block1"]] * 3), "aoti:batch3", "aoti")


def test_package_metadata_records_the_request(block1_package, golden_weights):
    from audiosep_kit.export import read_package_metadata

    meta = read_package_metadata(block1_package)
    assert meta["weights_sha256"] == golden_weights.sha256
    assert (meta["film"], meta["layer"], meta["pooling"], meta["device"]) == ("none", "block1", "none", "cpu")
    assert meta["format_version"] == "1" and meta["weights_random"] == "false"


def test_package_for_other_weights_is_refused(block1_package):
    from audiosep_kit.model._checkpoint import load_weights
    from audiosep_kit.model._config import EncoderConfig
    from audiosep_kit.runtime.backends import make_backend

    config = EncoderConfig(layer="block1", pooling="none")
    with pytest.raises(ArtifactMismatchError, match=r"weights_sha256: artifact has '[0-9a-f]{64}', requested"):
        make_backend("aoti", load_weights("random:1"), config, "cpu", model_path=block1_package)


def test_package_for_other_options_is_refused(block1_package, golden_weights, golden_config):
    from audiosep_kit.runtime.backends import make_backend

    with pytest.raises(ArtifactMismatchError, match=r"film: artifact has 'none', requested 'zero'.*layer"):
        make_backend("aoti", golden_weights, golden_config("zero", "mean", "center"), "cpu", model_path=block1_package)


def test_missing_package_names_the_path(tmp_path, golden_weights, golden_config):
    from audiosep_kit.runtime.backends import make_backend

    missing = tmp_path / "absent.pt2"
    with pytest.raises(ArtifactMismatchError, match=r"package not found: .*absent\.pt2"):
        make_backend("aoti", golden_weights, golden_config(), "cpu", model_path=missing)


@pytest.mark.slow
def test_package_whose_metadata_claims_other_weights_is_refused(random_weights, tmp_path, inductor_cache_dir):
    """Compiled from random:0, metadata claiming random:1 (as a rewritten package would): the metadata
    check passes, the load-time probe refuses it; the same package loads for the weights it holds."""
    import torch._inductor

    from audiosep_kit.export._metadata import build_metadata
    from audiosep_kit.export._trace import EXAMPLE_SHAPE, trace_encoder
    from audiosep_kit.model import EncoderConfig, build_encoder, load_weights
    from audiosep_kit.runtime.backends import make_backend

    config, other = EncoderConfig(layer="block1", pooling="mean"), load_weights("random:1")
    claim = build_metadata(other, config, precision="fp32", exporter="test", device="cpu", example_shape=EXAMPLE_SHAPE)
    liar = tmp_path / "liar.pt2"
    program = trace_encoder(build_encoder(random_weights, config))
    torch._inductor.aoti_compile_and_package(
        program, package_path=str(liar), inductor_configs={"aot_inductor.metadata": claim}
    )
    with pytest.raises(ArtifactMismatchError, match=r"liar\.pt2 does not compute what its metadata claims.*aoti"):
        make_backend("aoti", other, config, "cpu", model_path=liar)
    truthful_claim = {**claim, "weights_sha256": random_weights.sha256}
    honest = tmp_path / "honest.pt2"
    torch._inductor.aoti_compile_and_package(
        program, package_path=str(honest), inductor_configs={"aot_inductor.metadata": truthful_claim}
    )
    engine = make_backend("aoti", random_weights, config, "cpu", model_path=honest)
    assert engine.executed()["load_check"]["passed"] is True
