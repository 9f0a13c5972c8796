"""Shared fixtures: the ``../shared`` test material, the two golden conformance tiers and their weights.

Everything under ``../shared`` is optional: a fixture that needs it skips the test with the reason
when it is absent, and every test that uses such a fixture is marked ``needs_shared`` automatically
(so ``-m "not needs_shared"`` selects the self-contained tests). The compact golden-lite set lives
in the repository (``tests/golden_lite``, weights rebuilt from its README §1 recipe), so its
``lite_*`` fixtures never skip: a fresh clone runs conformance too. Tests write only under ``tmp_path``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"
LITE_DIR = Path(__file__).resolve().parent / "golden_lite"
#: Tolerance of every golden comparison (golden README §5): passes thread-count and ISA noise
#: (rel ~2e-6) and fails every known bug by more than two orders of magnitude.
GOLDEN_RTOL = 1e-4
GOLDEN_ATOL = 1e-5

_SHARED_FIXTURES = {"shared_dir", "shared_data_dir", "golden_dir"}
_ERRORS_KEY = pytest.StashKey[dict]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _SHARED_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.needs_shared)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    errors = config.stash.get(_ERRORS_KEY, None)
    if not errors:
        return
    terminalreporter.section("golden conformance: max |got - ref| per array kind")
    for kind in sorted(errors):
        err, key, rel, cosine = errors[kind]
        cos = "" if cosine is None else f", min cosine {cosine[0]:.8f} at {cosine[1]}"
        terminalreporter.write_line(f"{kind:<16} max abs err {err:.3e} (rel {rel:.2e}) at {key}{cos}")


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        pytest.skip(f"{what} not found at {path}: this test reads the ../shared test material next to the repo")
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``<repo>/../shared`` (the project's read-only test material); skips when absent."""
    return _require(SHARED_DIR, "shared test material")


@pytest.fixture(scope="session")
def shared_data_dir(shared_dir: Path) -> Path:
    """Real dataset samples (``../shared/data``)."""
    return _require(shared_dir / "data", "real dataset samples (shared/data)")


@pytest.fixture(scope="session")
def golden_dir(shared_dir: Path) -> Path:
    """The golden conformance set (``../shared/audiosep/golden``)."""
    return _require(shared_dir / "audiosep" / "golden", "golden conformance set (shared/audiosep/golden)")


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    return _read_npz(_require(path, path.name))


@pytest.fixture(scope="session")
def golden_inputs(golden_dir: Path) -> dict[str, np.ndarray]:
    """``inputs.npz``: a..e (1-D float32 at 32 kHz) and batch2 (2, 32000)."""
    return _load_npz(golden_dir / "inputs.npz")


@pytest.fixture(scope="session")
def golden_outputs(golden_dir: Path) -> dict[str, np.ndarray]:
    """``outputs_core.npz``: ``<x>__<mode>__center|mean``, ``<x>__mag``, batch2 and nopad arrays."""
    return _load_npz(golden_dir / "outputs_core.npz")


@pytest.fixture(scope="session")
def golden_taps(golden_dir: Path) -> dict[str, np.ndarray]:
    """``outputs_taps.npz``: ``<x>__none__block1..6`` for inputs a, c and d."""
    return _load_npz(golden_dir / "outputs_taps.npz")


@pytest.fixture(scope="session")
def golden_condition(golden_dir: Path) -> np.ndarray:
    """The fixed unit-norm 512-d FiLM condition of mode ``query``."""
    return np.load(_require(golden_dir / "condition.npy", "condition.npy"))


@pytest.fixture(scope="session")
def golden_checkpoint(golden_dir: Path) -> Path:
    """The Lightning-style ``checkpoint.ckpt`` (129 ``ss_model.``-prefixed encoder tensors)."""
    return _require(golden_dir / "checkpoint.ckpt", "checkpoint.ckpt")


