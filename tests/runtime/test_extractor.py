"""FeatureExtractor: shapes, batching that never changes a clip's features, resampling, describe()."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch

from audiosep_kit.errors import AudioDecodeError, BackendUnavailableError, ConfigError
from audiosep_kit.model._config import SAMPLE_RATE
from audiosep_kit.runtime._extractor import FeatureExtractor
from audiosep_kit.runtime.backends import backend_names

#: Clip lengths at 32 kHz, repeated so that batches of 3 and 8 really hold several clips. "short" clips
#: are those for which torch would pick another conv kernel for a lone clip than for a batch: the
#: extractor must hide that (run_grouped never runs a short clip alone).
LENGTHS = {
    "short": (1025, 4000, 1025, 7001, 4000, 1025, 12000),
    "long": (32000, 32000, 36000, 32000),
}
#: (kind, batch_size): embed_waves takes the batch sizes 3 and 8, embed_files 1 and 8 (each
#: compared with the same solo runs, so together they cover 1 vs 3 vs 8 for both APIs' paths).
WAVE_CASES = [
    pytest.param("long", 3, id="long-3"),
    pytest.param("long", 8, id="long-8"),
    pytest.param("short", 3, id="short-3"),
    pytest.param("short", 8, id="short-8"),
]
FILE_CASES = [
    pytest.param("long", 1, id="long-1"),
    pytest.param("long", 8, id="long-8"),
    pytest.param("short", 1, id="short-1"),
    pytest.param("short", 8, id="short-8"),
]


@pytest.fixture(scope="module")
def golden_extractor(golden_checkpoint) -> FeatureExtractor:
    """Defaults (film none, center, mean pooling) on the golden checkpoint."""
    return FeatureExtractor.from_checkpoint(golden_checkpoint)


@pytest.fixture(scope="module")
def extractor() -> FeatureExtractor:
    """Defaults on deterministic random weights: for properties that hold whatever the weights."""
    return FeatureExtractor.from_checkpoint("random:0")


@pytest.fixture(scope="module")
def clips() -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(11)
    return {kind: [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in ns] for kind, ns in LENGTHS.items()}


@pytest.fixture(scope="module")
def solo_rows(extractor, clips) -> dict[str, list[np.ndarray]]:
    """Each clip run alone (a batch of one)."""
    return {kind: [extractor.embed_waves([clip])[0] for clip in waves] for kind, waves in clips.items()}


@pytest.fixture(scope="module")
def clip_files(clips, tmp_path_factory) -> dict[str, list]:
    """The clips as float WAVs at 32 kHz (decoded bit-exactly)."""
    root = tmp_path_factory.mktemp("clips")
    out = {}
    for kind, waves in clips.items():
        out[kind] = []
        for i, wave in enumerate(waves):
            out[kind].append(root / f"{kind}{i}.wav")
            sf.write(out[kind][-1], wave, SAMPLE_RATE, subtype="FLOAT")
    return out


def _with_batch_size(extractor: FeatureExtractor, batch_size: int) -> FeatureExtractor:
    return FeatureExtractor(extractor.backend, extractor.weights, extractor.config, batch_size=batch_size)


def test_embed_one_waveform(golden_extractor, golden_inputs, golden_outputs):
    """embed(1-D) -> (384,) float32, and it is the golden ``a__none__mean`` (allclose 1e-4/1e-5)."""
    out = golden_extractor.embed(golden_inputs["a"], SAMPLE_RATE)
    assert out.shape == (384,) and out.dtype == np.float32
    np.testing.assert_allclose(out, golden_outputs["a__none__mean"][0], rtol=1e-4, atol=1e-5)


def test_embed_a_batch(golden_extractor, golden_inputs, golden_outputs):
    """embed(2-D) -> (B, 384); rows equal the golden ``batch2__none__mean``."""
    out = golden_extractor.embed(golden_inputs["batch2"], SAMPLE_RATE)
    assert out.shape == (2, 384) and out.dtype == np.float32
    np.testing.assert_allclose(out, golden_outputs["batch2__none__mean"], rtol=1e-4, atol=1e-5)


def test_embed_rejects_other_ranks(extractor):
    """A 3-D array is refused with the accepted shapes."""
    message = "expected a 1-D waveform or a 2-D (batch, samples) array; got shape (1, 1, 2000)"
    with pytest.raises(AudioDecodeError, match=re.escape(message)):
        extractor.embed(np.zeros((1, 1, 2000), dtype=np.float32), SAMPLE_RATE)


def test_embed_names_the_bad_row(extractor):
    """In a 2-D batch, a row with NaN is refused by its index."""
    batch = np.zeros((3, 2000), dtype=np.float32)
    batch[2, 7] = np.nan
    with pytest.raises(AudioDecodeError, match=r"<row 2>: the audio holds 1 NaN"):
        extractor.embed(batch, SAMPLE_RATE)


def _assert_rows_equal(rows, solo, kind: str, batch_size: int) -> None:
    assert len(rows) == len(solo)
    for i, (row, ref) in enumerate(zip(rows, solo, strict=False)):
        assert np.array_equal(row, ref), (
            f"{kind} clip {i} (length {LENGTHS[kind][i]}) changed with batch_size={batch_size}"
        )


@pytest.mark.parametrize(("kind", "batch_size"), WAVE_CASES)
def test_batching_never_changes_features(kind, batch_size, extractor, clips, solo_rows):
    """embed_waves with batch_size 3 and 8 over clips of mixed lengths: each row equals the clip's solo run."""
    rows = _with_batch_size(extractor, batch_size).embed_waves(clips[kind])
    _assert_rows_equal(rows, solo_rows[kind], kind, batch_size)


