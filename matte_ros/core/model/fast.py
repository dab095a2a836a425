"""FastRefine: an inference-only execution of a MattingRefine that computes the same numbers
(within float32 rounding) with much less work per frame.

    fast = FastRefine(model, dtype=torch.bfloat16)   # BatchNorm folded in fp32, then cast; channels_last
    plate = fast.prepare_plate(bgr, settings)        # once per background: padded, half-res and coarse plate
    pha, fgr = fast(src, plate, settings)            # every frame: (B, 1, H, W), (B, 3, H, W)

Where the time goes in the straightforward network, and what this does instead:
- plate-side work (padding, the half-resolution, phase and backbone-scale copies of ``bgr``) is
  done once per plate, not per frame;
- the decoder's last convolution is split (:mod:`.head`): pha, fgr and err on the whole coarse
  frame, by output phases at half the coarse size where the upsample before it is exactly 2x; the
  32 hidden channels only inside the windows the refiner reads (:mod:`.hidden`);
- the refiner's half-resolution input (hidden features, coarse alpha and foreground and src
  resampled, 42 channels) is never built for the whole frame: it is interpolated only inside the
  windows the refiner reads (:mod:`.windows`); src is gathered once per window at full resolution
  (its 2x2 means are the half-resolution input) into one channels_last buffer;
- neighbouring selected patches are refined together as tiles of 1, 2, 4 or 8 patches per side,
  chosen per region by estimated work (:mod:`.tiles`; the convolutions are valid, so each output
  pixel is the same), which computes their overlapping context once;
- the refiner's first convolution reads the coarse block of tiles inside the frame directly, by
  output phases (:mod:`.stage1`), and its second stage runs at half resolution on pixel phases
  (:mod:`.stage2`);
- on the CPU the coarse pass up to the decoder's last convolution runs as a TorchScript trace
  (:mod:`.traced`), bit-identical, without holding Python's lock between its operations;
- the coarse alpha/foreground are upsampled once (by OpenCV on the CPU, :mod:`.resize`), refined
  patches are written into that buffer and the final clamp/add run in place.
The settings (backbone scale, refine mode, sample pixels, threshold, prevent_oversampling) are a
:class:`RefineSettings` given with each call (default: the model's at construction); the weights
are a folded copy made at construction, and the model itself is not kept.
"""
import copy
import math
from typing import NamedTuple, Optional, Tuple

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ..settings import effective_backbone_scale
from .decoder import up_cat
from .head import SplitHead
from .hidden import CoarseWindows
from .matting import MattingRefine, check_inputs
from .patches import replace_patches
from .refine_settings import RefineSettings
from .resize import bilinear_resize
from .stage2 import to_phases
from .tile_refine import TileRefiner, Tiles
from .tiles import TILE_SIDES, tile_sides, tiles_of
from .traced import TracedCoarse

__all__ = ["FastRefine", "FastOutput", "PreparedPlate", "RefineSettings", "fold_batchnorm"]


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


def _downsample(x: torch.Tensor, scale: float) -> torch.Tensor:
    """The image ``x`` downsampled by ``scale`` as MattingRefine does for its coarse pass (the
    output size floor(size * scale), resampled by size, which is what recompute_scale_factor does)."""
    size = (int(math.floor(x.shape[2] * scale)), int(math.floor(x.shape[3] * scale)))
    return bilinear_resize(x, size)