@pytest.fixture(scope="session")
def golden_raw_state_dict(golden_checkpoint: Path) -> dict[str, torch.Tensor]:
    """The checkpoint's ``state_dict`` as stored (prefixed keys, file order). Do not mutate."""
    return torch.load(golden_checkpoint, map_location="cpu", weights_only=True)["state_dict"]


@pytest.fixture(scope="session")
def golden_weights(golden_checkpoint: Path):
    """``load_weights`` of the golden checkpoint (a LoadedWeights). Do not mutate its tensors."""
    from audiosep_kit.model._checkpoint import load_weights

    return load_weights(golden_checkpoint)


@pytest.fixture(scope="session")
def golden_flat_checkpoint(golden_raw_state_dict, tmp_path_factory) -> Path:
    """A hub-style flat file: the checkpoint's ``state_dict`` alone, ``torch.save``d."""
    path = tmp_path_factory.mktemp("golden_flat") / "pytorch_model.bin"
    torch.save(golden_raw_state_dict, path)
    return path


@pytest.fixture(scope="session")
def golden_safetensors_checkpoint(golden_raw_state_dict, tmp_path_factory) -> Path:
    """The same tensors as a ``.safetensors`` file."""
    from safetensors.torch import save_file

    path = tmp_path_factory.mktemp("golden_safetensors") / "model.safetensors"
    save_file({k: v.contiguous() for k, v in golden_raw_state_dict.items()}, str(path))
    return path


@pytest.fixture(scope="session")
def native_bf16() -> None:
    """Skip unless oneDNN runs bfloat16 natively here (AVX512-BF16 or AMX): the fast backend refuses
    emulated bf16, and oneDNN builds no bf16 kernels at all on an AVX2-only CPU."""
    from audiosep_kit.runtime.backends._fast import bf16_is_native

    if not bf16_is_native():
        pytest.skip(f"this CPU has no native bfloat16 (torch CPU capability {torch.backends.cpu.get_cpu_capability()})")


@pytest.fixture(scope="session")
def random_weights():
    """``random:0`` encoder weights (deterministic; flagged random in every artifact)."""
    from audiosep_kit.model._checkpoint import load_weights

    return load_weights("random:0")


def _checker(request: pytest.FixtureRequest, tier: str) -> Callable[..., float]:
    """The comparison both golden tiers use; ``tier`` prefixes the kinds in the terminal summary."""
    from audiosep_kit.numerics import compare

    errors: dict[str, tuple] = request.config.stash.setdefault(_ERRORS_KEY, {})

    def check(got, ref: np.ndarray, key: str, kind: str, *, min_cosine: float | None = None) -> float:
        got = got.detach().cpu().numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
        kind = f"{tier}{kind}"
        assert got.shape == ref.shape, f"{key}: shape {got.shape} != golden {ref.shape}"
        assert got.dtype == np.float32, f"{key}: dtype {got.dtype} != float32"
        err = float(np.max(np.abs(got.astype(np.float64) - ref.astype(np.float64))))
        rel = err / max(float(np.max(np.abs(ref))), 1e-30)
        worst_err, worst_key, worst_rel, worst_cos = errors.get(kind, (-1.0, "", 0.0, None))
        if err >= worst_err:
            worst_err, worst_key, worst_rel = err, key, rel
        cosine = None if min_cosine is None else compare(got, ref).min_cosine
        if cosine is not None and (worst_cos is None or cosine <= worst_cos[0]):
            worst_cos = (cosine, key)
        errors[kind] = (worst_err, worst_key, worst_rel, worst_cos)
        if min_cosine is None:
            print(f"{key}: max abs err {err:.3e} (rel {rel:.2e})")
            assert np.allclose(got, ref, rtol=GOLDEN_RTOL, atol=GOLDEN_ATOL), (
                f"{key}: max abs err {err:.3e} exceeds rtol={GOLDEN_RTOL}, atol={GOLDEN_ATOL}"
            )
        else:
            print(f"{key}: min cosine {cosine:.8f}, max abs err {err:.3e} (rel {rel:.2e})")
            assert cosine >= min_cosine, f"{key}: min row cosine {cosine:.8f} < {min_cosine} (max abs err {err:.3e})"
        return err

    return check


