"""Training data: the dataset config, start-up scanning, and the on-the-fly compositing dataset.

Layouts of a foreground split (see readme_parts/CONTRACTS.md):
  ``rgba``     one folder of RGBA images, the 4th channel is the alpha (the layout of PhotoMatte85);
  ``fgr_pha``  parallel ``fgr`` and ``pha`` trees with matching relative paths (extension may differ),
               nested folders allowed (video frame folders).
Backgrounds: folders of RGB images. Without a config: datasets/PhotoMatte85/{train,valid} and
datasets/backgrounds/{train,valid}.
"""
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import cv2
import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from matte_ros.core.files import read_yaml_mapping

from .augment import augment_background, augment_pair

__all__ = ["IMAGE_EXTENSIONS", "LAYOUTS", "ImageReadError", "SplitSpec", "DataConfig", "ScanReport", "read_image",
           "load_data_config", "default_data_config", "scan_foregrounds", "scan_backgrounds", "CompositingDataset",
           "collate"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
LAYOUTS = ("rgba", "fgr_pha")
_MAX_RETRIES = 10


class ImageReadError(ValueError):
    """An image file that cannot be decoded or lacks the expected channels."""


def read_image(path: str, channels: int) -> np.ndarray:
    """Decode to float32 0..1: channels 1 -> (H, W); 3 -> (H, W, 3) RGB; 4 -> (H, W, 4) RGBA."""
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageReadError(f"cannot decode {path}")
    scale = 65535.0 if img.dtype == np.uint16 else 255.0 if img.dtype == np.uint8 else 1.0
    img = img.astype(np.float32) / scale
    have = 1 if img.ndim == 2 else img.shape[2]
    if channels == 4:
        if have != 4:
            raise ImageReadError(f"{path} has {have} channel(s); the rgba layout needs an alpha channel")
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
    if channels == 3:
        code = {1: cv2.COLOR_GRAY2RGB, 3: cv2.COLOR_BGR2RGB, 4: cv2.COLOR_BGRA2RGB}[have]
        return cv2.cvtColor(img, code)
    if have == 1:
        return img
    return cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2GRAY)   # a grey matte saved as RGB(A)


@dataclass(frozen=True)
class SplitSpec:
    """One foreground split: ``fgr`` is the RGBA folder (rgba) or the fgr tree (fgr_pha)."""
    layout: str
    fgr: str
    pha: Optional[str] = None


@dataclass(frozen=True)
class DataConfig:
    name: str
    train: SplitSpec
    valid: SplitSpec
    bgr_train: str
    bgr_valid: str


def default_data_config(root: str = ".") -> DataConfig:
    """Without a config: datasets/PhotoMatte85/{train,valid} (RGBA foregrounds), datasets/backgrounds/{train,valid}."""
    d = os.path.join(root, "datasets")
    return DataConfig("PhotoMatte85", SplitSpec("rgba", os.path.join(d, "PhotoMatte85", "train")),
                      SplitSpec("rgba", os.path.join(d, "PhotoMatte85", "valid")),
                      os.path.join(d, "backgrounds", "train"), os.path.join(d, "backgrounds", "valid"))


def _split(entry: Any, layout: str, base: str, where: str) -> SplitSpec:
    if layout == "rgba":
        if not isinstance(entry, str):
            raise ValueError(f"{where}: the rgba layout takes one folder, found {entry!r}")
        return SplitSpec("rgba", os.path.join(base, entry))
    if not isinstance(entry, dict) or set(entry) != {"fgr", "pha"}:
        raise ValueError(f"{where}: the fgr_pha layout takes {{fgr: FOLDER, pha: FOLDER}}, found {entry!r}")
    return SplitSpec("fgr_pha", os.path.join(base, entry["fgr"]), os.path.join(base, entry["pha"]))