@pytest.mark.parametrize(("kind", "batch_size"), FILE_CASES)
def test_embed_files_matches_solo_runs(kind, batch_size, extractor, clip_files, solo_rows):
    """embed_files over float WAVs of mixed lengths -> (N, 384), rows np.array_equal to the solo runs."""
    out = _with_batch_size(extractor, batch_size).embed_files(clip_files[kind])
    assert out.shape == (len(clip_files[kind]), 384) and out.dtype == np.float32
    _assert_rows_equal(list(out), solo_rows[kind], kind, batch_size)


def test_batching_never_changes_features_without_pad(clips):
    """pad_to_32=False (the seed's variant, where torch's lone-clip kernel reaches ~48000 samples): lone
    short clips and 1.3 s clips give np.array_equal rows with batch sizes 1, 3 and 8."""
    nopad = FeatureExtractor.from_checkpoint("random:0", pad_to_32=False)
    rng = np.random.default_rng(5)
    lengths = (9920, 12000, 12000, 30000, 41000, 41000, 47000)
    waves = [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in lengths]
    runs = [_with_batch_size(nopad, size).embed_waves(waves) for size in (1, 3, 8)]
    for i in range(len(waves)):
        assert np.array_equal(runs[0][i], runs[1][i]) and np.array_equal(runs[0][i], runs[2][i]), f"clip {i}"


def test_no_pad_variant_refuses_clips_its_pools_cannot_take():
    """Without pad_to_32 a 1025-sample clip has 4 frames, too few for 5 time-halving pools: a clear
    error (not a torch size error) says how many samples the tap needs and what to do instead."""
    nopad = FeatureExtractor.from_checkpoint("random:0", pad_to_32=False)
    with pytest.raises(AudioDecodeError, match=r"needs >= 9920 .*Use pad_to_32=True"):
        nopad.embed(np.zeros(5000, dtype=np.float32) + 0.01, SAMPLE_RATE)
    assert nopad.embed(np.full(9920, 0.01, dtype=np.float32), SAMPLE_RATE).shape == (384,)


def test_embed_files_names_a_bad_file(extractor, tmp_path):
    """A file that cannot be decoded stops embed_files with an AudioDecodeError naming it."""
    good = tmp_path / "good.wav"
    sf.write(good, np.zeros(4000, dtype=np.float32), SAMPLE_RATE)
    bad = tmp_path / "bad_clip.wav"
    bad.write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(AudioDecodeError, match=r"bad_clip\.wav: cannot decode audio"):
        extractor.embed_files([good, bad])


