"""Selected 4x4 patches grouped into tiles for the refiner.

The refiner's convolutions are unpadded, so an output pixel depends only on its window, and a tile
of m x m neighbouring patches run as one window gives every pixel the same value as m * m
separate windows, computing their overlapping context once (at m = 4 the first convolution
computes 144 instead of 576 outputs per 16 patches). Selected patches follow the subject's
outline, so they cluster, but not everywhere alike: along a thin outline a tile holds a few
patches, in hair or a motion-blurred limb all of them. So each 8 x 8 tile is refined whole or as
its four quadrants, each of those whole or split again, down to single patches, whichever has the
least estimated work (the refiner pays for a tile's unselected patches too).

    sides = tile_sides(idx, grid_shape, cost)        # (P,) 1, 2, 4 or 8 per selected patch
    tb, tr, tc, which = tiles_of(idx, grid_shape, m) # the tiles of side m holding the patches
"""
from typing import Callable, Tuple

import torch

__all__ = ["TILE_SIDES", "tile_sides", "tiles_of"]

TILE_SIDES = (1, 2, 4, 8)       # patches per side of the tiles the refiner runs on
Index = Tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def tile_sides(idx: Index, grid_shape: Tuple[int, ...], cost: Callable[[int], float]) -> torch.Tensor:
    """idx: the selected patches (b, row, col), each (P,), on a (B, 1, h4, w4) patch grid; cost(m):
    the estimated work of one tile of side m -> (P,) the side of the tile each patch is refined in.
    Bottom up, a tile's best cost is its own or the sum of its occupied quadrants' best costs
    (ties: whole); top down, a patch takes the largest tile that is kept whole."""
    nodes = [tiles_of(idx, grid_shape, m)[3] for m in TILE_SIDES]      # each patch's tile, numbered 0..
    best = torch.full((idx[0].numel(),), cost(1), dtype=torch.float64)
    whole = []
    for child, parent, m in zip(nodes, nodes[1:], TILE_SIDES[1:]):
        up = torch.zeros(best.numel(), dtype=torch.long).scatter_(0, child, parent)   # child tile -> parent
        split = torch.zeros(int(parent.max()) + 1, dtype=torch.float64).index_add_(0, up, best)
        whole.append(split >= cost(m))
        best = torch.where(whole[-1], torch.full_like(split, cost(m)), split)
    sides = torch.ones_like(idx[0])
    decided = torch.zeros_like(idx[0], dtype=torch.bool)
    for parent, keep_whole, m in reversed(list(zip(nodes[1:], whole, TILE_SIDES[1:]))):
        take = keep_whole[parent] & ~decided
        sides[take] = m
        decided |= take
    return sides


def tiles_of(idx: Index, grid_shape: Tuple[int, ...], m: int) -> Tuple[torch.Tensor, ...]:
    """The tiles of side m holding the patches idx: their (b, row, col) in units of tiles, each
    (T,), and which tile each patch is in (P,)."""
    b, row, col = idx
    th, tw = -(-grid_shape[2] // m), -(-grid_shape[3] // m)
    tiles, which = torch.unique((b * th + row // m) * tw + col // m, return_inverse=True)
    return tiles // (th * tw), (tiles // tw) % th, tiles % tw, which
