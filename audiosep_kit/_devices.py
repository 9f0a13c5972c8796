"""Device selection that says no instead of falling back: 'cuda' without CUDA is an error."""

from __future__ import annotations

import torch

from audiosep_kit.errors import BackendUnavailableError, ConfigError

DEVICES = ("cpu", "cuda")


def parse_device(device: str) -> tuple[str, int | None]:
    """'cpu' -> ('cpu', None), 'cuda' -> ('cuda', None), 'cuda:N' -> ('cuda', N); anything else is refused."""
    kind, sep, index = str(device).partition(":")
    if kind not in DEVICES or (sep and (kind != "cuda" or not index.isdigit())):
        raise ConfigError(f"`device` must be one of {{'cpu', 'cuda', 'cuda:N'}}; got {device!r}.")
    return kind, int(index) if sep else None


def torch_device(device: str) -> torch.device:
    """Validate ``device`` ('cpu', 'cuda', 'cuda:N') and check that it really exists."""
    kind, _ = parse_device(device)
    if kind == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailableError(
            f"device {device!r} was requested but torch sees no CUDA device "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda}); use --device cpu."
        )
    return torch.device(device)


def set_tf32(enabled: bool) -> None:
    """TF32 shifts conv results by ~1e-3 relative: off for reference features, on only by request."""
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled
