"""Plate persistence: plates stored per resolution as ``<plate_dir>/plate_<W>x<H>.png`` (RGB
content, written atomically), so a restarted node finds the plate of every camera size it has seen.
"""
import os
import re
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

from ..files import atomic_write

__all__ = ["plate_file", "save_plate", "load_plates", "remove_plates"]

_PLATE_NAME = re.compile(r"^plate_(\d+)x(\d+)\.png$")


def plate_file(plate_dir: str, size: Tuple[int, int]) -> str:
    """Path of the plate for ``size`` = (H, W): ``<plate_dir>/plate_<W>x<H>.png``."""
    h, w = size
    return os.path.join(plate_dir, f"plate_{w}x{h}.png")


def save_plate(plate_dir: str, plate: np.ndarray) -> str:
    """Write ``plate`` ((H, W, 3) uint8 RGB) atomically as a PNG; returns its path."""
    if plate.ndim != 3 or plate.shape[2] != 3 or plate.dtype != np.uint8:
        raise ValueError(f"a plate must be (H, W, 3) uint8, got {plate.shape} {plate.dtype}")
    path = plate_file(plate_dir, plate.shape[:2])
    opencv_order = np.ascontiguousarray(plate[:, :, ::-1])     # cv2 writes blue, green, red

    def write(tmp: str) -> None:
        if not cv2.imwrite(tmp, opencv_order):
            raise OSError(f"OpenCV could not write {tmp}")

    atomic_write(path, write)
    return path


def load_plates(plate_dir: str) -> Tuple[Dict[Tuple[int, int], np.ndarray], List[str]]:
    """Every plate stored in ``plate_dir``: ({(H, W): (H, W, 3) uint8 RGB}, problems).

    Files that cannot be read or whose content does not match the size in their name are skipped
    and described in ``problems``; a missing directory simply holds no plates.
    """
    plates: Dict[Tuple[int, int], np.ndarray] = {}
    problems: List[str] = []
    if not os.path.isdir(plate_dir):
        return plates, problems
    for name in sorted(os.listdir(plate_dir)):
        m = _PLATE_NAME.match(name)
        if m is None:
            continue
        path = os.path.join(plate_dir, name)
        size = (int(m.group(2)), int(m.group(1)))
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            problems.append(f"{path}: not a readable image")
            continue
        if img.shape[:2] != size:
            problems.append(f"{path}: image is {img.shape[1]}x{img.shape[0]}, the name says {size[1]}x{size[0]}")
            continue
        plates[size] = np.ascontiguousarray(img[:, :, ::-1])
    return plates, problems


def remove_plates(plate_dir: str, size: Optional[Tuple[int, int]] = None) -> List[str]:
    """Delete the stored plate of ``size`` = (H, W), or every stored plate when None; the removed paths."""
    if size is not None:
        paths = [plate_file(plate_dir, size)]
    elif os.path.isdir(plate_dir):
        paths = [os.path.join(plate_dir, n) for n in sorted(os.listdir(plate_dir)) if _PLATE_NAME.match(n)]
    else:
        paths = []
    removed = []
    for path in paths:
        if os.path.exists(path):
            os.remove(path)
            removed.append(path)
    return removed