def load_data_config(path: Optional[str], name: Optional[str] = None) -> DataConfig:
    """Parse a dataset config YAML (paths relative to its folder) and pick dataset ``name``
    (optional when the file names one dataset). ``path=None`` gives :func:`default_data_config`."""
    if path is None:
        cfg = default_data_config()
        if name not in (None, cfg.name):
            raise ValueError(f"dataset {name!r} needs a dataset config (--dataset-config); without one only "
                             f"the default {cfg.name} (RGBA foregrounds + backgrounds layout under datasets/) is known")
        return cfg
    data = read_yaml_mapping(path, "dataset config", "a mapping with 'datasets' and 'backgrounds'")
    base = os.path.dirname(os.path.abspath(path))
    sets, bgrs = data.get("datasets"), data.get("backgrounds")
    if not isinstance(sets, dict) or not sets:
        raise ValueError(f"{path}: expected a non-empty 'datasets' mapping")
    if not isinstance(bgrs, dict) or not {"train", "valid"} <= set(bgrs):
        raise ValueError(f"{path}: expected 'backgrounds' with 'train' and 'valid' folders")
    if name is None:
        if len(sets) != 1:
            raise ValueError(f"{path} holds several datasets ({', '.join(sets)}); choose one with --dataset")
        name = next(iter(sets))
    if name not in sets:
        raise ValueError(f"dataset {name!r} is not in {path}; it has: {', '.join(sets)}")
    entry = sets[name]
    layout = entry.get("layout") if isinstance(entry, dict) else None
    if layout not in LAYOUTS:
        raise ValueError(f"{path}: dataset {name!r} needs layout: one of {', '.join(LAYOUTS)}, found {layout!r}")
    for split in ("train", "valid"):
        if split not in entry:
            raise ValueError(f"{path}: dataset {name!r} has no {split!r} split")
    return DataConfig(name, _split(entry["train"], layout, base, f"{path}: {name}.train"),
                      _split(entry["valid"], layout, base, f"{path}: {name}.valid"),
                      os.path.join(base, bgrs["train"]), os.path.join(base, bgrs["valid"]))


@dataclass
class ScanReport:
    """What start-up scanning found in one split."""
    what: str
    folder: str
    count: int = 0
    unreadable: List[Tuple[str, str]] = field(default_factory=list)   # (path, reason)
    unmatched: List[str] = field(default_factory=list)                # fgr without pha or pha without fgr
    empty_alpha: List[str] = field(default_factory=list)              # alpha zero everywhere: nothing to learn

    def lines(self) -> List[str]:
        out = [f"{self.what}: {self.count} usable in {self.folder}"]
        for label, items in (("unreadable", [f"{p} ({r})" for p, r in self.unreadable]),
                             ("without a partner", self.unmatched),
                             ("skipped, their alpha is zero everywhere", self.empty_alpha)):
            if items:
                shown = "; ".join(items[:5]) + (f"; ... ({len(items)} in all)" if len(items) > 5 else "")
                out.append(f"  {len(items)} {label}: {shown}")
        return out


def _list_images(folder: str) -> Dict[str, str]:
    """Relative path without extension -> full path, every image below ``folder`` (sorted walk)."""
    if not os.path.isdir(folder):
        raise ValueError(f"image folder not found: {folder}")
    found = {}
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            if name.lower().endswith(IMAGE_EXTENSIONS):
                full = os.path.join(root, name)
                found.setdefault(os.path.splitext(os.path.relpath(full, folder))[0], full)
    return found


def _header_problem(path: str, need_alpha: bool) -> Optional[str]:
    """Cheap check (header only): None when the file looks usable, else the reason."""
    try:
        with Image.open(path) as im:
            mode, info = im.mode, im.info
    except Exception as e:   # PIL raises many types for bad files
        return f"unreadable: {type(e).__name__}"
    if need_alpha and mode not in ("RGBA", "LA", "RGBa", "La") and not (mode == "P" and "transparency" in info):
        return f"no alpha channel (mode {mode})"
    return None


def _alpha_problem(item: Tuple[str, Optional[str]]) -> Optional[str]:
    """Decode the alpha of a foreground (headers already checked): None, "empty" or why it is unreadable."""
    fgr_path, pha_path = item
    try:
        pha = read_image(fgr_path, 4)[:, :, 3] if pha_path is None else read_image(pha_path, 1)
    except (ImageReadError, OSError, cv2.error) as e:
        return f"unreadable: {e}"
    return "empty" if not pha.any() else None


def _check_alphas(items: List[Tuple[str, Optional[str]]], report: ScanReport) -> List[Tuple[str, Optional[str]]]:
    """Keep the items whose alpha decodes and is not zero everywhere; note the others in ``report``.
    Decoding runs on a few threads (OpenCV releases the GIL)."""
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        problems = list(pool.map(_alpha_problem, items))
    kept = []
    for item, problem in zip(items, problems):
        if problem is None:
            kept.append(item)
        elif problem == "empty":
            report.empty_alpha.append(item[1] or item[0])
        else:
            report.unreadable.append((item[0], problem))
    return kept


