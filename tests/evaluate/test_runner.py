"""Runner: task → features → protocol → report, with precomputed and (faked) extracted features."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from audiosep_kit.errors import ArtifactMismatchError, ConfigError, StoreError
from audiosep_kit.evaluate._protocols import EvalOptions
from audiosep_kit.evaluate._runner import (
    ExtractionConfig,
    RunConfig,
    evaluate_extracted,
    evaluate_features,
    evaluate_precomputed,
)

FAST = EvalOptions(max_epochs=20, patience=5, batch_size=32)


def _class_features(labels, dim: int = 8, seed: int = 0) -> np.ndarray:
    """Features where class c shifts dimension c mod dim: learnable by every head."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(len(labels), dim)).astype(np.float32)
    X[np.arange(len(labels)), np.asarray(labels) % dim] += 4.0
    return X


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"heads": ("svm",)}, "`head` must be one of {'linear', 'mlp3', 'logreg'}; got 'svm'"),
        ({"heads": ()}, "at least one head"),
        ({"seeds": ()}, "`seeds` must be a non-empty tuple"),
        ({"protocol": "random"}, "`protocol` must be one of"),
    ],
)
def test_run_config_validates(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig(**kwargs)


def test_evaluate_features_writes_the_run_folder(toy, fold_task, tmp_path):
    X, y = toy.blobs(n_per_class=15, shift=3.0)
    config = RunConfig(heads=("logreg",), seeds=(0,), options=FAST)
    evaluation = evaluate_features(
        X, toy.fold_examples(y), fold_task, config, provenance={"source": "test"}, out_dir=tmp_path / "run"
    )
    assert {"json", "csv", "markdown", "confusion_logreg", "embedding_map"} <= set(evaluation.paths)
    assert evaluation.paths["embedding_map"] == tmp_path / "run" / "embedding_tsne.png"
    data = json.loads((tmp_path / "run" / "results.json").read_text())
    assert data["heads"]["logreg"]["accuracy_mean"] > 0.8 and data["heads"]["logreg"]["n_runs"] == 5
    assert data["provenance"] == {"source": "test"}
    assert data["floor"]["majority"]["n_runs"] == 5 and data["floor"]["majority"]["accuracy_mean"] < 0.5


def test_embedding_map_can_be_skipped(toy, split_task, tmp_path):
    """RunConfig(embedding_map=False): the run folder has no map (and the run spends no time on one)."""
    X, y = toy.blobs(n_per_class=10, shift=3.0)
    config = RunConfig(heads=("logreg",), seeds=(0,), options=FAST, embedding_map=False)
    evaluation = evaluate_features(
        X, toy.split_examples(y), split_task, config, provenance={"source": "test"}, out_dir=tmp_path / "run"
    )
    assert "embedding_map" not in evaluation.paths and not list((tmp_path / "run").glob("embedding_*.png"))


def _save_features(path: Path, X: np.ndarray, labels) -> Path:
    torch.save({"features": torch.from_numpy(X), "labels": torch.as_tensor(np.asarray(labels))}, path)
    return path


def test_precomputed_features_are_aligned_and_evaluated(esc50_root, tmp_path):
    labels = np.tile(np.arange(50), 5)  # the synthetic esc50.csv: folds 1..5 x targets 0..49
    path = _save_features(tmp_path / "f.pt", _class_features(labels, dim=50), labels)
    config = RunConfig(heads=("logreg",), seeds=(0,), options=FAST)
    evaluation = evaluate_precomputed(path, "esc50", config, data_root=esc50_root, out_dir=tmp_path / "run")
    report = evaluation.report
    assert report["task"]["name"] == "esc50" and report["protocol"]["name"] == "evar"
    assert report["provenance"]["backend"] == "precomputed"
    assert report["provenance"]["features_file"]["sha256"]
    assert report["provenance"]["weights"]["sha256"] is None
    assert report["heads"]["logreg"]["accuracy_mean"] > 0.5  # chance is 0.02
    assert report["heads"]["logreg"]["device"] == "cpu" and report["device_requested"] == "cpu"


def test_precomputed_features_with_only_cpu_heads_refuse_another_device(esc50_root, tmp_path):
    """Nothing would run on cuda (no extraction, logreg is scikit-learn): refused, not recorded as used."""
    labels = np.tile(np.arange(50), 5)
    path = _save_features(tmp_path / "f.pt", _class_features(labels, dim=50), labels)
    config = RunConfig(heads=("logreg",), options=EvalOptions(device="cuda"))
    with pytest.raises(
        ConfigError, match=r"--device cuda is used by no part of this run: .*\['logreg'\] run on the CPU"
    ):
        evaluate_precomputed(path, "esc50", config, data_root=esc50_root)


def test_precomputed_features_with_wrong_labels_are_refused(esc50_root, tmp_path):
    labels = np.tile(np.arange(50), 5)
    path = _save_features(tmp_path / "f.pt", _class_features(labels), np.roll(labels, 1))
    with pytest.raises(ArtifactMismatchError, match="labels disagree with the esc50 metadata in 250 of 250"):
        evaluate_precomputed(path, "esc50", RunConfig(heads=("logreg",)), data_root=esc50_root)


class _Extractor:
    def describe(self) -> dict:
        return {
            "weights": {"sha256": "f" * 64, "source": "random:0", "random_weights": True},
            "backend": "eager", "precision": "fp32", "executed": {"device": "cpu"},
            "encoder": {"film": "none", "layer": "center", "pooling": "mean", "pad_to_32": True},
            "resampler": "soxr-HQ", "versions": {},
        }  # fmt: skip


class _FakeExtraction:
    """An injected ``extract``: class-dependent features from each source's label (ESC-50 file names end
    in ``-<target>``), counted calls."""

    def __init__(self, fail_row: int | None = None):
        self.calls = 0
        self.fail_row = fail_row
        self.stores: dict = {}

    def extract(self, extractor, sources, out_dir):
        self.calls += 1
        status = ["error" if i == self.fail_row else "ok" for i in range(len(sources))]
        index = pd.DataFrame(
            {
                "path": [str(s.path) for s in sources],
                "status": status,
                "error": ["decode failed" if s == "error" else "" for s in status],
            }
        )
        labels = [int(s.path.stem.rsplit("-", 1)[1]) for s in sources]
        store = SimpleNamespace(features=_class_features(labels, dim=50), index=index, manifest={})
        self.stores[out_dir] = store
        out_dir.mkdir(parents=True, exist_ok=True)
        return store


@pytest.fixture
def esc50_with_audio(esc50_root):
    """The synthetic esc50 root with (empty) audio files, so the reader finds every clip."""
    audio = esc50_root / "esc50" / "audio"
    audio.mkdir()
    for name in pd.read_csv(esc50_root / "esc50" / "meta" / "esc50.csv")["filename"]:
        (audio / name).touch()
    return esc50_root


def test_extracted_features_are_cached_between_evaluations(esc50_with_audio, tmp_path):
    fake = _FakeExtraction()
    kw = dict(
        data_root=esc50_with_audio,
        cache_dir=tmp_path / "cache",
        make_extractor=lambda cfg: _Extractor(),
        extract=fake.extract,
        open_store=fake.stores.__getitem__,
    )
    config = RunConfig(heads=("logreg",), seeds=(0,), options=FAST)
    first = evaluate_extracted("esc50", ExtractionConfig(checkpoint="random:0"), config, **kw)
    second = evaluate_extracted("esc50", ExtractionConfig(checkpoint="random:0"), config, **kw)
    assert fake.calls == 1
    assert first.report["provenance"]["cache"]["extracted_now"] is True
    assert second.report["provenance"]["cache"]["extracted_now"] is False
    assert second.report["provenance"]["weights"]["random_weights"] is True
    assert first.report["heads"]["logreg"]["accuracy_mean"] == second.report["heads"]["logreg"]["accuracy_mean"]


def test_provenance_executed_is_that_of_the_extraction_that_wrote_the_features(esc50_with_audio, tmp_path):
    """On a cache hit the features were made earlier, maybe on another device: the store's manifest says."""
    fake = _FakeExtraction()

    def extract(extractor, sources, out_dir):
        store = fake.extract(extractor, sources, out_dir)
        store.manifest = {"executed": {"device": "cuda:1"}}
        return store

    kw = dict(data_root=esc50_with_audio, cache_dir=tmp_path / "cache", make_extractor=lambda cfg: _Extractor())
    config = RunConfig(heads=("logreg",), seeds=(0,), options=FAST)
    evaluate_extracted("esc50", ExtractionConfig(checkpoint="random:0"), config, extract=extract, **kw)
    again = evaluate_extracted(
        "esc50", ExtractionConfig(checkpoint="random:0"), config, open_store=fake.stores.__getitem__, **kw
    )
    assert again.report["provenance"]["cache"]["extracted_now"] is False
    assert again.report["provenance"]["executed"] == {"device": "cuda:1"}  # not the extractor's {"device": "cpu"}


def test_extraction_failures_are_refused_not_dropped(esc50_with_audio, tmp_path):
    fake = _FakeExtraction(fail_row=3)
    with pytest.raises(StoreError, match="1 of 250 clips failed to extract"):
        evaluate_extracted(
            "esc50",
            ExtractionConfig(checkpoint="random:0"),
            RunConfig(heads=("logreg",)),
            data_root=esc50_with_audio,
            cache_dir=tmp_path / "cache",
            make_extractor=lambda cfg: _Extractor(),
            extract=fake.extract,
        )


@pytest.mark.slow
def test_real_esc50_official_folds_and_seed_protocol(esc50_seed_features, shared_data_dir, tmp_path):
    """The acceptance run in small: logreg on the real seed features, evar folds vs the leaky protocol.

    evar's reference is 57.7 ± 1.8 % (an independent EVAR-style linear probe of these features)."""
    official = evaluate_precomputed(
        esc50_seed_features,
        "esc50",
        RunConfig(heads=("logreg",)),
        data_root=shared_data_dir,
        out_dir=tmp_path / "official",
    )
    leaky = evaluate_precomputed(
        esc50_seed_features,
        "esc50",
        RunConfig(heads=("logreg",), protocol="seed-project"),
        data_root=shared_data_dir,
        out_dir=tmp_path / "seed",
    )
    acc = official.report["heads"]["logreg"]["accuracy_mean"]
    assert official.report["heads"]["logreg"]["n_runs"] == 5 and 0.547 <= acc <= 0.607
    assert official.report["protocol"]["name"] == "evar"
    assert official.report["measured"]["n_train"] == {f"fold {k}": 1440 for k in range(1, 6)}
    assert leaky.report["leaky"] is True and leaky.report["heads"]["logreg"]["n_runs"] == 1
    assert (tmp_path / "seed" / "summary.md").read_text().count("LEAKY") >= 1


@pytest.mark.slow
def test_real_extraction_end_to_end_on_the_demo_set(tmp_path):
    """Runtime extractor (random weights) → store → cache → split protocol → report; a rerun hits the cache."""
    from audiosep_kit.evaluate._demo_data import make_demo_dataset

    root = make_demo_dataset(tmp_path / "demo")
    kw = dict(data_root=root, cache_dir=tmp_path / "cache")
    config = RunConfig(heads=("logreg",), seeds=(0,))
    first = evaluate_extracted(
        "demo-words", ExtractionConfig(checkpoint="random:0"), config, out_dir=tmp_path / "run", **kw
    )
    again = evaluate_extracted("demo-words", ExtractionConfig(checkpoint="random:0"), config, **kw)
    prov = first.report["provenance"]
    assert prov["weights"]["random_weights"] is True and len(prov["weights"]["sha256"]) == 64
    assert prov["backend"] == "eager" and prov["executed"] and prov["cache"]["extracted_now"] is True
    assert again.report["provenance"]["cache"]["extracted_now"] is False
    assert first.report["heads"]["logreg"]["accuracy_mean"] == again.report["heads"]["logreg"]["accuracy_mean"]
    assert (tmp_path / "run" / "summary.md").read_text().count("RANDOM WEIGHTS") == 1
