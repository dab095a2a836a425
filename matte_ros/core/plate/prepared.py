"""The plates an engine holds: one entry per frame size, with what the network made of it.

    entry = PlateEntry(rgb, u8, scale, prepared, upkeep)     # made by the engine in set_background
    entry = find_plate(plates, h, w)                        # NoBackgroundError / SizeMismatchError
    net_plate = entry.upkept_for(step.plate, settings)      # a compensated plate prepared before, or None
    entry.keep_upkept(step.plate, settings, net_plate)      # what the engine prepared for it

The network's own form of a plate (padding, half-resolution and coarse copies) is made by the
network's execution path (``FastRefine.prepare_plate``); the engine calls it and keeps the result
here. With plate upkeep on, a compensated plate is prepared again only when upkeep hands out a new
plate object (it returns the same object while the camera and the exposure stay put).
"""
from dataclasses import dataclass
from typing import Any, Dict, NamedTuple, Optional, Tuple

import numpy as np

from .upkeep import PlateUpkeep

__all__ = ["PlateEntry", "UpkeptPlate", "find_plate", "NoBackgroundError", "SizeMismatchError"]


class NoBackgroundError(RuntimeError):
    """process() was called before any background plate was set."""


class SizeMismatchError(ValueError):
    """The frame's size differs from every cached background plate."""


class UpkeptPlate(NamedTuple):
    """A compensated plate and what the network made of it for ``settings`` (both compared by identity)."""
    source: np.ndarray
    settings: Any
    prepared: Any


@dataclass
class PlateEntry:
    """One frame size's plate as the engine holds it."""
    rgb: np.ndarray                 # (H, W, 3) uint8, read-only: the plate as given
    u8: Any                         # (H, W, 3) uint8 tensor on the device (to re-prepare when the scale changes)
    scale: Optional[float]          # the coarse scale of frames of this size (None: a model without one)
    prepared: Any                   # what the network's prepare_plate made of it
    upkeep: Optional[PlateUpkeep]   # its upkeep state while upkeep is on
    upkept: Optional[UpkeptPlate] = None   # the last compensated plate prepared for the network

    def upkept_for(self, plate: np.ndarray, settings: Any) -> Optional[Any]:
        """The network's form of compensated ``plate`` for ``settings`` when it was prepared last, else None."""
        last = self.upkept
        if last is not None and last.source is plate and last.settings is settings:
            return last.prepared
        return None

    def keep_upkept(self, plate: np.ndarray, settings: Any, prepared: Any) -> None:
        self.upkept = UpkeptPlate(plate, settings, prepared)


def find_plate(plates: Dict[Tuple[int, int], PlateEntry], h: int, w: int) -> PlateEntry:
    """The entry for (h, w) frames; NoBackgroundError when there is none at all, SizeMismatchError
    when only other sizes have one."""
    p = plates.get((h, w))
    if p is not None:
        return p
    if not plates:
        raise NoBackgroundError("no background plate has been set: call set_background() with a frame of "
                                "the empty scene first")
    sizes = ", ".join(f"{ph}x{pw}" for ph, pw in sorted(plates))
    raise SizeMismatchError(f"frame is {h}x{w} (HxW) but the background plate(s) are {sizes}; "
                            "capture a plate at this frame size")