class PreparedPlate:
    """A background plate prepared once for a FastRefine; not changed after construction.

    bgr: (B, 3, H4, W4) replicate-padded to a multiple of 4 (as MattingRefine pads);
    half: (B, 3, H4/2, W4/2) its bilinear half-resolution copy (the refiner's input);
    size: (H, W) before padding; scale: the coarse scale it was prepared for.
    ``small(scale)`` is the coarse copy: the prepared one at ``scale``, else computed anew.
    """

    def __init__(self, bgr: torch.Tensor, size: Tuple[int, int], scale: float):
        half = F.interpolate(bgr, (bgr.shape[2] // 2, bgr.shape[3] // 2), mode="bilinear", align_corners=False)
        self.bgr = bgr.contiguous(memory_format=torch.channels_last)       # pixel rows: cheap patch gathers
        self.half = half.contiguous(memory_format=torch.channels_last)
        self.phases = to_phases(self.bgr.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # (B, 12, H4/2, W4/2), channels last
        self.size = size
        self.scale = scale
        self._small = _downsample(self.bgr, scale)

    def small(self, scale: float) -> torch.Tensor:
        return self._small if scale == self.scale else _downsample(self.bgr, scale)

    @property
    def key(self) -> Tuple:
        """What a plate that can stand in for this one shares with it: shapes, scale, dtype, device."""
        return tuple(self.bgr.shape), self.size, self.scale, self.bgr.dtype, self.bgr.device

    def clone(self) -> "PreparedPlate":
        """A copy with tensors of its own."""
        other = copy.copy(self)
        for name in _PLATE_TENSORS:
            setattr(other, name, getattr(self, name).clone())
        return other

    def copy_(self, other: "PreparedPlate") -> None:
        """Copy ``other``'s numbers into this plate's tensors (``other.key`` must equal ``key``)."""
        if other.key != self.key:
            raise ValueError(f"cannot copy a plate of {other.key} into one of {self.key}")
        for name in _PLATE_TENSORS:
            getattr(self, name).copy_(getattr(other, name))


_PLATE_TENSORS = ("bgr", "half", "phases", "_small")


class FastOutput(NamedTuple):
    """pha: (B, 1, H, W), fgr: (B, 3, H, W) as ``FastRefine.__call__`` returns them; with maps asked,
    err_sm: (B, 1, Hc, Wc) the coarse error clamped to 0..1 and ref_sm: (B, 1, H4/4, W4/4), 1 where
    a 4x4 patch was refined (MattingRefine's outputs of those names); else None."""
    pha: torch.Tensor
    fgr: torch.Tensor
    err_sm: Optional[torch.Tensor] = None
    ref_sm: Optional[torch.Tensor] = None


def _refined(err: torch.Tensor, idx: Tuple[torch.Tensor, ...], keep: Optional[torch.Tensor]) -> torch.Tensor:
    """err: (B, 1, h4, w4); the selected patches idx = (b, row, col) and their keep mask (None: all
    kept) -> (B, 1, h4, w4), 1 at each kept patch, 0 elsewhere."""
    ref = torch.zeros_like(err)
    ref[idx[0], 0, idx[1], idx[2]] = 1.0 if keep is None else keep.to(err.dtype)
    return ref


def _pad4(x: torch.Tensor) -> torch.Tensor:
    H, W = x.shape[2], x.shape[3]
    pad_h, pad_w = (4 - H % 4) % 4, (4 - W % 4) % 4
    return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate") if pad_h + pad_w else x


class FastRefine:
    """Inference-only MattingRefine: ``FastRefine(model)(src, plate, settings) -> (pha, fgr)``,
    equal to ``model(src, bgr)[:2]`` within float32 rounding when the model has those settings.

    model: a MattingRefine, best in float32: its BatchNorm is folded into the convolutions in
    float32 and only then are the folded weights cast to ``dtype`` (the network's compute dtype;
    default: the model's; torch.bfloat16 on CPUs with AVX-512 BF16, torch.float16 on CUDA) and
    moved to ``device`` (default: the model's). The model is neither changed nor kept: ``net`` (the
    folded copy) is the only copy of the weights this object holds. ``default_settings`` are the
    model's settings at construction, used when a call gives none.
    src: (B, 3, H, W) float 0..1; plate from ``prepare_plate`` with batch 1 or B.
    Returns pha: (B, 1, H, W), fgr: (B, 3, H, W) in the dtype of src.

    ``sync_free`` (default: True on CUDA) makes sampling mode free of host synchronisation: with
    prevent_oversampling, patches whose error is 0 are refined anyway and their coarse values put
    back, instead of being dropped before refinement (which needs their count on the host).
    """

    def __init__(self, model: MattingRefine, dtype: Optional[torch.dtype] = None,
                 device: Optional[torch.device] = None):
        if not isinstance(model, MattingRefine):
            raise ValueError(f"FastRefine needs a MattingRefine, got {type(model).__name__}")
        param = next(model.parameters())
        self.device = param.device if device is None else torch.device(device)
        self.dtype = dtype or param.dtype
        self.default_settings = RefineSettings.of(model)
        folded = fold_batchnorm(model)
        dec, ref = folded.decoder, folded.refiner
        # From the float32 folded weights, before the cast: the phase forms of the head and stages.
        self._head = SplitHead(dec.conv4, dec.conv3.out_channels, self.dtype, self.device)
        self.tiles = TileRefiner(ref, dec.conv4.out_channels, self.dtype, self.device)
        self.net = folded.to(self.device, self.dtype, memory_format=torch.channels_last)
        self.sync_free = self.device.type == "cuda"
        # on the CPU the coarse pass runs as a trace, free of Python's lock (.traced); CUDA has graphs
        self._coarse = TracedCoarse(self.net) if self.device.type == "cpu" else None

    def settings_or_default(self, settings: Optional[RefineSettings]) -> RefineSettings:
        """``settings``, checked to be a RefineSettings, or ``default_settings`` when None."""
        if settings is None:
            return self.default_settings
        if not isinstance(settings, RefineSettings):
            raise ValueError(f"settings must be a RefineSettings, got {type(settings).__name__}")
        return settings

    @staticmethod
    def coarse_scale(settings: RefineSettings, height: int, width: int) -> float:
        """The scale the coarse pass of a (height x width) frame runs at: ``settings.scale_for``,
        raised where it would leave the coarse pass of the padded frame no pixel
        (:func:`~matte_ros.core.settings.effective_backbone_scale`, as MattingRefine does)."""
        return effective_backbone_scale(settings.scale_for(height, width), -(-height // 4) * 4, -(-width // 4) * 4)

    @torch.inference_mode()
    def prepare_plate(self, bgr: torch.Tensor, settings: Optional[RefineSettings] = None) -> PreparedPlate:
        """bgr: (B, 3, H, W) float 0..1 background plate -> PreparedPlate (on this object's device and dtype),
        with its coarse copy at the scale ``settings`` give frames of its size."""
        check_inputs(bgr, bgr)
        s = self.settings_or_default(settings)
        H, W = bgr.shape[2], bgr.shape[3]
        return PreparedPlate(_pad4(bgr.to(self.device, self.dtype)), (H, W), self.coarse_scale(s, H, W))

    def static_shapes(self, settings: RefineSettings) -> bool:
        """Whether a call's work has shapes fixed by the frame's and the settings' alone (no host
        synchronisation): sync-free sampling and full mode (what :mod:`.graphs` captures)."""
        return self.sync_free and settings.mode in ("sampling", "full")

    @staticmethod
    def check(src: torch.Tensor, plate: PreparedPlate) -> None:
        """ValueError unless src is a float (B, 3, H, W) frame that ``plate`` was prepared for."""
        check_inputs(src, src)
        if plate.size != (src.shape[2], src.shape[3]) or plate.bgr.shape[0] not in (1, src.shape[0]):
            raise ValueError(f"plate is {plate.bgr.shape[0]}x{plate.size} (batch x (H, W)) but src is "
                             f"{src.shape[0]}x{tuple(src.shape[2:])}; prepare a plate of the frame's size")

    @torch.inference_mode()
    def __call__(self, src: torch.Tensor, plate: PreparedPlate,
                 settings: Optional[RefineSettings] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        out = self.forward(src, plate, settings)
        return out.pha, out.fgr

    @torch.inference_mode()
    def forward(self, src: torch.Tensor, plate: PreparedPlate, settings: Optional[RefineSettings] = None,
                maps: bool = False) -> FastOutput:
        """As ``__call__``; with ``maps``, also the coarse error and the refinement map of the same
        pass (``FastOutput.err_sm``, ``ref_sm``), as MattingRefine returns them."""
        self.check(src, plate)
        s = self.settings_or_default(settings)
        H, W = src.shape[2], src.shape[3]
        scale = self.coarse_scale(s, H, W)
        src = _pad4(src)
        B, dt = src.shape[0], self.dtype
        src_sm = _downsample(src, scale)
        bgr_sm = plate.small(scale).expand(B, -1, -1, -1)
        x = torch.cat([src_sm.to(dt), bgr_sm], dim=1).contiguous(memory_format=torch.channels_last)
        if self._coarse is not None:
            xl, skip = self._coarse(x)
        else:
            f = self.net.backbone(x)
            xl, skip = self.net.decoder.last_inputs(self.net.aspp(f[0]), f[1], f[2], f[3], f[4])
        if s.mode == "full":
            x = self._head.full(up_cat(xl, skip))                           # (B, 37, h, w) as MattingBase.coarse
        else:
            x = self._head.dense(xl, skip)                                  # pha, fgr, err; hidden per window
        pha_sm = x[:, 0:1].clamp(0.0, 1.0)
        coarse = torch.cat([pha_sm, x[:, 1:4]], dim=1)                      # pha_sm ++ fgr_sm residual
        if s.mode == "full":
            out = self._refine_full(src, plate, x, coarse)
            ref_sm = src.new_ones(B, 1, src.shape[2] // 4, src.shape[3] // 4) if maps else None
        else:
            out, ref_sm = self._refine_patches(src, plate, CoarseWindows(self._head, xl, skip, x), coarse, s, maps)
        out[:, :1].clamp_(0.0, 1.0)
        out[:, 1:].add_(src).clamp_(0.0, 1.0)
        err_sm = x[:, 4:5].clamp(0.0, 1.0) if maps else None
        return FastOutput(out[:, :1, :H, :W], out[:, 1:, :H, :W], err_sm, ref_sm)

    def _select(self, err: torch.Tensor,
                r: RefineSettings) -> Tuple[Tuple[torch.Tensor, ...], Optional[torch.Tensor]]:
        """err: (B, 1, h4, w4) -> patch indices (b, row, col) and, in sync-free mode, the keep mask."""
        B, _, h4, w4 = err.shape
        if r.mode == "thresholding":
            nz = err[:, 0].gt(r.threshold).nonzero()
            return (nz[:, 0], nz[:, 1], nz[:, 2]), None
        k = min(r.sample_pixels // 16, h4 * w4)
        top = err.view(B, -1).topk(k, dim=1, sorted=False)
        flat, b = top.indices.reshape(-1), torch.arange(B, device=err.device)[:, None].expand(B, k).reshape(-1)
        idx = (b, torch.div(flat, w4, rounding_mode="floor"), flat % w4)
        if not r.prevent_oversampling:
            return idx, None
        keep = top.values.reshape(-1).gt(0)
        if self.sync_free:
            return idx, keep
        return tuple(i[keep] for i in idx), None

    def _refine_patches(self, src: torch.Tensor, plate: PreparedPlate, x: CoarseWindows, coarse: torch.Tensor,
                        settings: RefineSettings, maps: bool = False) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Sampling / thresholding: refine the selected 4x4 patches -> (B, 4, H4, W4) pha ++ fgr residual
        and, with ``maps``, ref_sm: (B, 1, H4/4, W4/4), 1 where a patch was refined (else None)."""
        H, W = src.shape[2], src.shape[3]
        err = F.interpolate(x.x5[:, 4:5].clamp(0.0, 1.0), (H // 4, W // 4), mode="bilinear", align_corners=False)
        idx, keep = self._select(err, settings)
        ref_sm = _refined(err, idx, keep) if maps else None
        out = bilinear_resize(coarse, (H, W), src.dtype)
        if idx[0].numel() == 0:
            return out, ref_sm
        if self.sync_free:                                                  # no host sync: one patch per tile
            y = self._refine_tiles(src, plate, x, idx[0], idx[1], idx[2], 1)    # (P, 4, 4, 4)
            if keep is not None:
                grid = out.view(out.shape[0], 4, H // 4, 4, W // 4, 4).permute(0, 2, 4, 1, 3, 5)
                y = torch.where(keep[:, None, None, None], y, grid[idx])
            return replace_patches(out, y.contiguous(), idx, "scatter_nd"), ref_sm
        ratio = x.shape[2] / (H // 2)
        sides = tile_sides(idx, err.shape, lambda m: self._tile_cost(m, ratio))
        if self._phase_tiles(2, x.shape, H, W):          # tiles crossing the frame's edge: single patches
            inside = self.tiles.inside(sides, idx[1] // sides, idx[2] // sides, H, W)
            sides = torch.where(inside, sides, torch.ones_like(sides))
        parts, order = [], []
        for m in TILE_SIDES:
            members = (sides == m).nonzero().squeeze(1)
            if members.numel():
                sub = tuple(i[members] for i in idx)
                parts.append(self._refine_tiles_of(src, plate, x, sub, err.shape, m))
                order.append(sub)
        idx = tuple(torch.cat(i) for i in zip(*order))
        return replace_patches(out, torch.cat(parts).contiguous(), idx, "scatter_nd"), ref_sm

    def _phase_tiles(self, m: int, coarse_shape: Tuple[int, ...], H: int, W: int) -> bool:
        """Whether stage 1 of tiles of side m runs by phases (:mod:`.stage1`): refiner kernel 3,
        tiles of more than one patch, the half resolution exactly twice the coarse size, not
        sync-free (the tiles' windows must lie inside the frame, which ``_refine_patches`` sees to)."""
        return (self.tiles.phase_stage1 is not None and m > 1 and not self.sync_free
                and (H // 2, W // 2) == (2 * coarse_shape[2], 2 * coarse_shape[3]))

    def _tile_cost(self, m: int, ratio: float) -> float:
        """Estimated multiply-adds of refining one tile of m x m patches: the refiner's four
        convolutions on its windows and the decoder's hidden channels on the coarse block they read
        (ratio: coarse size / half size)."""
        hid = self._head
        side = math.ceil((self.tiles.window(m).half_side - 1) * ratio) + 2
        return self.tiles.cost(m) + side * side * (hid.out_channels - 5) * hid.in_channels * 9

    def _refine_tiles_of(self, src: torch.Tensor, plate: PreparedPlate, x: CoarseWindows, idx: Tuple[torch.Tensor, ...],
                         grid_shape: torch.Size, m: int) -> torch.Tensor:
        """The selected patches (P, 4, 4, 4), refined in (m x m)-patch tiles."""
        b, row, col = idx
        if m == 1:
            return self._refine_tiles(src, plate, x, b, row, col, 1)
        tb, tr, tc, which = tiles_of(idx, grid_shape, m)
        y = self._refine_tiles(src, plate, x, tb, tr, tc, m)                # (T, 4, 4m, 4m)
        y = y.view(y.shape[0], 4, m, 4, m, 4).permute(0, 2, 4, 1, 3, 5)
        return y[which, row % m, col % m]

    def _refine_tiles(self, src: torch.Tensor, plate: PreparedPlate, x: CoarseWindows, b: torch.Tensor,
                      row: torch.Tensor, col: torch.Tensor, m: int) -> torch.Tensor:
        """The refiner on tiles of (m x m) patches at (b, row, col) in units of tiles -> (T, 4, 4m, 4m)
        (:mod:`.tile_refine`)."""
        by_phases = self._phase_tiles(m, x.shape, src.shape[2], src.shape[3])
        return self.tiles(src, plate, x, Tiles(b, row, col, m), by_phases)

    def _refine_full(self, src: torch.Tensor, plate: PreparedPlate, x: torch.Tensor,
                     coarse: torch.Tensor) -> torch.Tensor:
        """Full mode: the refiner on every pixel (dense convolutions) -> (B, 4, H4, W4)."""
        ref, dt = self.net.refiner, self.dtype
        B, H, W = src.shape[0], src.shape[2], src.shape[3]
        half = (H // 2, W // 2)
        bgr, bgr_half = plate.bgr.expand(B, -1, -1, -1), plate.half.expand(B, -1, -1, -1)
        y = F.interpolate(torch.cat([x[:, 5:].relu(), coarse], dim=1), half, mode="bilinear", align_corners=False)
        src_half = F.interpolate(src, half, mode="bilinear", align_corners=False).to(dt)
        y = ref.dense(torch.cat([y, src_half, bgr_half], dim=1), torch.cat([src.to(dt), bgr], dim=1))
        return y.to(src.dtype).contiguous()
