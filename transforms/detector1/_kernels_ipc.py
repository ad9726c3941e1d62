"""numba kernel of the ipc step: convolve each group's science region with the IPC kernel.

``convolve_planes`` reproduces jwst 3.0's ``ipc_corr.ipc_convolve`` bit for bit: the science
region (reference pixels excluded) is copied into a zero-bordered scratch image, and each output
pixel is the float32 sum, starting from 0, of ``k[j, i] * t[y + kh-1-j, x + kw-1-i]`` over the
kernel's cells in row-major order with the middle cell (``kh//2, kw//2``) added last (jwst's
order, so every rounding is the same). The kernel is 4-D ``(kh, kw, ky, kx)``: one cell value per
output pixel when ``per_pixel`` (a 4-D IPC reference, cut to the science region), else
``(kh, kw, 1, 1)`` (a 2-D reference): one compiled signature serves both.

Rows are computed independently (``prange``), so the result does not depend on the thread
count; the scratch image is one plane (16 MB for a full frame), filled once per group.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(nogil=True, cache=True, parallel=True)
def convolve_planes(data, kernel, per_pixel, y0, ny, x0, nx):
    """In place on ``data`` (nplanes, NY, NX) float32: rows ``y0:y0+ny``, columns
    ``x0:x0+nx`` of every plane become their convolution with ``kernel`` (zero outside)."""
    kh, kw = kernel.shape[0], kernel.shape[1]
    bb = kh // 2
    lb = kw // 2
    mj = kh // 2
    mi = kw // 2
    pp = 1 if per_pixel else 0
    temp = np.zeros((ny + kh - 1, nx + kw - 1), np.float32)
    for p in range(data.shape[0]):
        # rows are read through slices, so the inner loops index from 0 with the loop
        # variable: numba then drops its negative-index checks and LLVM vectorises them
        # (3.6x faster than indexing ``trow[x + off]``; same operations in the same order)
        for r in prange(ny):
            src = data[p, y0 + r, x0:x0 + nx]
            dst = temp[bb + r, lb:lb + nx]
            for x in range(nx):
                dst[x] = src[x]
        for r in prange(ny):
            acc = np.zeros(nx, np.float32)
            kr = r * pp
            for j in range(kh):
                for i in range(kw):
                    if j == mj and i == mi:
                        continue  # the middle cell is added last, as jwst does
                    off = kw - 1 - i
                    t = temp[r + kh - 1 - j, off:off + nx]
                    if per_pixel:
                        krow = kernel[j, i, kr]
                        for x in range(nx):
                            acc[x] += krow[x] * t[x]
                    else:
                        k = kernel[j, i, 0, 0]
                        for x in range(nx):
                            acc[x] += k * t[x]
            t = temp[r + mj, mi:mi + nx]
            if per_pixel:
                krow = kernel[mj, mi, kr]
                for x in range(nx):
                    acc[x] += krow[x] * t[x]
            else:
                k = kernel[mj, mi, 0, 0]
                for x in range(nx):
                    acc[x] += k * t[x]
            out = data[p, y0 + r, x0:x0 + nx]
            for x in range(nx):
                out[x] = acc[x]