@pytest.fixture(scope="session")
def golden_check(request: pytest.FixtureRequest) -> Callable[..., float]:
    """``check(got, ref, key, kind)``: assert shape, dtype and allclose; record and return max |error|.

    The largest error of each ``kind`` is printed in the terminal summary. With ``min_cosine=``
    the criterion is the per-row cosine instead (reduced-precision backends); the error is recorded.
    """
    return _checker(request, "")


# --- golden-lite: in the repository, never skipped --------------------------------------------------


def _load_recipe() -> ModuleType:
    # tests/ is not a package under --import-mode=importlib, so the recipe is loaded by file path.
    spec = importlib.util.spec_from_file_location("golden_lite_recipe", LITE_DIR / "recipe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def lite_dir() -> Path:
    """``tests/golden_lite``: the compact golden set, committed with the tests (README.md there)."""
    assert (LITE_DIR / "provenance.json").is_file(), f"golden-lite data missing from the repository at {LITE_DIR}"
    return LITE_DIR


@pytest.fixture(scope="session")
def lite_recipe(lite_dir: Path) -> ModuleType:
    """``tests/golden_lite/recipe.py``: the README §1 weight recipe (test code, not package code)."""
    return _load_recipe()


@pytest.fixture(scope="session")
def lite_provenance(lite_recipe: ModuleType, lite_dir: Path) -> dict:
    """``provenance.json``: per-key shape, dtype and sha256_le of the 129 recipe tensors, and more."""
    return lite_recipe.load_provenance(lite_dir)


@pytest.fixture(scope="session")
def lite_recipe_arrays(lite_recipe: ModuleType, lite_provenance: dict) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``(tensors, condition)`` rebuilt by the recipe: numpy, ``ss_model.`` keys in provenance order."""
    return lite_recipe.recipe_arrays(lite_provenance)


@pytest.fixture(scope="session")
def lite_inputs(lite_dir: Path) -> dict[str, np.ndarray]:
    """``inputs.npz``: a..e (1-D float32 at 32 kHz) and batch2 (2, 32000)."""
    return _read_npz(lite_dir / "inputs.npz")


@pytest.fixture(scope="session")
def lite_outputs(lite_dir: Path) -> dict[str, np.ndarray]:
    """``outputs.npz``: the 41 reference arrays of the golden-lite README §3."""
    return _read_npz(lite_dir / "outputs.npz")


@pytest.fixture(scope="session")
def lite_condition(lite_dir: Path) -> np.ndarray:
    """The stored 512-d FiLM condition of mode ``query`` (not unit norm: |c| = 13.42)."""
    return np.load(lite_dir / "condition.npy")


@pytest.fixture(scope="session")
def lite_checkpoint(lite_recipe_arrays, tmp_path_factory) -> Path:
    """The recipe tensors as a Lightning-style ``{'state_dict': {...}}`` .ckpt under the session tmp."""
    tensors, _ = lite_recipe_arrays
    path = tmp_path_factory.mktemp("golden_lite") / "checkpoint.ckpt"
    torch.save({"state_dict": {key: torch.from_numpy(value.copy()) for key, value in tensors.items()}}, path)
    return path


@pytest.fixture(scope="session")
def lite_weights(lite_checkpoint: Path):
    """``load_weights`` of the golden-lite checkpoint (a LoadedWeights). Do not mutate its tensors."""
    from audiosep_kit.model import load_weights

    return load_weights(lite_checkpoint)


@pytest.fixture(scope="session")
def lite_check(request: pytest.FixtureRequest) -> Callable[..., float]:
    """``golden_check`` for golden-lite arrays; their kinds show as ``lite:<kind>`` in the summary."""
    return _checker(request, "lite:")