def scan_foregrounds(spec: SplitSpec, what: str) -> Tuple[List[Tuple[str, Optional[str]]], ScanReport]:
    """Usable (fgr_path, pha_path or None for rgba) pairs of a split, and the report.
    Every alpha is decoded once: unreadable ones and those that are zero everywhere (a foreground with
    nothing in it) are left out and reported. An empty result raises ValueError naming the folder(s)
    and what was wrong."""
    report = ScanReport(what, spec.fgr if spec.pha is None else f"{spec.fgr} + {spec.pha}")
    items: List[Tuple[str, Optional[str]]] = []
    fgrs = _list_images(spec.fgr)
    if spec.layout == "rgba":
        for path in fgrs.values():
            problem = _header_problem(path, need_alpha=True)
            if problem:
                report.unreadable.append((path, problem))
            else:
                items.append((path, None))
    else:
        phas = _list_images(spec.pha)
        report.unmatched = [fgrs[k] for k in fgrs if k not in phas] + [phas[k] for k in phas if k not in fgrs]
        for key in (k for k in fgrs if k in phas):
            problem = next((f"{p}: {r}" for p in (fgrs[key], phas[key])
                            for r in [_header_problem(p, need_alpha=False)] if r), None)
            if problem:
                report.unreadable.append((fgrs[key], problem))
            else:
                items.append((fgrs[key], phas[key]))
    items = _check_alphas(items, report)
    report.count = len(items)
    if not items:
        raise ValueError("\n".join([f"no usable {what} images"] + report.lines()))
    return items, report


def scan_backgrounds(folder: str, what: str) -> Tuple[List[str], ScanReport]:
    report = ScanReport(what, folder)
    paths = []
    for path in _list_images(folder).values():
        problem = _header_problem(path, need_alpha=False)
        if problem:
            report.unreadable.append((path, problem))
        else:
            paths.append(path)
    report.count = len(paths)
    if not paths:
        raise ValueError("\n".join([f"no usable {what} images"] + report.lines()))
    return paths, report


def _load_foreground(item: Tuple[str, Optional[str]]) -> Tuple[np.ndarray, np.ndarray]:
    fgr_path, pha_path = item
    if pha_path is None:
        rgba = read_image(fgr_path, 4)
        return np.ascontiguousarray(rgba[:, :, :3]), np.ascontiguousarray(rgba[:, :, 3])
    fgr, pha = read_image(fgr_path, 3), read_image(pha_path, 1)
    if fgr.shape[:2] != pha.shape:
        raise ImageReadError(f"{fgr_path} is {fgr.shape[1]}x{fgr.shape[0]} but its alpha {pha_path} is "
                             f"{pha.shape[1]}x{pha.shape[0]}")
    return fgr, pha


class CompositingDataset(Dataset):
    """Foreground + alpha pairs with random backgrounds, augmented, at ``size`` x ``size``.

    Item ``i`` -> dict(pha (1, S, S), fgr (3, S, S), bgr (3, S, S), skipped: list of unreadable paths met).
    Randomness comes from ``(seed, split, epoch, i)`` only, so the data are the same whatever the worker,
    process or resume point. A file that fails to decode is skipped (the next one is used) and reported.
    Length: max(#foregrounds, #backgrounds) for training, ``length`` for validation (a fixed subset).
    """

    def __init__(self, items: List[Tuple[str, Optional[str]]], bgrs: List[str], size: int,
                 scale: Tuple[float, float], seed: int, train: bool = True, length: Optional[int] = None):
        if not items or not bgrs:
            raise ValueError("CompositingDataset needs at least one foreground and one background")
        self.items, self.bgrs, self.size, self.scale = items, bgrs, int(size), scale
        self.seed, self.train, self.epoch = int(seed), train, 0
        self.length = int(length) if length is not None else max(len(items), len(bgrs))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def _rng(self, idx: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, int(self.train), self.epoch if self.train else 0, int(idx)])

    def __getitem__(self, idx: int) -> Dict[str, Any]:
        rng = self._rng(idx)
        skipped: List[str] = []
        fgr = pha = bgr = None
        for attempt in range(_MAX_RETRIES):
            item = self.items[(idx + attempt) % len(self.items)]
            try:
                fgr, pha = _load_foreground(item)
                break
            except (ImageReadError, OSError, cv2.error) as e:
                skipped.append(f"{item[0]}: {e}")
        for _ in range(_MAX_RETRIES):
            path = self.bgrs[int(rng.integers(len(self.bgrs)))]
            try:
                bgr = read_image(path, 3)
                break
            except (ImageReadError, OSError, cv2.error) as e:
                skipped.append(f"{path}: {e}")
        if fgr is None or bgr is None:
            raise ImageReadError(f"{_MAX_RETRIES} unreadable files in a row: " + "; ".join(skipped))
        fgr, pha = augment_pair(rng, fgr, pha, self.size, self.scale, self.train)
        bgr = augment_background(rng, bgr, self.size, self.train)
        return {"pha": torch.from_numpy(pha)[None], "fgr": torch.from_numpy(fgr).permute(2, 0, 1).contiguous(),
                "bgr": torch.from_numpy(bgr).permute(2, 0, 1).contiguous(), "skipped": skipped}


def collate(samples: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Stack pha, fgr, bgr; concatenate the skipped-file lists."""
    out: Dict[str, Any] = {k: torch.stack([s[k] for s in samples]) for k in ("pha", "fgr", "bgr")}
    out["skipped"] = [p for s in samples for p in s["skipped"]]
    return out
