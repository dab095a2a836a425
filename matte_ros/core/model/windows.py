"""Windows of an image and of its bilinear resize, gathered for a set of patches without
building the whole (resized) image: what the fast refiner reads around each selected patch.

    win = windows(x, b, y0, x0, size)                       # zero-padded crops of x
    win = bilinear_windows(x, (oh, ow), b, y0, x0, size)    # crops of F.interpolate(x, (oh, ow))
"""
from typing import Optional, Tuple

import torch
from torch.nn import functional as F

__all__ = ["windows", "bilinear_windows", "clamped_block"]


def _gather(x: torch.Tensor, b: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """x: (B, C, H, W); b: (P,), ys: (P, m), xs: (P, n) in-range indices -> (P, m, n, C).
    Channels_last x: whole pixel rows are copied; otherwise each channel plane is indexed (no
    copy of x itself)."""
    B, C, H, W = x.shape
    flat = ((b[:, None, None] * H + ys[:, :, None]) * W + xs[:, None, :]).reshape(-1)
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        out = x.permute(0, 2, 3, 1).reshape(-1, C).index_select(0, flat)
    else:
        out = x.transpose(0, 1).reshape(C, -1).index_select(1, flat).t()
    return out.reshape(b.shape[0], ys.shape[1], xs.shape[1], C)


def clamped_block(x: torch.Tensor, b: torch.Tensor, oy: torch.Tensor, ox: torch.Tensor, kh: int,
                  kw: int) -> torch.Tensor:
    """x: (B, C, h, w) -> (P, kh, kw, C): rows oy..oy+kh-1 and columns ox..ox+kw-1 (oy, ox >= 0)
    of image b, the indices past the end clamped to the last row / column."""
    rows = (oy[:, None] + torch.arange(kh, device=x.device)).clamp_max(x.shape[2] - 1)
    cols = (ox[:, None] + torch.arange(kw, device=x.device)).clamp_max(x.shape[3] - 1)
    return _gather(x, b, rows, cols)


def windows(x: torch.Tensor, b: torch.Tensor, y0: torch.Tensor, x0: torch.Tensor, size: int,
            out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """x: (B, C, H, W); b, y0, x0: (P,) image index and window origin (may be negative)
    -> (P, size, size, C): the windows, zeros outside the image, written into ``out`` (any dtype)
    when given. On the CPU only the windows that cross the border are masked."""
    H, W = x.shape[2], x.shape[3]
    ar = torch.arange(size, device=x.device)
    ys, xs = y0[:, None] + ar, x0[:, None] + ar
    win = _gather(x, b, ys.clamp(0, H - 1), xs.clamp(0, W - 1))
    if x.device.type == "cpu":
        edge = ((y0 < 0) | (y0 + size > H) | (x0 < 0) | (x0 + size > W)).nonzero().squeeze(1)
        if edge.numel():
            inside = ((ys[edge] >= 0) & (ys[edge] < H))[:, :, None] & ((xs[edge] >= 0) & (xs[edge] < W))[:, None, :]
            win[edge] = win[edge] * inside.unsqueeze(-1).to(win.dtype)
    else:                                        # no host synchronisation: mask every window
        inside = ((ys >= 0) & (ys < H))[:, :, None] & ((xs >= 0) & (xs < W))[:, None, :]
        win = win * inside.unsqueeze(-1).to(win.dtype)
    if out is None:
        return win
    out.copy_(win)
    return out


def _axis_taps(start: torch.Tensor, size: int, n_in: int, n_out: int) -> Tuple[torch.Tensor, ...]:
    """Bilinear (align_corners=False) taps of output rows ``start + 0..size-1`` of an n_in -> n_out
    resize, as PyTorch's kernel computes them: input rows i0, i1 (P, size), the weight lam of i1,
    and inside (P, size): False for rows outside 0..n_out-1 (zero padding)."""
    rows = start[:, None] + torch.arange(size, device=start.device)
    pos = ((rows.to(torch.float32) + 0.5) * (n_in / n_out) - 0.5).clamp_min(0.0)
    i0 = pos.floor().long().clamp_max(n_in - 1)
    return i0, (i0 + 1).clamp_max(n_in - 1), (pos - i0).clamp(0.0, 1.0), (rows >= 0) & (rows < n_out)


def _axis_weights(taps: Tuple[torch.Tensor, ...], origin: torch.Tensor, block: int) -> torch.Tensor:
    """The taps as dense per-window weights (P, size, block) over a block starting at ``origin``."""
    i0, i1, lam, inside = taps
    inside = inside.to(torch.float32)
    wts = torch.zeros(i0.shape[0], i0.shape[1], block, device=i0.device)
    wts.scatter_add_(2, (i0 - origin[:, None]).unsqueeze(-1), ((1.0 - lam) * inside).unsqueeze(-1))
    wts.scatter_add_(2, (i1 - origin[:, None]).unsqueeze(-1), (lam * inside).unsqueeze(-1))
    return wts


def _groups(key: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Rows of ``key`` (P, K) grouped by equality -> (distinct rows (G, K), group of each row (P,)),
    the largest group first. Rows are told apart by a float64 projection, checked exactly."""
    k64 = key.to(torch.float64)
    proj = k64 @ torch.linspace(1.0, 2.0, key.shape[1], dtype=torch.float64, device=key.device).exp()
    values, which, counts = torch.unique(proj, return_inverse=True, return_counts=True)
    first = torch.full((values.shape[0],), key.shape[0], dtype=torch.long, device=key.device)
    first.scatter_reduce_(0, which, torch.arange(key.shape[0], device=key.device), "amin")
    groups = key[first]
    if not torch.equal(groups[which], key):                     # two patterns projected alike
        groups, which, counts = torch.unique(key, dim=0, return_inverse=True, return_counts=True)
    order = counts.argsort(descending=True)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.shape[0], device=order.device)
    return groups[order], rank[which]


def _lerp_axis(src: torch.Tensor, taps: Tuple[torch.Tensor, ...], origin: torch.Tensor, dim: int,
               out: torch.Tensor) -> None:
    """Interpolate ``src`` (P, ...) along ``dim`` into ``out`` with per-window taps: one lerp per
    output row for each group of windows that share their taps relative to ``origin``. The interior
    windows of a resize by an integer or simple fraction share a few patterns, so the largest group
    is computed for every window at once and the few others are redone on their own."""
    i0, i1, lam, inside = taps
    key = torch.cat([(i0 - origin[:, None]).to(torch.float32), (i1 - origin[:, None]).to(torch.float32),
                     lam, inside.to(torch.float32)], dim=1)
    groups, which = _groups(key)
    size = i0.shape[1]
    for g, row in enumerate(groups.tolist()):
        members = None if g == 0 else (which == g).nonzero().squeeze(1)
        s = src if members is None else src.index_select(0, members)
        o = out if members is None else torch.empty((s.shape[0],) + out.shape[1:], dtype=out.dtype)
        for i in range(size):
            a, b, w, keep = int(row[i]), int(row[size + i]), row[2 * size + i], row[3 * size + i]
            dst = o.select(dim, i)
            if not keep:
                dst.zero_()
            elif a == b or w == 0.0:
                dst.copy_(s.select(dim, a))
            else:
                torch.lerp(s.select(dim, a), s.select(dim, b), w, out=dst)
        if members is not None:
            out.index_copy_(0, members, o)


def bilinear_windows(x, out_hw: Tuple[int, int], b: torch.Tensor, y0: torch.Tensor,
                     x0: torch.Tensor, size: int, out: Optional[torch.Tensor] = None,
                     transform=None) -> torch.Tensor:
    """The (size x size) windows at (y0, x0) of ``F.interpolate(x, out_hw, mode="bilinear",
    align_corners=False)`` zero-padded outside out_hw, computed without the full interpolation.

    x: (B, C, h, w) (channels_last is fastest), or a source of blocks with ``shape``, ``dtype``,
    ``device`` and ``block(b, oy, ox, kh, kw) -> (P, kh, kw, C)`` (such as
    :class:`~matte_ros.core.model.hidden.CoarseWindows`); b, y0, x0: (P,) -> (P, size, size, C),
    written into ``out`` (any dtype) when given. Each window reads a (Kh, Kw) block of x
    (``transform`` may change the block in place first, e.g. a pointwise activation). On the CPU
    at whole power-of-two ratios (2x, 4x, ...) each window is a crop of its block upsampled by
    F.interpolate; at other ratios the two axes are interpolated by lerps shared by groups of
    windows; elsewhere (no host synchronisation) by per-window weight matrices.
    """
    if out is not None and out.dtype != x.dtype:          # computed in x's dtype, cast on the copy
        return out.copy_(bilinear_windows(x, out_hw, b, y0, x0, size, transform=transform))
    h, w = x.shape[2], x.shape[3]
    ty, tx = _axis_taps(y0, size, h, out_hw[0]), _axis_taps(x0, size, w, out_hw[1])
    oy, ox = ty[0][:, 0], tx[0][:, 0]
    if x.device.type == "cpu":                  # the rows and columns the windows read (a sync is free here)
        kh, kw = int((ty[1][:, -1] - oy).max()) + 1, int((tx[1][:, -1] - ox).max()) + 1
    else:                                       # a bound that needs no synchronisation
        kh = int(-(-(size - 1) * h // out_hw[0])) + 2
        kw = int(-(-(size - 1) * w // out_hw[1])) + 2
    if isinstance(x, torch.Tensor):
        block = clamped_block(x, b, oy, ox, kh, kw)                             # (P, kh, kw, C)
    else:
        block = x.block(b, oy, ox, kh, kw)
    if transform is not None:
        transform(block)
    if out is None:
        out = torch.empty(b.shape[0], size, size, x.shape[1], dtype=x.dtype, device=x.device)
    if x.device.type != "cpu":
        wy, wx = _axis_weights(ty, oy, kh).to(x.dtype), _axis_weights(tx, ox, kw).to(x.dtype)
        out.copy_(torch.einsum("pik,pjl,pklc->pijc", wy, wx, block))
        return out
    r = _whole_ratio(h, w, out_hw)
    if r:
        if not isinstance(x, torch.Tensor):               # clamped_block already repeats the last rows
            block = _repeat_last(block, oy, ox, h, w)
        _upsampled_windows(block, r, y0 - r * oy, x0 - r * ox, size, out)
        outside = ~(ty[3].all(1) & tx[3].all(1))
        if outside.any():                                 # zeros outside the resized frame
            edge = outside.nonzero().squeeze(1)
            out[edge] = out[edge] * (ty[3][edge][:, :, None] & tx[3][edge][:, None, :]).unsqueeze(-1).to(out.dtype)
        return out
    rows_done = torch.empty(b.shape[0], size, kw, x.shape[1], dtype=x.dtype)
    _lerp_axis(block, ty, oy, 1, rows_done)
    _lerp_axis(rows_done, tx, ox, 2, out)
    return out


def _whole_ratio(h: int, w: int, out_hw: Tuple[int, int]) -> int:
    """The ratio r where out_hw is (r h, r w) for r = 2, 4, 8, ... (the scale 1/r is exact), else 0."""
    r = out_hw[0] // h
    return r if r >= 2 and r & (r - 1) == 0 and tuple(out_hw) == (r * h, r * w) else 0


def _repeat_last(block: torch.Tensor, oy: torch.Tensor, ox: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """The block (P, kh, kw, C) at (oy, ox) of an (h, w) frame with its rows and columns past the frame's
    end repeating the last ones (a block source may leave anything there)."""
    kh, kw = block.shape[1], block.shape[2]
    over = ((oy + kh > h) | (ox + kw > w)).nonzero().squeeze(1)
    if over.numel():
        rows = torch.minimum(torch.arange(kh), (h - 1 - oy[over])[:, None])
        cols = torch.minimum(torch.arange(kw), (w - 1 - ox[over])[:, None])
        block[over] = block[over[:, None, None], rows[:, :, None], cols[:, None, :]]
    return block


def _upsampled_windows(block: torch.Tensor, r: int, u0y: torch.Tensor, u0x: torch.Tensor, size: int,
                       out: torch.Tensor) -> None:
    """The windows as crops at (u0y, u0x) of their blocks (P, kh, kw, C) upsampled r times by
    F.interpolate, into out (P, size, size, C). A block starts at the first row its window reads
    (row 0 for a window that starts above the frame) and its rows past the frame repeat the last
    one (``_repeat_last``), so inside the frame the block's own edge clamping never applies and every tap and weight
    is the frame's (the scale 1/r is exact): the values are those of resizing the whole frame.
    Rows and columns of a crop outside the block (outside the frame) read its nearest edge."""
    kh, kw = block.shape[1], block.shape[2]
    up = F.interpolate(block.permute(0, 3, 1, 2), size=(r * kh, r * kw), mode="bilinear", align_corners=False)
    ar = torch.arange(size)
    ys, xs = (u0y[:, None] + ar).clamp(0, r * kh - 1), (u0x[:, None] + ar).clamp(0, r * kw - 1)
    out.copy_(_gather(up, torch.arange(block.shape[0]), ys, xs))