def test_embed_at_16k_equals_soxr_resampled_32k(extractor, clips):
    """embed(x, 16000) is np.array_equal to embed(soxr HQ resample of x to 32 kHz)."""
    wave16 = clips["short"][6]
    wave32 = soxr.resample(wave16, 16000, SAMPLE_RATE, quality="HQ").astype(np.float32)
    assert np.array_equal(extractor.embed(wave16, 16000), extractor.embed(wave32, SAMPLE_RATE))


def test_short_clip_is_padded_not_refused(extractor):
    """A 500-sample 16 kHz clip is padded to 1025 samples at 32 kHz and embedded."""
    out = extractor.embed(np.full(500, 0.1, dtype=np.float32), 16000)
    assert out.shape == (384,) and np.all(np.isfinite(out))


def test_frames_pooling_returns_a_list(tmp_path):
    """pooling='frames' has a per-file length: embed_files returns a list of (T', 384) arrays."""
    extractor = FeatureExtractor.from_checkpoint("random:0", pooling="frames")
    paths = [tmp_path / "one.wav", tmp_path / "two.wav"]
    sf.write(paths[0], np.zeros(4000, dtype=np.float32), SAMPLE_RATE)
    sf.write(paths[1], np.zeros(40000, dtype=np.float32), SAMPLE_RATE)
    out = extractor.embed_files(paths)
    assert isinstance(out, list) and [a.shape for a in out] == [(1, 384), (4, 384)]


def test_describe(golden_extractor, golden_weights):
    """describe(): weights sha256 and source, backend 'eager', executed device, encoder options, versions; JSON-safe."""
    info = json.loads(json.dumps(golden_extractor.describe()))
    assert info["weights"] == golden_weights.describe()
    assert info["weights"]["random_weights"] is False
    assert info["weights"]["sha256"] == golden_weights.sha256
    assert info["backend"] == "eager" and info["precision"] == "fp32"
    assert info["executed"]["device"] == "cpu" and info["executed"]["torch_threads"] >= 1
    assert info["encoder"] == {
        "film": "none",
        "layer": "center",
        "pooling": "mean",
        "pad_to_32": True,
        "condition_sha256": None,
        "output_dim": 384,
    }
    assert info["sample_rate"] == SAMPLE_RATE and info["resampler"] == "soxr-HQ"
    assert info["batch_size"] == 8
    assert (
        info["versions"]["torch"] == torch.__version__ and "numpy" in info["versions"] and "python" in info["versions"]
    )


def test_query_mode_from_a_condition_file(golden_dir, golden_inputs, golden_outputs):
    """film='query' with condition=<.npy path> reproduces ``a__query__mean`` and reports the condition's checksum."""
    extractor = FeatureExtractor.from_checkpoint(
        golden_dir / "checkpoint.ckpt", film="query", condition=golden_dir / "condition.npy"
    )
    np.testing.assert_allclose(
        extractor.embed(golden_inputs["a"], SAMPLE_RATE), golden_outputs["a__query__mean"][0], rtol=1e-4, atol=1e-5
    )
    assert len(extractor.describe()["encoder"]["condition_sha256"]) == 64


def test_missing_condition_file(tmp_path):
    """A condition path that does not exist is a ConfigError naming it and the flag."""
    path = tmp_path / "query.npy"
    with pytest.raises(ConfigError, match=r"condition file not found: .*query\.npy \(--condition"):
        FeatureExtractor.from_checkpoint("random:0", film="query", condition=path)


def test_random_weights_are_labelled(extractor):
    """random:0 weights say so in describe() (source 'random:0', random_weights True)."""
    info = extractor.describe()
    assert info["weights"]["random_weights"] is True and info["weights"]["source"] == "random:0"


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here; the refusal cannot be exercised")
def test_cuda_without_cuda_is_refused():
    """device='cuda' on a machine without CUDA raises BackendUnavailableError instead of running on CPU."""
    with pytest.raises(
        BackendUnavailableError, match=r"device 'cuda' was requested but torch sees no CUDA device.*--device cpu"
    ):
        FeatureExtractor.from_checkpoint("random:0", device="cuda")


