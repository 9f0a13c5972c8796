"""Strict loading of the encoder subset from the checkpoint files users actually have.

Accepted: a Lightning ``.ckpt`` (tensors under ``state_dict``), a flat ``pytorch_model.bin`` / ``.pt``,
and ``.safetensors``; key prefixes ``ss_model.``, none, or any single wrapper prefix in front of them
(``model.ss_model.``, ``module.`` ...), detected from the one key every AudioSep file has.
Every encoder key must be present with the right shape and dtype, ``num_batches_tracked`` included
(torch's BatchNorm would fill a missing one silently, so it is checked here, not by torch).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from audiosep_kit.errors import CheckpointError
from audiosep_kit.model._config import EncoderConfig
from audiosep_kit.model._encoder import AudioSepEncoder
from audiosep_kit.model._stft_kernels import dft_kernels

CHECKPOINT_ENV = "AUDIOSEP_CHECKPOINT"
_ANCHOR = "base.bn0.running_mean"
_ENCODER_KEY = re.compile(
    r"^(base\.(stft|bn0|pre_conv|encoder_block\d+|conv_block7a)\.|film\.(encoder_block\d+|conv_block7a)->)"
)
#: Parts of the full separation network that an encoder deliberately leaves unread.
_SEPARATOR_KEY = re.compile(
    r"^(base\.(istft|decoder_block\d+|after_conv|conv_block7b)\.|film\.(decoder_block\d+|conv_block7b)->)"
)
_DEFAULT_LOCATIONS = (
    "pretrained_models/AudioSep/audiosep_base_4M_steps.ckpt",
    "pretrained_models/AudioSep/pytorch_model.bin",
)


@dataclass(frozen=True)
class LoadedWeights:
    """The encoder's tensors plus where they came from and their identity."""

    state_dict: dict[str, torch.Tensor]
    source: str
    sha256: str
    prefix: str
    is_random: bool = False

    def describe(self) -> dict:
        return {
            "source": self.source,
            "sha256": self.sha256,
            "prefix": self.prefix,
            "random_weights": self.is_random,
        }


