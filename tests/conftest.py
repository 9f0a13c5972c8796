"""Shared fixtures: the ``../shared`` test material, the golden conformance set and its weights.

Everything under ``../shared`` is optional: a fixture that needs it skips the test with the reason
when it is absent, and every test that uses such a fixture is marked ``needs_shared`` automatically
(so ``-m "not needs_shared"`` selects the self-contained tests). Tests write only under ``tmp_path``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"
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
        err, key, rel = errors[kind]
        terminalreporter.write_line(f"{kind:<10} max abs err {err:.3e} (rel {rel:.2e}) at {key}")


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


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(_require(path, path.name)) as data:
        return {key: data[key] for key in data.files}


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


@pytest.fixture(scope="session")
def golden_check(request: pytest.FixtureRequest) -> Callable[..., float]:
    """``check(got, ref, key, kind)``: assert shape, dtype and allclose; record and return max |error|.

    The largest error of each ``kind`` is printed in the terminal summary.
    """
    errors: dict[str, tuple[float, str, float]] = request.config.stash.setdefault(_ERRORS_KEY, {})

    def check(got, ref: np.ndarray, key: str, kind: str) -> float:
        got = got.detach().cpu().numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
        assert got.shape == ref.shape, f"{key}: shape {got.shape} != golden {ref.shape}"
        assert got.dtype == np.float32, f"{key}: dtype {got.dtype} != float32"
        err = float(np.max(np.abs(got.astype(np.float64) - ref.astype(np.float64))))
        rel = err / max(float(np.max(np.abs(ref))), 1e-30)
        if err >= errors.get(kind, (-1.0, "", 0.0))[0]:
            errors[kind] = (err, key, rel)
        print(f"{key}: max abs err {err:.3e} (rel {rel:.2e})")
        assert np.allclose(got, ref, rtol=GOLDEN_RTOL, atol=GOLDEN_ATOL), (
            f"{key}: max abs err {err:.3e} exceeds rtol={GOLDEN_RTOL}, atol={GOLDEN_ATOL}"
        )
        return err

    return check
