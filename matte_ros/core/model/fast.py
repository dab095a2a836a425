"""FastRefine: an inference-only execution of a MattingRefine that computes the same numbers
(within float32 rounding) with much less work per frame.

    fast = FastRefine(model)            # BatchNorm folded into the convs, channels_last weights
    plate = fast.prepare_plate(bgr)     # once per background: padded plate, half-res plate, coarse plate
    pha, fgr = fast(src, plate)         # every frame: (B, 1, H, W), (B, 3, H, W)

Where the time goes in the straightforward network, and what this does instead:
- plate-side work (padding, the half-resolution and backbone-scale copies of ``bgr``) is done
  once per plate, not per frame;
- the refiner's half-resolution input (hidden features, coarse alpha and foreground and src
  resampled, 42 channels) is never built for the whole frame: it is interpolated only inside the
  windows the refiner reads (:func:`bilinear_windows`), and src/bgr patches are gathered directly,
  into one channels_last buffer per stage, so there are no full-resolution concatenations or
  padded copies;
- neighbouring selected patches are refined together as one tile (the convolutions are valid, so
  each output pixel is the same), which computes their overlapping context once;
- the coarse alpha/foreground are upsampled once, refined patches are written into that buffer
  and the final clamp/add run in place.
The settings (``backbone_scale``, refine mode, sample pixels, threshold, prevent_oversampling) are
read from the wrapped model at every call, so live changes to it take effect; the weights are a
snapshot taken at construction.
"""
import copy
from typing import Dict, Optional, Tuple

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .matting import MattingRefine, check_inputs
from .patches import replace_patches