def read_state_dict(path: str | Path, *, trust_pickle: bool = False) -> dict[str, torch.Tensor]:
    """Read the tensors of a checkpoint file, unwrapping Lightning's ``state_dict`` if present.

    Pickled files are read with ``weights_only=True``. ``trust_pickle=True`` widens that to a full
    unpickle, which can run arbitrary code: use it only for a file you trust whose optimizer or
    callback state needs it (documented in pretrained_models/README.md).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path} (set --checkpoint or the {CHECKPOINT_ENV} variable).")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(path), device="cpu"))
        except Exception as exc:  # safetensors raises its own error types
            raise CheckpointError(f"cannot read safetensors file {path}: {exc}") from exc
    try:
        obj = torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except pickle.UnpicklingError as exc:
        refused = re.search(r"Unsupported (?:global: GLOBAL|class) (\S+)", str(exc))
        if refused is None:  # not a refused class: the bytes are no valid pickle at all
            raise CheckpointError(f"cannot read checkpoint {path}: the file is corrupt or not a PyTorch file.") from exc
        raise CheckpointError(
            f"{path} holds objects that weights_only loading refuses ({refused.group(1)}). "
            "If you trust this file, pass trust_pickle=True (CLI: --trust-checkpoint), or re-save "
            "its state_dict alone."
        ) from exc
    except Exception as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    return _unwrap(obj, path)


def _unwrap(obj: object, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    elif isinstance(obj, Mapping) and isinstance(obj.get("model"), Mapping):
        obj = obj["model"]
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path} does not hold a state dict (got {type(obj).__name__}).")
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(f"{path} holds no tensors.")
    return tensors


def _detect_prefix(keys: list[str], source: str) -> str:
    prefixes = sorted({k[: -len(_ANCHOR)] for k in keys if k.endswith(_ANCHOR)})
    if not prefixes:
        sample = ", ".join(repr(k) for k in keys[:3])
        raise CheckpointError(
            f"{source} is not an AudioSep checkpoint: no key ends with {_ANCHOR!r} "
            f"(expected e.g. 'ss_model.{_ANCHOR}'); first keys: {sample}."
        )
    if len(prefixes) > 1:
        raise CheckpointError(f"{source} holds several AudioSep networks (prefixes {prefixes}); cannot choose.")
    return prefixes[0]


def select_encoder_state(
    raw: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], source: str = "checkpoint"
) -> tuple[dict[str, torch.Tensor], str]:
    """Pick the encoder keys out of ``raw`` and check them against ``expected`` (name, shape, dtype).

    Returns the selected state dict (prefix removed) and the prefix found. Raises CheckpointError
    naming every missing, unexpected and mis-shaped key.
    """
    prefix = _detect_prefix(list(raw), source)
    selected: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    for key, value in raw.items():
        if not key.startswith(prefix):
            continue  # outside the separation network (e.g. query_encoder.*): not ours to judge
        name = key[len(prefix) :]
        if _ENCODER_KEY.match(name):
            if name in expected:
                selected[name] = value
            else:
                unexpected.append(key)
        elif not _SEPARATOR_KEY.match(name):
            unexpected.append(key)
    missing = [prefix + k for k in expected if k not in selected]
    mismatched = [
        f"{prefix + k}: expected {tuple(expected[k].shape)} {expected[k].dtype}, got {tuple(v.shape)} {v.dtype}"
        for k, v in selected.items()
        if v.shape != expected[k].shape or v.dtype != expected[k].dtype
    ]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} key(s): {', '.join(missing)}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} key(s): {', '.join(unexpected)}")
        if mismatched:
            parts.append(f"{len(mismatched)} key(s) with wrong shape or dtype: {'; '.join(mismatched)}")
        raise CheckpointError(f"{source} does not match the AudioSep encoder: " + " | ".join(parts))
    return selected, prefix


def weights_sha256(state_dict: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over (name, dtype, shape, little-endian bytes) in sorted key order.

    Independent of file format, key order and wrapper prefix, so the same weights always carry
    the same identity in stores, exports and reports.
    """
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        array = tensor.numpy()
        array = array.astype(array.dtype.newbyteorder("<"), copy=False)
        digest.update(f"{name}|{array.dtype.str}|{tuple(array.shape)}\n".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _parse_random(spec: str) -> int | None:
    if not spec.startswith("random:"):
        return None
    try:
        return int(spec.split(":", 1)[1])
    except ValueError:
        raise CheckpointError(f"random weights are written 'random:SEED' with an integer seed; got {spec!r}.") from None


def load_weights(checkpoint: str | Path, *, trust_pickle: bool = False) -> LoadedWeights:
    """Load and check the encoder subset of ``checkpoint`` (a path, or ``random:SEED``)."""
    expected = AudioSepEncoder().state_dict()
    seed = _parse_random(str(checkpoint))
    if seed is not None:
        state = random_state_dict(seed)
        return LoadedWeights(state, f"random:{seed}", weights_sha256(state), prefix="", is_random=True)
    raw = read_state_dict(checkpoint, trust_pickle=trust_pickle)
    state, prefix = select_encoder_state(raw, expected, source=str(checkpoint))
    return LoadedWeights(state, str(Path(checkpoint).resolve()), weights_sha256(state), prefix=prefix)


def build_encoder(weights: LoadedWeights, config: EncoderConfig | None = None) -> AudioSepEncoder:
    """An eval-mode encoder holding ``weights``, loaded with ``strict=True``."""
    model = AudioSepEncoder(config)
    model.load_state_dict(weights.state_dict, strict=True)
    return model.eval()


def random_state_dict(seed: int) -> dict[str, torch.Tensor]:
    """Deterministic random encoder weights for smoke runs (never mistaken for real ones:
    LoadedWeights.is_random is set and the source reads ``random:SEED``).

    The STFT kernels are the true DFT kernels, so features still describe the spectrum.
    """
    gen = torch.Generator().manual_seed(seed)
    model = AudioSepEncoder()
    state = {}
    for name, tensor in model.state_dict().items():
        if name.endswith("num_batches_tracked"):
            value = torch.zeros_like(tensor)
        elif name.endswith("running_mean"):
            value = torch.randn(tensor.shape, generator=gen) * 0.1
        elif name.endswith("running_var"):
            value = torch.rand(tensor.shape, generator=gen) * 1.5 + 0.5
        elif ".bn" in name and name.endswith("weight"):
            value = torch.rand(tensor.shape, generator=gen) + 0.5
        elif tensor.dim() >= 2:
            fan_in = int(np.prod(tensor.shape[1:]))
            fan_out = tensor.shape[0] * int(np.prod(tensor.shape[2:]))
            bound = (6.0 / (fan_in + fan_out)) ** 0.5
            value = (torch.rand(tensor.shape, generator=gen) * 2 - 1) * bound
        else:
            value = torch.randn(tensor.shape, generator=gen) * 0.05
        state[name] = value.to(tensor.dtype)
    real, imag = dft_kernels()
    state["base.stft.conv_real.weight"], state["base.stft.conv_imag.weight"] = real, imag
    # bn0 sees magnitudes (>= 0, heavy-tailed): centre and scale them roughly.
    state["base.bn0.running_mean"] = torch.full((1025,), 0.5)
    state["base.bn0.running_var"] = torch.full((1025,), 4.0)
    return state


def resolve_checkpoint(explicit: str | None, root: Path | None = None) -> str | None:
    """--checkpoint, then $AUDIOSEP_CHECKPOINT, then pretrained_models/AudioSep/ (first that exists)."""
    if explicit:
        return explicit
    env = os.environ.get(CHECKPOINT_ENV)
    if env:
        return env
    base = root or Path.cwd()
    for candidate in _DEFAULT_LOCATIONS:
        if (base / candidate).is_file():
            return str(base / candidate)
    return None
