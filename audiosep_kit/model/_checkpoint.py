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
#: The largest seed of ``random:SEED`` (torch.Generator.manual_seed takes unsigned 64-bit seeds).
RANDOM_SEED_MAX = 2**64 - 1
_ANCHOR = "base.bn0.running_mean"
_ENCODER_KEY = re.compile(
    r"^(base\.(stft|bn0|pre_conv|encoder_block\d+|conv_block7a)\.|film\.(encoder_block\d+|conv_block7a)->)"
)
#: Parts of the full separation network that an encoder deliberately leaves unread.
_SEPARATOR_KEY = re.compile(
    r"^(base\.(istft|decoder_block\d+|after_conv|conv_block7b)\.|film\.(decoder_block\d+|conv_block7b)->)"
)
#: How many leading bytes a refusal shows; the container magics torch.save writes (zip, legacy pickle).
_HEAD_BYTES = 32
_TORCH_MAGIC = (b"PK\x03\x04", b"\x80")
#: How torch's weights_only unpickler words a refused global, across torch versions.
_REFUSED = re.compile(r"(?:Unsupported global: GLOBAL|Unsupported class|unsupported GLOBAL) ([\w.]+)")
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
    callback state needs it (documented in pretrained_models/README.md). Every refusal says what the
    file turned out to be (empty, unreadable, text, damaged, needing unsafe globals) and what to do.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path} (set --checkpoint or the {CHECKPOINT_ENV} variable).")
    head = _read_head(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(path), device="cpu"))
        except Exception as exc:  # safetensors raises its own error types
            raise CheckpointError(
                f"cannot read safetensors file {path}: {exc}. The file is damaged or not safetensors (it starts "
                f"with {head!r}): copy or download it again, or pass another --checkpoint."
            ) from exc
    try:
        obj = torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, KeyError ... for unreadable bytes
        raise _load_error(path, head, exc, trust_pickle) from exc
    return _unwrap(obj, path)


def _read_head(path: Path) -> bytes:
    """The first bytes of ``path``: what a refusal shows, and the empty and unreadable cases, named.

    Why read them ourselves: torch reports a 0-byte file with an empty message and an unreadable
    one as a bare system error; here both say what was found and what to do.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEAD_BYTES)
    except PermissionError:
        raise CheckpointError(
            f"cannot read checkpoint {path}: permission denied reading {path}. Make it readable "
            f"(e.g. chmod u+r) or pass another --checkpoint (or set {CHECKPOINT_ENV})."
        ) from None
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror or exc}.") from exc
    if not head:
        raise CheckpointError(
            f"cannot read checkpoint {path}: it is an empty file (0 bytes), so the download or copy that made it "
            "failed. Fetch it again, or pass another --checkpoint."
        )
    return head


def _load_error(path: Path, head: bytes, exc: Exception, trust_pickle: bool) -> CheckpointError:
    """The CheckpointError for a file torch.load refused: refused globals, a foreign file, or damage."""
    refused = None if trust_pickle else _refused_globals(path, exc)
    if refused:
        return CheckpointError(
            f"{path} was refused by safe loading (torch.load weights_only=True): unpickling it needs the pickle "
            f"global(s) {', '.join(refused)}, which safe loading does not allow because unpickling them can run "
            "code. If you trust this file, load it with trust_pickle=True (CLI: --trust-checkpoint), or re-save "
            "its state_dict alone (torch.save(ckpt['state_dict'], ...)) or as .safetensors."
        )
    if not head.startswith(_TORCH_MAGIC):
        return CheckpointError(f"cannot read checkpoint {path}: {_foreign_file(head)}")
    return CheckpointError(
        f"cannot read checkpoint {path}: it starts like a torch.save file ({head[:4]!r}) but torch cannot read "
        f"it ({type(exc).__name__}: {_torch_reason(exc)}), so it is damaged or truncated, or a plain pickle that "
        "torch.save did not write. Copy or download it again, or pass another --checkpoint."
    )


def _refused_globals(path: Path, exc: Exception) -> list[str]:
    """The globals weights_only loading refused: every one torch can list, else the one its error names."""
    message = str(exc)
    if not isinstance(exc, pickle.UnpicklingError) or not _REFUSED.search(message):
        return []
    try:
        listed = list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # only the zip format can be scanned; the error's own name is then the answer
        listed = []
    return listed or [m.group(1) for m in _REFUSED.finditer(message)]


def _foreign_file(head: bytes) -> str:
    """What a file that is no torch.save output looks like, and the fix."""
    if head.startswith(b"version https://git-lfs"):
        return (
            "it is a Git LFS pointer, not the weights (the large file was never downloaded). Run `git lfs pull` "
            "in its repository, or download the checkpoint itself."
        )
    return (
        f"not a PyTorch or safetensors checkpoint: it starts with {head!r}, where a torch.save file starts with "
        "b'PK\\x03\\x04' (zip) or b'\\x80' (legacy pickle) and a safetensors file must be named *.safetensors. "
        f"Pass the .ckpt / .bin / .pt / .safetensors weights file (--checkpoint or {CHECKPOINT_ENV})."
    )


def _torch_reason(exc: Exception) -> str:
    """The informative line of torch's error (its weights_only errors wrap it in paragraphs of advice)."""
    message = str(exc).strip()
    if "WeightsUnpickler error:" in message:
        message = message.split("WeightsUnpickler error:", 1)[1]
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[0] if lines else "no message"


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
    """The SEED of ``random:SEED``; None for a path. The range is what torch's generator accepts,
    without negatives (torch wraps them onto the same weights as a large seed, under another name)."""
    if not spec.startswith("random:"):
        return None
    try:
        seed = int(spec.split(":", 1)[1])
    except ValueError:
        raise CheckpointError(f"random weights are written 'random:SEED' with an integer seed; got {spec!r}.") from None
    if not 0 <= seed <= RANDOM_SEED_MAX:
        raise CheckpointError(
            f"the seed of 'random:SEED' must be an integer from 0 to {RANDOM_SEED_MAX} (2**64 - 1, the range of "
            f"torch's generator); got {spec!r}. Use e.g. random:0."
        )
    return seed


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
