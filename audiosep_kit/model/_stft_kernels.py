"""The torchlibrosa DFT kernels, rebuilt the way torchlibrosa builds them.

Only used where no checkpoint supplies them (``random:SEED`` weights and tests); a loaded checkpoint's
own kernels always win, because a recomputation differs in the last bit of ~0.5 % of entries.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.signal import get_window

from audiosep_kit.model._config import N_FFT


def dft_kernels(n_fft: int = N_FFT) -> tuple[torch.Tensor, torch.Tensor]:
    """Real and imaginary Conv1d weights (n_fft//2+1, 1, n_fft): periodic Hann times e^{-i2πkm/N}."""
    window = get_window("hann", n_fft, fftbins=True)
    idx = np.arange(n_fft)
    omega = np.exp(-2 * np.pi * 1j / n_fft)
    dft = np.power(omega, np.outer(idx, idx))  # float64 complex power, as torchlibrosa computes it
    bins = n_fft // 2 + 1
    kernel = dft[:, :bins] * window[:, None]
    real = torch.from_numpy(np.real(kernel).T[:, None, :].astype(np.float32))
    imag = torch.from_numpy(np.imag(kernel).T[:, None, :].astype(np.float32))
    return real.contiguous(), imag.contiguous()
