"""AudioSep's ResUNet30 encoder path, STFT through conv_block7a, with official module names.

Module names mirror the official checkpoint after removing its ``ss_model.`` prefix
(``base.encoder_block3.conv_block1.bn2.weight``, ``film.encoder_block1->conv_block1->beta1.bias``),
so a checkpoint's encoder subset loads with ``strict=True``. Operations run in the official order
with the same primitives (see ENCODER_SPEC §8): that is what makes the output bit-faithful.
Tensor layout inside the network is (batch, channels, time, freq).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from audiosep_kit._validation import check_choice
from audiosep_kit.errors import ConfigError
from audiosep_kit.model._config import CONDITION_SIZE, HOP, LAYERS, N_FFT, EncoderConfig

_EPS_POWER = 1e-10
_TIME_MULTIPLE = 32  # five time-halving pools
#: (name, in channels, out channels, pool kernel (time, freq)) for the seven blocks.
BLOCKS = (
    ("encoder_block1", 32, 32, (2, 2)),
    ("encoder_block2", 32, 64, (2, 2)),
    ("encoder_block3", 64, 128, (2, 2)),
    ("encoder_block4", 128, 256, (2, 2)),
    ("encoder_block5", 256, 384, (2, 2)),
    ("encoder_block6", 384, 384, (1, 2)),
    ("conv_block7a", 384, 384, (1, 1)),
)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, momentum=0.01)


class ConvSTFT(nn.Module):
    """torchlibrosa's STFT as two frozen Conv1d DFT kernels (n_fft 2048, hop 320, reflect pad).

    The kernels are parameters because the checkpoint stores them: loading them, rather than
    recomputing, keeps the last bit (recomputed kernels differ by 1 ulp in 0.5 % of entries).
    """

    def __init__(self, n_fft: int = N_FFT, hop: int = HOP) -> None:
        super().__init__()
        self.n_fft = n_fft
        bins = n_fft // 2 + 1
        self.conv_real = nn.Conv1d(1, bins, n_fft, stride=hop, bias=False)
        self.conv_imag = nn.Conv1d(1, bins, n_fft, stride=hop, bias=False)
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L) -> real, imag, each (B, 1, T, n_fft//2+1) with T = L // hop + 1."""
        x = F.pad(x[:, None, :], (self.n_fft // 2, self.n_fft // 2), mode="reflect")
        real = self.conv_real(x)[:, None, :, :].transpose(2, 3)
        imag = self.conv_imag(x)[:, None, :, :].transpose(2, 3)
        return real, imag


class ConvBlockRes(nn.Module):
    """Pre-activation residual block; FiLM adds β after each BN (additive only, as the code does)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.bn1 = _bn(in_channels)
        self.bn2 = _bn(out_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.is_shortcut = in_channels != out_channels
        if self.is_shortcut:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1)

    def forward(
        self, x: torch.Tensor, beta1: torch.Tensor | None = None, beta2: torch.Tensor | None = None
    ) -> torch.Tensor:
        h = self.bn1(x)
        if beta1 is not None:
            h = h + beta1
        h = self.conv1(F.leaky_relu(h, negative_slope=0.01))
        h2 = self.bn2(h)
        if beta2 is not None:
            h2 = h2 + beta2
        h = self.conv2(F.leaky_relu(h2, negative_slope=0.01))
        return (self.shortcut(x) if self.is_shortcut else x) + h


class EncoderBlock(nn.Module):
    """ConvBlockRes followed by average pooling (kernel = stride, floor)."""

    def __init__(self, in_channels: int, out_channels: int, pool: tuple[int, int]) -> None:
        super().__init__()
        self.conv_block1 = ConvBlockRes(in_channels, out_channels)
        self.pool = pool

    def forward(self, x: torch.Tensor, beta1=None, beta2=None) -> torch.Tensor:
        h = self.conv_block1(x, beta1, beta2)
        return h if self.pool == (1, 1) else F.avg_pool2d(h, kernel_size=self.pool)


class FiLM(nn.Module):
    """The 14 encoder FiLM Linears, registered under the official ``->``-joined names."""

    def __init__(self, condition_size: int = CONDITION_SIZE) -> None:
        super().__init__()
        for name, cin, cout, _ in BLOCKS:
            self.add_module(f"{name}->conv_block1->beta1", nn.Linear(condition_size, cin))
            self.add_module(f"{name}->conv_block1->beta2", nn.Linear(condition_size, cout))

    def betas(self, block: str, condition: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(1, 512) condition -> β1 (1, Cin, 1, 1), β2 (1, Cout, 1, 1) for ``block``."""
        out = []
        for which in ("beta1", "beta2"):
            linear = getattr(self, f"{block}->conv_block1->{which}")
            out.append(linear(condition)[:, :, None, None])
        return out[0], out[1]


class EncoderBase(nn.Module):
    """STFT, bn0, pre_conv and the seven blocks: the ``base.*`` keys of the checkpoint."""

    def __init__(self) -> None:
        super().__init__()
        self.stft = ConvSTFT()
        self.bn0 = _bn(N_FFT // 2 + 1)
        self.pre_conv = nn.Conv2d(1, 32, 1)
        for name, cin, cout, pool in BLOCKS:
            self.add_module(name, EncoderBlock(cin, cout, pool))

    def magnitude(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, L) -> |STFT| (B, 1, T, 1025); the power is clamped at 1e-10 so mag >= 1e-5."""
        real, imag = self.stft(wave)
        return torch.clamp(real**2 + imag**2, _EPS_POWER, float("inf")) ** 0.5

    def stem(self, wave: torch.Tensor, pad_to_32: bool) -> torch.Tensor:
        """(B, L) -> (B, 32, Tp, 1024): bn0 per bin, zero time pad after bn0, Nyquist bin dropped."""
        x = self.bn0(self.magnitude(wave).transpose(1, 3)).transpose(1, 3)
        if pad_to_32:
            # Written on the symbolic size so an exported graph pads every length correctly.
            pad_len = (-x.shape[2]) % _TIME_MULTIPLE
            x = F.pad(x, (0, 0, 0, pad_len))
        x = x[..., : x.shape[-1] - 1]
        return self.pre_conv(x)


class AudioSepEncoder(nn.Module):
    """Waveform (B, L) at 32 kHz -> pooled features of the configured tap.

    Output shapes per pooling: mean/max (B, C); meanstd (B, 2C); frames (B, T', C);
    none (B, C, T', F'). C is 384 for block5..center.
    """

    def __init__(self, config: EncoderConfig | None = None) -> None:
        super().__init__()
        self.config = config or EncoderConfig()
        self.base = EncoderBase()
        self.film = FiLM()
        cond = self.config.condition
        self.register_buffer(
            "condition",
            torch.zeros(1, CONDITION_SIZE) if cond is None else torch.from_numpy(cond.copy())[None],
            persistent=False,
        )

    def feature_map(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, L) -> the tap's map (B, C, T', F') before pooling."""
        layer = self.config.layer
        return self.feature_maps(wave, (layer,))[layer]

    def feature_maps(self, wave: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        """(B, L) -> {layer: (B, C, T', F') map} for each of ``layers``, from ONE pass.

        The maps are the tensors the forward passes on, so each equals what ``feature_map`` of an
        encoder tapping that layer returns (the blocks after a tap never touch it: nothing is in
        place). The deepest requested layer decides how far the pass runs; the FiLM mode, condition
        and pad_to_32 are this encoder's (a sweep over FiLM modes needs one encoder per mode).
        """
        wanted = {check_choice("layer", layer, LAYERS) for layer in layers}
        if not wanted:
            raise ConfigError(f"feature_maps needs at least one layer of {LAYERS}; got none.")
        last = max(LAYERS.index(layer) for layer in wanted)
        x = self.base.stem(wave, self.config.pad_to_32)
        out: dict[str, torch.Tensor] = {}
        for (name, _, _, _), layer in zip(BLOCKS[: last + 1], LAYERS, strict=False):
            betas: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None)
            if self.config.film != "none":
                betas = self.film.betas(name, self.film_condition)
            x = getattr(self.base, name)(x, *betas)
            if layer in wanted:
                out[layer] = x
        return out

    @property
    def film_condition(self) -> torch.Tensor:
        """The (1, 512) FiLM condition buffer (zeros unless film='query')."""
        condition = self.condition
        assert isinstance(condition, torch.Tensor)  # a registered buffer, for the type checker
        return condition

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return pool_features(self.feature_map(wave), self.config.pooling)


def pool_features(x: torch.Tensor, pooling: str) -> torch.Tensor:
    """Pool a (B, C, T', F') map as the encoder options say (see AudioSepEncoder)."""
    if pooling == "mean":
        return x.mean(dim=(2, 3))
    if pooling == "meanstd":
        return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3), correction=0)], dim=1)
    if pooling == "max":
        return x.amax(dim=(2, 3))
    if pooling == "frames":
        return x.mean(dim=3).transpose(1, 2)
    return x


def _as_input(batch: np.ndarray, device: torch.device | str) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(device)


def run_encoder(fn, batch: np.ndarray, device: torch.device | str = "cpu") -> np.ndarray:
    """Run a torch callable (the encoder, or a compiled or AOT-loaded form of it) on a numpy batch.

    (B, L) float32 waveforms -> features as float32 numpy, under ``inference_mode``. Backends and export
    verification both go through here, so the reference and the artifact see the same input handling.
    """
    x = _as_input(batch, device)
    with torch.inference_mode():
        y = fn(x)
    return y.float().cpu().numpy()


def run_encoder_maps(
    encoder: AudioSepEncoder, batch: np.ndarray, layers: Sequence[str], device: torch.device | str = "cpu"
) -> dict[str, np.ndarray]:
    """``run_encoder`` for several taps: (B, L) -> {layer: (B, C, T', F') float32 numpy}, one pass."""
    x = _as_input(batch, device)
    with torch.inference_mode():
        maps = encoder.feature_maps(x, layers)
    return {layer: m.float().cpu().numpy() for layer, m in maps.items()}