__all__ = ["FastRefine", "Plate", "fold_batchnorm", "windows", "bilinear_windows"]


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """A float32 eval-mode copy of ``module`` in which every BatchNorm2d registered right after the
    Conv2d it normalises (the layout of every BGMv2 block) is folded into that conv's weight and
    bias and replaced by ``nn.Identity``."""
    module = copy.deepcopy(module).float().eval()
    for parent in list(module.modules()):
        names = list(parent._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = parent._modules[a], parent._modules[b]
            if (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
                    and bn.num_features == conv.out_channels and bn.track_running_stats):
                parent._modules[a] = fuse_conv_bn_eval(conv, bn)
                parent._modules[b] = nn.Identity()
    return module


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


def windows(x: torch.Tensor, b: torch.Tensor, y0: torch.Tensor, x0: torch.Tensor, size: int) -> torch.Tensor:
    """x: (B, C, H, W); b, y0, x0: (P,) image index and window origin (may be negative)
    -> (P, size, size, C): the windows, zeros outside the image."""
    H, W = x.shape[2], x.shape[3]
    ar = torch.arange(size, device=x.device)
    ys, xs = y0[:, None] + ar, x0[:, None] + ar
    win = _gather(x, b, ys.clamp(0, H - 1), xs.clamp(0, W - 1))
    inside = ((ys >= 0) & (ys < H))[:, :, None] & ((xs >= 0) & (xs < W))[:, None, :]
    return win * inside.unsqueeze(-1).to(win.dtype)


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


def bilinear_windows(x: torch.Tensor, out_hw: Tuple[int, int], b: torch.Tensor, y0: torch.Tensor,
                     x0: torch.Tensor, size: int, out: Optional[torch.Tensor] = None,
                     transform=None) -> torch.Tensor:
    """The (size x size) windows at (y0, x0) of ``F.interpolate(x, out_hw, mode="bilinear",
    align_corners=False)`` zero-padded outside out_hw, computed without the full interpolation.

    x: (B, C, h, w) (channels_last is fastest); b, y0, x0: (P,) -> (P, size, size, C), written into
    ``out`` when given. Each window reads a (Kh, Kw) block of x (``transform`` may change the block
    in place first, e.g. a pointwise activation). On the CPU the two axes are interpolated by lerps
    shared by groups of windows; elsewhere (no host synchronisation) by per-window weight matrices.
    """
    h, w = x.shape[2], x.shape[3]
    kh = int(-(-(size - 1) * h // out_hw[0])) + 2
    kw = int(-(-(size - 1) * w // out_hw[1])) + 2
    ty, tx = _axis_taps(y0, size, h, out_hw[0]), _axis_taps(x0, size, w, out_hw[1])
    oy, ox = ty[0][:, 0], tx[0][:, 0]
    rows = (oy[:, None] + torch.arange(kh, device=x.device)).clamp_max(h - 1)
    cols = (ox[:, None] + torch.arange(kw, device=x.device)).clamp_max(w - 1)
    block = _gather(x, b, rows, cols)                                           # (P, kh, kw, C)
    if transform is not None:
        transform(block)
    if out is None:
        out = torch.empty(b.shape[0], size, size, x.shape[1], dtype=x.dtype, device=x.device)
    if x.device.type != "cpu":
        wy, wx = _axis_weights(ty, oy, kh).to(x.dtype), _axis_weights(tx, ox, kw).to(x.dtype)
        out.copy_(torch.einsum("pik,pjl,pklc->pijc", wy, wx, block))
        return out
    rows_done = torch.empty(b.shape[0], size, kw, x.shape[1], dtype=x.dtype)
    _lerp_axis(block, ty, oy, 1, rows_done)
    _lerp_axis(rows_done, tx, ox, 2, out)
    return out


class Plate:
    """A background plate prepared once for a FastRefine.

    bgr: (B, 3, H4, W4) replicate-padded to a multiple of 4 (as MattingRefine pads);
    half: (B, 3, H4/2, W4/2) its bilinear half-resolution copy (the refiner's input);
    size: (H, W) before padding. ``small(scale)`` is the backbone-scale copy, cached per scale.
    """

    def __init__(self, bgr: torch.Tensor, size: Tuple[int, int]):
        half = F.interpolate(bgr, (bgr.shape[2] // 2, bgr.shape[3] // 2), mode="bilinear", align_corners=False)
        self.bgr = bgr.contiguous(memory_format=torch.channels_last)       # pixel rows: cheap patch gathers
        self.half = half.contiguous(memory_format=torch.channels_last)
        self.size = size
        self._small: Dict[float, torch.Tensor] = {}

    def small(self, scale: float) -> torch.Tensor:
        if scale not in self._small:
            self._small[scale] = F.interpolate(self.bgr, scale_factor=scale, mode="bilinear", align_corners=False,
                                               recompute_scale_factor=True)
        return self._small[scale]


def _coarse_activations(block: torch.Tensor) -> None:
    """In place on (..., 37) channels of the decoder output: what the refiner reads of them
    (pha clamped to 0..1, the hidden channels ReLU'd; fgr residual and err unchanged)."""
    block[..., 0].clamp_(0.0, 1.0)
    block[..., 5:].relu_()


def _permuted_conv1(conv: nn.Conv2d) -> nn.Conv2d:
    """The refiner's first conv reading [pha, fgr(3), err, hid(32), src(3), bgr(3)] (the decoder
    output's own order, err with weight 0) instead of [hid(32), pha, fgr(3), src(3), bgr(3)]."""
    w = conv.weight
    hid = w.shape[1] - 10
    out = nn.Conv2d(w.shape[1] + 1, w.shape[0], conv.kernel_size, bias=conv.bias is not None)
    out = out.to(w.device, w.dtype)
    with torch.no_grad():
        out.weight.copy_(torch.cat([w[:, hid:hid + 4], torch.zeros_like(w[:, :1]), w[:, :hid], w[:, hid + 4:]], 1))
        if conv.bias is not None:
            out.bias.copy_(conv.bias)
    return out.to(memory_format=torch.channels_last).eval()


def _pad4(x: torch.Tensor) -> torch.Tensor:
    H, W = x.shape[2], x.shape[3]
    pad_h, pad_w = (4 - H % 4) % 4, (4 - W % 4) % 4
    return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate") if pad_h + pad_w else x


class FastRefine:
    """Inference-only MattingRefine: ``FastRefine(model)(src, plate) -> (pha, fgr)``, equal to
    ``model(src, bgr)[:2]`` within float32 rounding.

    model: a MattingRefine (its settings are read at every call); dtype: the network's compute
    dtype (default: the model's; torch.bfloat16 on CPUs with AVX-512 BF16, torch.float16 on CUDA).
    src: (B, 3, H, W) float 0..1; plate from ``prepare_plate`` with batch 1 or B.
    Returns pha: (B, 1, H, W), fgr: (B, 3, H, W) in the dtype of src.

    ``sync_free`` (default: True on CUDA) makes sampling mode free of host synchronisation: with
    prevent_oversampling, patches whose error is 0 are refined anyway and their coarse values put
    back, instead of being dropped before refinement (which needs their count on the host).
    """

    def __init__(self, model: MattingRefine, dtype: Optional[torch.dtype] = None):
        if not isinstance(model, MattingRefine):
            raise ValueError(f"FastRefine needs a MattingRefine, got {type(model).__name__}")
        param = next(model.parameters())
        self.model = model
        self.device = param.device
        self.dtype = dtype or param.dtype
        self.net = fold_batchnorm(model).to(self.device, self.dtype, memory_format=torch.channels_last)
        self.sync_free = self.device.type == "cuda"
        self._conv1 = _permuted_conv1(self.net.refiner.conv1)

    @torch.inference_mode()
    def prepare_plate(self, bgr: torch.Tensor) -> Plate:
        """bgr: (B, 3, H, W) float 0..1 background plate -> Plate (on the model's device and dtype)."""
        check_inputs(bgr, bgr)
        return Plate(_pad4(bgr.to(self.device, self.dtype)), (bgr.shape[2], bgr.shape[3]))

    @torch.inference_mode()
    def __call__(self, src: torch.Tensor, plate: Plate) -> Tuple[torch.Tensor, torch.Tensor]:
        check_inputs(src, src)
        if plate.size != (src.shape[2], src.shape[3]) or plate.bgr.shape[0] not in (1, src.shape[0]):
            raise ValueError(f"plate is {plate.bgr.shape[0]}x{plate.size} (batch x (H, W)) but src is "
                             f"{src.shape[0]}x{tuple(src.shape[2:])}; prepare a plate of the frame's size")
        scale = self.model.backbone_scale
        if not 0.0 < scale <= 0.5:
            raise ValueError(f"backbone_scale must be in (0, 1/2], got {scale}")
        H, W = src.shape[2], src.shape[3]
        src = _pad4(src)
        B, dt = src.shape[0], self.dtype
        src_sm = F.interpolate(src, scale_factor=scale, mode="bilinear", align_corners=False,
                               recompute_scale_factor=True)
        bgr_sm = plate.small(scale).expand(B, -1, -1, -1)
        x = torch.cat([src_sm.to(dt), bgr_sm], dim=1).contiguous(memory_format=torch.channels_last)
        f = self.net.backbone(x)
        x = self.net.decoder(self.net.aspp(f[0]), f[1], f[2], f[3], f[4])   # (B, 37, h, w) as MattingBase.coarse
        pha_sm = x[:, 0:1].clamp(0.0, 1.0)
        coarse = torch.cat([pha_sm, x[:, 1:4]], dim=1)                      # pha_sm ++ fgr_sm residual
        if self.model.refiner.mode == "full":
            out = self._refine_full(src, plate, x, coarse)
        else:
            out = self._refine_patches(src, plate, x, coarse)
        out[:, :1].clamp_(0.0, 1.0)
        out[:, 1:].add_(src).clamp_(0.0, 1.0)
        return out[:, :1, :H, :W], out[:, 1:, :H, :W]

    def _select(self, err: torch.Tensor) -> Tuple[Tuple[torch.Tensor, ...], Optional[torch.Tensor]]:
        """err: (B, 1, h4, w4) -> patch indices (b, row, col) and, in sync-free mode, the keep mask."""
        r = self.model.refiner
        B, _, h4, w4 = err.shape
        if r.mode == "thresholding":
            nz = err[:, 0].gt(r.threshold).nonzero()
            return (nz[:, 0], nz[:, 1], nz[:, 2]), None
        k = min(r.sample_pixels // 16, h4 * w4)
        top = err.view(B, -1).topk(k, dim=1, sorted=False)
        flat, b = top.indices.reshape(-1), torch.arange(B, device=err.device).repeat_interleave(k)
        idx = (b, torch.div(flat, w4, rounding_mode="floor"), flat % w4)
        if not r.prevent_oversampling:
            return idx, None
        keep = top.values.reshape(-1).gt(0)
        if self.sync_free:
            return idx, keep
        return tuple(i[keep] for i in idx), None

    def _refine_patches(self, src: torch.Tensor, plate: Plate, x: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        """Sampling / thresholding: refine the selected 4x4 patches -> (B, 4, H4, W4) pha ++ fgr residual."""
        H, W = src.shape[2], src.shape[3]
        err = F.interpolate(x[:, 4:5].clamp(0.0, 1.0), (H // 4, W // 4), mode="bilinear", align_corners=False)
        idx, keep = self._select(err)
        out = F.interpolate(coarse.to(src.dtype).contiguous(), (H, W), mode="bilinear", align_corners=False)
        if idx[0].numel() == 0:
            return out
        b, row, col = idx
        m = 1 if self.sync_free else self._tile_size(idx, err.shape)
        if m == 1:
            y = self._refine_tiles(src, plate, x, b, row, col, 1)               # (P, 4, 4, 4)
        else:
            y = self._refine_tiles_of(src, plate, x, idx, err.shape, m)
        if keep is not None:
            grid = out.view(out.shape[0], 4, H // 4, 4, W // 4, 4).permute(0, 2, 4, 1, 3, 5)
            y = torch.where(keep[:, None, None, None], y, grid[b, row, col])
        return replace_patches(out, y.contiguous(), idx, "scatter_nd")

    def _tile_size(self, idx: Tuple[torch.Tensor, ...], grid_shape: torch.Size) -> int:
        """Patches per tile side m for the selected patches: the one of 1, 2, 4, 8 with the least
        estimated work. An (m x m) tile of patches runs the refiner once with the context once, which
        is far less work per pixel than m*m separate windows when the patches cluster (they follow
        the subject's outline), and more when they are scattered."""
        ref = self.net.refiner
        c1, c2, c3 = self._conv1.out_channels, ref.conv2.out_channels, ref.conv3.out_channels
        c0, cf = self._conv1.in_channels, ref.conv3.in_channels
        k = ref.kernel_size // 2                                  # context per conv: 1 (k3) or 0 (k1)
        mask = torch.zeros(grid_shape[0], 1, grid_shape[2], grid_shape[3], device=idx[0].device)
        mask[idx[0], 0, idx[1], idx[2]] = 1.0
        best, best_cost = 1, None
        for m in (1, 2, 4, 8):
            n = idx[0].numel() if m == 1 else int(F.max_pool2d(mask, m, m, ceil_mode=True).sum())
            h, f = 2 * m, 4 * m
            cost = n * ((h + 4 * k) ** 2 * c1 * c0 + (h + 2 * k) ** 2 * c2 * c1
                        + (f + 2 * k) ** 2 * c3 * cf + f * f * 4 * c3)
            if best_cost is None or cost < best_cost:
                best, best_cost = m, cost
        return best

    def _refine_tiles_of(self, src: torch.Tensor, plate: Plate, x: torch.Tensor, idx: Tuple[torch.Tensor, ...],
                         grid_shape: torch.Size, m: int) -> torch.Tensor:
        """The selected patches (P, 4, 4, 4), refined in (m x m)-patch tiles."""
        b, row, col = idx
        th, tw = -(-grid_shape[2] // m), -(-grid_shape[3] // m)
        tile = (b * th + row // m) * tw + col // m                          # each patch's tile
        tiles, which = torch.unique(tile, return_inverse=True)
        tb, tr, tc = tiles // (th * tw), (tiles // tw) % th, tiles % tw
        y = self._refine_tiles(src, plate, x, tb, tr, tc, m)                # (T, 4, 4m, 4m)
        y = y.view(y.shape[0], 4, m, 4, m, 4).permute(0, 2, 4, 1, 3, 5)
        return y[which, row % m, col % m]

    def _refine_tiles(self, src: torch.Tensor, plate: Plate, x: torch.Tensor, b: torch.Tensor, row: torch.Tensor,
                      col: torch.Tensor, m: int) -> torch.Tensor:
        """The refiner on tiles of (m x m) patches at (b, row, col) in units of tiles -> (T, 4, 4m, 4m).
        Valid convolutions make every output pixel the same as the published per-patch refinement's."""
        ref = self.net.refiner
        H, W = src.shape[2], src.shape[3]
        bp = b if plate.bgr.shape[0] > 1 else torch.zeros_like(b)
        ph, pf = (3, 2) if ref.kernel_size == 3 else (0, 0)
        sh, sf = 2 * m + 2 * ph, 4 * m + 2 * pf
        T, dev, dt = b.shape[0], src.device, self.dtype
        hy, hx, fy, fx = 2 * m * row - ph, 2 * m * col - ph, 4 * m * row - pf, 4 * m * col - pf
        # Stage 1 input, channels last: x's 37 channels (pha clamped, fgr, err, hid ReLU'd) upsampled
        # to half resolution inside the windows, then src and plate at half resolution. conv1's weight
        # was permuted to this order at construction (err gets weight 0).
        y = torch.empty(T, sh, sh, x.shape[1] + 6, dtype=dt, device=dev)
        half = (H // 2, W // 2)
        bilinear_windows(x, half, b, hy, hx, sh, out=y[..., :x.shape[1]], transform=_coarse_activations)
        bilinear_windows(src.to(dt), half, b, hy, hx, sh, out=y[..., -6:-3])   # src at half resolution
        y[..., -3:] = windows(plate.half, bp, hy, hx, sh)
        y = F.relu(self._conv1(y.permute(0, 3, 1, 2)))
        y = ref.relu(ref.conv2(y))                                           # (T, 16, sf/2, sf/2)
        # Stage 2 input: y upsampled 2x (nearest), then src and plate at full resolution.
        C, s = y.shape[1], y.shape[2]
        z = torch.empty(T, sf, sf, C + 6, dtype=dt, device=dev)
        z[..., :C].view(T, s, 2, s, 2, C).copy_(y.permute(0, 2, 3, 1)[:, :, None, :, None, :].expand(T, s, 2, s, 2, C))
        z[..., C:C + 3] = windows(src, b, fy, fx, sf)
        z[..., C + 3:] = windows(plate.bgr, bp, fy, fx, sf)
        return ref._stage2(z.permute(0, 3, 1, 2)).to(src.dtype)

    def _refine_full(self, src: torch.Tensor, plate: Plate, x: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        """Full mode: the refiner on every pixel (dense convolutions) -> (B, 4, H4, W4)."""
        ref, dt = self.net.refiner, self.dtype
        B, H, W = src.shape[0], src.shape[2], src.shape[3]
        half = (H // 2, W // 2)
        bgr, bgr_half = plate.bgr.expand(B, -1, -1, -1), plate.half.expand(B, -1, -1, -1)
        y = F.interpolate(torch.cat([x[:, 5:].relu(), coarse], dim=1), half, mode="bilinear", align_corners=False)
        src_half = F.interpolate(src, half, mode="bilinear", align_corners=False).to(dt)
        k3 = ref.kernel_size == 3
        y = torch.cat([y, src_half, bgr_half], dim=1)
        y = ref._stage1(F.pad(y, (3, 3, 3, 3)) if k3 else y)
        y = F.interpolate(y, (H + 4, W + 4) if k3 else (H, W), mode="nearest")
        full = torch.cat([src.to(dt), bgr], dim=1)
        y = ref._stage2(torch.cat([y, F.pad(full, (2, 2, 2, 2)) if k3 else full], dim=1))
        return y.to(src.dtype).contiguous()
