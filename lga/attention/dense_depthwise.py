"""Depthwise convolution as one dense matrix per channel, for maps smaller than the kernel.

A 'same'-padded depthwise ``k x k`` conv on an ``h x w`` map is, per channel, a linear
map of the ``n = h*w`` pixels: ``out_c = T_c x_c`` with ``T_c[p, q]`` the kernel tap at
offset ``q - p`` (zero outside the kernel). That costs ``n^2`` multiply-adds per channel
and image against ``n k^2`` for the convolution, and runs as a batched matmul. LGA's
11x11 global kernel on the 7x7 (or smaller) maps it sees after a stride-32 backbone is
that case: oneDNN spends most of its time there in the weight gradient, which here is
one matmul and a scatter of its ``n x n`` result onto the taps.
"""

from __future__ import annotations

import torch

from .tensor_cache import tensor_cache


def dense_is_cheaper(height: int, width: int, kernel_size: int) -> bool:
    """True where the dense form needs fewer multiply-adds than the convolution."""
    return height * width < kernel_size**2


@tensor_cache(maxsize=64)
def tap_index(height: int, width: int, kernel_size: int, device: torch.device) -> torch.Tensor:
    """(n, n) index of the kernel tap linking output pixel p to input pixel q; k*k where none."""
    r = kernel_size // 2
    rows, cols = torch.arange(height, device=device), torch.arange(width, device=device)
    di = rows.view(1, 1, height, 1) - rows.view(height, 1, 1, 1) + r  # input row - output row + r
    dj = cols.view(1, 1, 1, width) - cols.view(1, width, 1, 1) + r
    inside = (di >= 0) & (di < kernel_size) & (dj >= 0) & (dj < kernel_size)
    return torch.where(inside, di * kernel_size + dj, kernel_size**2).view(height * width, height * width)


class DenseDepthwise(torch.autograd.Function):
    """Same-padded, stride-1 depthwise conv on pixel columns.

    ``forward(columns, weight, bias, height, width)``: columns (C, B, n) contiguous,
    weight (C, 1, k, k), bias (C,) -> tokens (B, n, C), as
    ``conv(x).permute(0, 2, 3, 1).reshape(B, n, C)`` would give.
    """

    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu")  # backward then runs under the same autocast state
    def forward(
        ctx, columns: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, height: int, width: int
    ) -> torch.Tensor:
        c, k = weight.shape[0], weight.shape[-1]
        index = tap_index(height, width, k, columns.device)
        taps = torch.cat([weight.reshape(c, k * k), weight.new_zeros(c, 1)], 1)
        matrix = taps[:, index]  # (C, n_out, n_in)
        ctx.save_for_backward(columns, matrix)
        ctx.index, ctx.kernel_size = index, k
        out = torch.baddbmm(bias.view(c, 1, 1), columns, matrix.transpose(1, 2))  # (C, B, n)
        return out.permute(1, 2, 0).contiguous()

    @staticmethod
    @torch.amp.custom_bwd(device_type="cpu")
    def backward(ctx, grad: torch.Tensor):
        columns, matrix = ctx.saved_tensors
        c, k = matrix.shape[0], ctx.kernel_size
        grad_columns = grad.permute(2, 0, 1).contiguous()  # (C, B, n_out)
        grad_matrix = torch.bmm(grad_columns.transpose(1, 2), columns)  # (C, n_out, n_in)
        grad_taps = grad_matrix.new_zeros(c, k * k + 1).index_add_(1, ctx.index.flatten(), grad_matrix.reshape(c, -1))
        grad_weight = grad_taps[:, : k * k].reshape(c, 1, k, k)
        return torch.bmm(grad_columns, matrix), grad_weight, grad_columns.sum((1, 2)), None, None