def test_unknown_device():
    """An unknown device name is a ConfigError listing the valid ones."""
    with pytest.raises(ConfigError, match=r"`device` must be one of \{'cpu', 'cuda', 'cuda:N'\}; got 'tpu'"):
        FeatureExtractor.from_checkpoint("random:0", device="tpu")


def test_unknown_backend_lists_valid_names():
    """An unknown backend is a ConfigError listing every registered backend."""
    names = backend_names()
    assert "eager" in names
    listed = re.escape("{" + ", ".join(repr(n) for n in names) + "}")
    with pytest.raises(ConfigError, match=rf"`backend` must be one of {listed}; got 'ort'"):
        FeatureExtractor.from_checkpoint("random:0", backend="ort")


@pytest.mark.parametrize("batch_size", [0, -1, 2.0])
def test_bad_batch_size(batch_size, extractor):
    """batch_size must be a positive int."""
    with pytest.raises(ConfigError, match=r"`batch_size` must be a positive integer; got " + str(batch_size)):
        _with_batch_size(extractor, batch_size)


def test_bad_encoder_option_fails_before_loading_weights(tmp_path):
    """Options are validated first: a bad pooling name is reported even when the checkpoint is missing."""
    with pytest.raises(ConfigError, match=r"`pooling` must be one of .*got 'avg'"):
        FeatureExtractor.from_checkpoint(tmp_path / "missing.ckpt", pooling="avg")


# --- API traps: refused or answered with the right shape, never a silent misuse ---------------------------


def test_embed_requires_the_sample_rate(extractor):
    """No default rate: a 16 kHz clip can no longer be embedded as if it were 32 kHz."""
    with pytest.raises(TypeError, match=r"embed\(\) missing 1 required positional argument: 'sample_rate'"):
        extractor.embed(np.zeros(4000, np.float32))  # type: ignore[call-arg]
    wave = np.full(4000, 0.1, np.float32)
    assert np.array_equal(extractor.embed(wave, sample_rate=SAMPLE_RATE), extractor.embed(wave, SAMPLE_RATE))


def test_embed_refuses_frames_channels(extractor):
    """soundfile.read's (32000, 2) stereo clip would run as 32000 2-sample clips: refused, with the fix."""
    stereo = np.zeros((32000, 2), np.float32)
    with pytest.raises(
        AudioDecodeError, match=re.escape("pass `x.T` or `x.mean(axis=1)`; `embed` takes (batch, samples)")
    ):
        extractor.embed(stereo, SAMPLE_RATE)
    assert extractor.embed(stereo.T, SAMPLE_RATE).shape == (2, 384)
    assert extractor.embed(stereo.mean(axis=1), SAMPLE_RATE).shape == (384,)


def test_embed_refuses_ragged_rows(extractor):
    """A list of waveforms of different lengths: a clear AudioDecodeError naming the alternatives."""
    waves = [np.zeros(4000, np.float32), np.zeros(5000, np.float32)]
    with pytest.raises(
        AudioDecodeError, match=r"got 2 rows of lengths 4000, 5000\. Embed them one by one.*embed_waves"
    ):
        extractor.embed(waves, SAMPLE_RATE)


def test_empty_inputs_keep_the_feature_shape(extractor, tmp_path):
    """An empty (0, L) batch gives (0, 384), and embed_files([]) a (0, 384) array, not a list."""
    empty = extractor.embed(np.zeros((0, 4000), np.float32), 16000)
    assert empty.shape == (0, 384) and empty.dtype == np.float32
    files = extractor.embed_files([])
    assert isinstance(files, np.ndarray) and files.shape == (0, 384) and files.dtype == np.float32


def test_empty_batch_under_frames_pooling_has_the_row_shape():
    """pooling='frames': an empty batch of length-L rows is (0, T', 384), T' as a real row of L would give."""
    frames = FeatureExtractor.from_checkpoint("random:0", pooling="frames")
    row = frames.embed(np.zeros(40000, np.float32), SAMPLE_RATE)
    assert frames.embed(np.zeros((0, 40000), np.float32), SAMPLE_RATE).shape == (0, *row.shape)
    assert frames.embed_files([]) == []
