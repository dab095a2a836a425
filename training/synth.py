"""The synthetic matting dataset: pure functions from (seed, split, index) to images, and the writer.

Layout (see CONTRACTS.md)::

    DIR/foregrounds/{train,valid}/NNNNN.png   RGBA, 4th channel = alpha
    DIR/backgrounds/{train,valid}/NNNNN.png   RGB
    DIR/test/{src,bgr,pha,fgr}/NNNNN.png      held-out test set with ground truth
    DIR/dataset.yaml                    written last: only a finished run leaves one
    DIR/photos/{train,valid,test}.txt   with --photos: which photograph files each split used
    DIR/PARTIAL.txt                     while a run writes (left by a run that failed or was stopped)

A spec with no training foregrounds (``count`` 0) is a test-only dataset: its dataset.yaml names no
training data.

With photographs (``SynthSpec.photos``), backgrounds and the subjects' surfaces are random crops of
the split's own photos (a share ``photo_share`` of them; procedural textures for the rest), and the
test set is photographic throughout: photo plate, subject shadow on the scene, a plate shifted by
up to 3 px, exposure/white-balance offset, sensor noise and, in about half, JPEG compression.

Every image is rendered from its own generator seeded by ``(seed, stream, index)``, so an image does
not depend on the counts, on the order of rendering or on the number of worker processes, and the
same seed writes byte-identical files.
"""
import multiprocessing
import os
import re
import signal
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np
import yaml

from matte_ros.core.cli import Failure, describe_error
from matte_ros.core.files import atomic_write
from matte_ros.core.synthetic import (
    HAIR_DENSITIES,
    TRAINING_FAMILIES,
    cast_shadow,
    flat_texture,
    jpeg_roundtrip,
    perturb_plate,
    random_colors,
    render_background,
    render_subject,
    render_texture,
)

from .heldout import check_training_photos
from .photos import SPLITS, load_photo, photo_crop, pick_photo, write_split_lists

__all__ = ["SynthSpec", "TestSample", "dataset_palette", "photo_texture", "subject_options", "make_foreground",
           "make_background", "make_test_sample", "make_photo_test_sample", "dataset_config", "describe", "plan_files",
           "PARTIAL_MARKER", "PartialDatasetError", "write_dataset"]

BACKGROUND_MARGIN = 1.25  # backgrounds are this much larger than foregrounds (room for the trainer's crops)
_STREAMS = {("foregrounds", "train"): 1, ("foregrounds", "valid"): 2, ("backgrounds", "train"): 3,
            ("backgrounds", "valid"): 4, ("test", None): 5, ("palette", None): 6, ("family", "train"): 7,
            ("family", "valid"): 8}
ORIGINAL_MIX = 0.5   # share of foregrounds drawn as before the families: persons (3/4) and organic objects
FLAT_SHARE = 0.2     # share of the other foregrounds with flat-coloured surfaces
_NAME = re.compile(r"^\d{5}\.png$")
PARTIAL_MARKER = "PARTIAL.txt"   # in DIR from the first file a run writes until its dataset.yaml is in place


class PartialDatasetError(Failure):
    """Writing the dataset failed part-way (the cause is chained); the folder holds PARTIAL.txt and no
    dataset.yaml. A :class:`Failure`: the command exits 1."""


class SynthSpec(NamedTuple):
    """What to generate. size/test_size: (H, W)."""
    seed: int = 0
    count: int = 300
    valid_count: int = 30
    test_count: int = 50
    backgrounds: int = 300
    valid_backgrounds: int = 30
    size: Tuple[int, int] = (512, 512)
    test_size: Tuple[int, int] = (384, 512)
    photos: Tuple[Tuple[str, ...], ...] = ((), (), ())  # photo files of the train, valid, test splits
    photo_share: float = 0.8                              # share of textures cut from photos (when there are any)
    photo_roots: Tuple[str, ...] = ()                     # the --photos arguments (recorded in dataset.yaml)

    def split_photos(self, split: str) -> Tuple[str, ...]:
        return tuple(self.photos[SPLITS.index(split)])

    def check(self) -> "SynthSpec":
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        for name in ("count", "valid_count", "test_count", "backgrounds", "valid_backgrounds"):
            if not 0 <= getattr(self, name) <= 99999:
                raise ValueError(f"{name} must be in 0..99999, got {getattr(self, name)}")
        if self.count and not self.backgrounds:
            raise ValueError("training foregrounds need at least one training background")
        for name in ("size", "test_size"):
            h, w = getattr(self, name)
            if h < 32 or w < 32:
                raise ValueError(f"{name} must be at least 32x32, got {h}x{w}")
        if len(self.photos) != 3:
            raise ValueError("photos must hold three lists: train, valid, test")
        if not 0 <= self.photo_share <= 1:
            raise ValueError(f"photo_share must be in 0..1, got {self.photo_share}")
        if any(self.photos):
            needs = (("train", self.count + self.backgrounds), ("valid", self.valid_count + self.valid_backgrounds),
                     ("test", self.test_count))
            for split, n in needs:
                if n and not self.split_photos(split):
                    raise ValueError(f"the {split} split needs photos but none were assigned to it "
                                     "(give more photographs)")
        return self


class TestSample(NamedTuple):
    """One held-out test image. src, bgr, fgr: (H, W, 3) uint8 RGB; pha: (H, W) uint8.

    seen: (H, W, 3) float32, the perturbed plate the camera saw behind the subject, so that
    ``src == round(255 * (pha*fgr + (1-pha)*seen))`` with pha, fgr the stored (quantised) values.
    """
    src: np.ndarray
    bgr: np.ndarray
    pha: np.ndarray
    fgr: np.ndarray
    seen: np.ndarray


def _rng(seed: int, stream: Tuple[str, Optional[str]], index: int = 0) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, _STREAMS[stream], index]))


def _u8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)


def dataset_palette(seed: int) -> np.ndarray:
    """(12, 3) float32 colours shared by some foregrounds and backgrounds of a dataset: chance camouflage."""
    return random_colors(_rng(seed, ("palette", None)), 12)


def photo_texture(photos: Sequence[str], share: float):
    """A subject ``texture(rng, h, w, palette)``: with probability ``share`` a close-up crop of one of
    ``photos`` (flipped, jittered), else the procedural texture."""
    def texture(rng: np.random.Generator, h: int, w: int, palette: Optional[np.ndarray]) -> np.ndarray:
        if photos and rng.random() < share:
            return photo_crop(rng, pick_photo(rng, photos), h, w, zoom=(0.15, 0.7), flip_vertical=True)
        return render_texture(rng, h, w, palette)
    return texture


def _photo_plate(rng: np.random.Generator, photo: np.ndarray, h: int, w: int) -> np.ndarray:
    """A background scene cut from a photo: a wide view (upright, mild jitter)."""
    return photo_crop(rng, photo, h, w, zoom=(0.35, 1.0), jitter=0.5)


def subject_options(seed: int, split: str, index: int) -> Dict:
    """How foreground ``index`` of ``split`` is drawn: {} (the original mix, the same image as before the
    families existed) or ``{"kind": one of TRAINING_FAMILIES[, "hair": density][, "flat": True]}``.
    Drawn from a stream of its own, so the original-mix images do not move. Held-out families
    (HELD_OUT_FAMILIES) are never drawn: they belong to the stress suite."""
    rng = _rng(seed, ("family", split), index)
    if rng.random() < ORIGINAL_MIX:
        return {}
    options: Dict = {"kind": TRAINING_FAMILIES[int(rng.integers(len(TRAINING_FAMILIES)))]}
    if options["kind"] == "person" and rng.random() < 0.7:
        options["hair"] = HAIR_DENSITIES[int(rng.integers(len(HAIR_DENSITIES)))]
    if rng.random() < FLAT_SHARE:
        options["flat"] = True
    return options


def make_foreground(seed: int, split: str, index: int, size: Tuple[int, int], photos: Sequence[str] = (),
                    photo_share: float = 0.8) -> np.ndarray:
    """Foreground ``index`` of ``split`` -> (H, W, 4) uint8 RGBA (straight, not premultiplied, colour).
    photos: the split's photo files for the surface textures (none: procedural only). The subject's
    family: :func:`subject_options`."""
    rng = _rng(seed, ("foregrounds", split), index)
    palette = dataset_palette(seed) if rng.random() < 0.35 else None
    options = subject_options(seed, split, index)
    texture = photo_texture(photos, photo_share) if photos else None
    if options.pop("flat", False):
        texture = flat_texture
    fgr, pha = render_subject(rng, size[0], size[1], palette=palette, texture=texture, **options)
    return np.concatenate([_u8(fgr), _u8(pha)[..., None]], axis=2)


def make_background(seed: int, split: str, index: int, size: Tuple[int, int], photos: Sequence[str] = (),
                    photo_share: float = 0.8) -> np.ndarray:
    """Background ``index`` of ``split`` -> (H', W', 3) uint8 RGB, H' = ceil(1.25 H), W' likewise.
    photos: the split's photo files (a share ``photo_share`` of the backgrounds are cut from them)."""
    rng = _rng(seed, ("backgrounds", split), index)
    palette = dataset_palette(seed) if rng.random() < 0.35 else None
    h, w = (int(np.ceil(s * BACKGROUND_MARGIN)) for s in size)
    if photos and rng.random() < photo_share:
        return _u8(_photo_plate(rng, pick_photo(rng, photos), h, w))
    return _u8(render_background(rng, h, w, palette))


def make_test_sample(seed: int, index: int, size: Tuple[int, int], photos: Sequence[str] = ()) -> TestSample:
    """Held-out test image ``index``: a subject over a clean plate seen through a perturbed camera.

    In about a third of the samples the subject's colours are taken from the plate itself (camouflage).
    photos: the test split's photo files; with them the sample is photographic (see
    :func:`make_photo_test_sample`).
    """
    rng = _rng(seed, ("test", None), index)
    h, w = size
    if photos:
        return make_photo_test_sample(rng, h, w, photos)
    bgr = render_background(rng, h, w)
    if rng.random() < 0.35:
        picks = rng.integers(0, [h, w], (8, 2))
        palette = bgr[picks[:, 0], picks[:, 1]]
    else:
        palette = dataset_palette(seed) if rng.random() < 0.3 else None
    fgr, pha = render_subject(rng, h, w, palette=palette)
    bgr8, fgr8, pha8 = _u8(bgr), _u8(fgr), _u8(pha)
    seen = perturb_plate(rng, bgr8, strength=float(rng.uniform(0.3, 1.0)))
    a = pha8.astype(np.float32)[..., None] / 255.0
    src = _u8(a * (fgr8.astype(np.float32) / 255.0) + (1.0 - a) * seen)
    return TestSample(src, bgr8, pha8, fgr8, seen)


def make_photo_test_sample(rng: np.random.Generator, h: int, w: int, photos: Sequence[str]) -> TestSample:
    """A photographic test image: a photo plate; the subject's surfaces cut from the same photo (p 0.35,
    camouflage) or from any test photo; the subject's shadow on the scene (p 0.5); the plate seen
    shifted up to 3 px with exposure, white-balance and noise offsets; JPEG at quality 70..95 (p 0.5).

    ``seen`` is the perturbed, shadowed plate; before the JPEG step ``src`` is exactly
    ``round(255 * (pha*fgr + (1-pha)*seen))``; after it, ``pha`` and ``fgr`` remain the exact truth.
    """
    pick = photos[int(rng.integers(len(photos)))]
    bgr = _photo_plate(rng, load_photo(pick), h, w)
    texture = photo_texture([pick] if rng.random() < 0.35 else photos, 0.85)
    fgr, pha = render_subject(rng, h, w, texture=texture)
    bgr8, fgr8, pha8 = _u8(bgr), _u8(fgr), _u8(pha)
    seen = perturb_plate(rng, bgr8, strength=float(rng.uniform(0.3, 1.0)), max_shift=3.0)
    if rng.random() < 0.5:
        seen = cast_shadow(rng, seen, pha8.astype(np.float32) / 255.0, float(rng.uniform(0.15, 0.5)))
    a = pha8.astype(np.float32)[..., None] / 255.0
    src = _u8(a * (fgr8.astype(np.float32) / 255.0) + (1.0 - a) * seen)
    if rng.random() < 0.5:
        src = jpeg_roundtrip(src, int(rng.integers(70, 96)))
    return TestSample(src, bgr8, pha8, fgr8, seen)


def dataset_config() -> Dict:
    """The dataset.yaml contents (paths relative to the YAML file's folder)."""
    return {"datasets": {"synthetic": {"layout": "rgba", "train": "foregrounds/train", "valid": "foregrounds/valid"}},
            "backgrounds": {"train": "backgrounds/train", "valid": "backgrounds/valid"}}


def describe(spec: SynthSpec) -> str:
    """The command that writes ``spec`` (recorded in dataset.yaml)."""
    text = (f"python -m training synth --seed {spec.seed} --count {spec.count} --valid-count {spec.valid_count} "
            f"--test-count {spec.test_count} --backgrounds {spec.backgrounds} --valid-backgrounds "
            f"{spec.valid_backgrounds} --size {spec.size[0]} {spec.size[1]} "
            f"--test-size {spec.test_size[0]} {spec.test_size[1]}")
    if spec.photo_roots:
        text += f" --photo-share {spec.photo_share} --photos {' '.join(spec.photo_roots)}"
    return text


def plan_files(spec: SynthSpec) -> Dict[str, int]:
    """Sub-folder -> number of NNNNN.png files it will hold."""
    return {"foregrounds/train": spec.count, "foregrounds/valid": spec.valid_count,
            "backgrounds/train": spec.backgrounds, "backgrounds/valid": spec.valid_backgrounds,
            **{f"test/{k}": spec.test_count for k in ("src", "bgr", "pha", "fgr")}}


def _write_png(path: str, img: np.ndarray) -> None:
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGBA2BGRA if img.shape[2] == 4 else cv2.COLOR_RGB2BGR)

    def write(tmp: str) -> None:
        if not cv2.imwrite(tmp, img, [cv2.IMWRITE_PNG_COMPRESSION, 3]):
            raise OSError(f"could not write {path}")

    atomic_write(path, write)


def _job(args) -> int:
    """Render and write one item; runs in a worker process. Returns the number of files written."""
    out, spec, group, split, index = args
    name = f"{index:05d}.png"
    if group == "test":
        sample = make_test_sample(spec.seed, index, spec.test_size, spec.split_photos("test"))
        for key in ("src", "bgr", "pha", "fgr"):
            _write_png(os.path.join(out, "test", key, name), getattr(sample, key))
        return 4
    make = make_foreground if group == "foregrounds" else make_background
    _write_png(os.path.join(out, group, split, name),
               make(spec.seed, split, index, spec.size, spec.split_photos(split), spec.photo_share))
    return 1


def _init_worker() -> None:
    cv2.setNumThreads(1)


def _stale_files(out: str, plan: Dict[str, int]) -> List[str]:
    stale = []
    for sub, n in plan.items():
        folder = os.path.join(out, sub)
        if os.path.isdir(folder):
            stale += [os.path.join(folder, f) for f in sorted(os.listdir(folder))
                      if f.endswith(".png") and not (_NAME.match(f) and int(f[:5]) < n)]
    return stale


def write_dataset(out: str, spec: SynthSpec, workers: int = 1, overwrite: bool = False,
                  log: Callable[[str], None] = print) -> Dict[str, float]:
    """Render ``spec`` into ``out``; returns {"files": n, "seconds": t}.

    Files of earlier runs that this spec does not produce (e.g. a larger count) would silently join
    the dataset, so they raise FileExistsError unless ``overwrite`` (which then deletes them).
    Held-out photographs (:mod:`training.heldout`) in the train or valid split raise ValueError.
    """
    spec.check()
    check_training_photos(p for split in SPLITS if split != "test" for p in spec.split_photos(split))
    plan = plan_files(spec)
    stale = _stale_files(out, plan)
    if stale and not overwrite:
        raise FileExistsError(f"{out} holds {len(stale)} PNG file(s) this dataset would not write (first: {stale[0]}); "
                         "use a fresh --out or pass --overwrite to delete them")
    _mark_partial(out, spec)
    try:
        files, seconds = _write_files(out, spec, workers, stale, log)
    except Exception as e:      # Ctrl-C (KeyboardInterrupt) also leaves the marker, and no dataset.yaml
        raise PartialDatasetError(f"{describe_error(e)}; {out} is partial (see "
                                  f"{os.path.join(out, PARTIAL_MARKER)}; no dataset.yaml)") from e
    os.remove(os.path.join(out, PARTIAL_MARKER))
    return {"files": files, "seconds": seconds}


def _mark_partial(out: str, spec: SynthSpec) -> None:
    """Write DIR/PARTIAL.txt, then remove an earlier run's dataset.yaml: until this run ends, the folder
    does not look finished."""
    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write("This folder is incomplete: a run of the command below was stopped or failed while writing "
                    f"it; run it again to finish it.\n{describe(spec)} --out {out}\n")
    atomic_write(os.path.join(out, PARTIAL_MARKER), write)
    config = os.path.join(out, "dataset.yaml")
    if os.path.lexists(config):
        os.remove(config)


def _write_files(out: str, spec: SynthSpec, workers: int, stale: List[str],
                 log: Callable[[str], None]) -> Tuple[int, float]:
    """Delete ``stale``, render every image, then write dataset.yaml; (files written, seconds)."""
    for path in stale:
        os.remove(path)
    for sub, n in plan_files(spec).items():
        if n:
            os.makedirs(os.path.join(out, sub), exist_ok=True)
    if any(spec.photos):
        write_split_lists(out, {k: list(spec.split_photos(k)) for k in SPLITS})
    jobs = [(out, spec, g, s, i) for g, s, n in (("foregrounds", "train", spec.count),
                                                ("foregrounds", "valid", spec.valid_count),
                                                ("backgrounds", "train", spec.backgrounds),
                                                ("backgrounds", "valid", spec.valid_backgrounds),
                                                ("test", None, spec.test_count)) for i in range(n)]
    start, files = time.perf_counter(), 0
    step = max(len(jobs) // 10, 1)
    pool, results = None, map(_job, jobs)
    try:
        if workers > 1:
            # spawn, not fork: a fork of a process that already runs threads (torch, rclpy) can deadlock.
            # The workers start with SIGINT blocked for good: Ctrl-C reaches this process only, which
            # shuts the pool down (below) instead of every worker printing a traceback.
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
            try:
                pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                           initializer=_init_worker)
                results = pool.map(_job, jobs, chunksize=4)
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for done, n in enumerate(results, 1):
            files += n
            if done % step == 0 or done == len(jobs):
                log(f"  {done}/{len(jobs)} items, {files} files, {time.perf_counter() - start:.1f} s")
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    text = f"# {describe(spec)}\n# held-out test set with ground truth: test/{{src,bgr,pha,fgr}}\n"
    if spec.count:
        text += yaml.safe_dump(dataset_config(), sort_keys=False)
    else:
        text += "# test-only: no training or validation images (python -m training eval --data DIR)\n{}\n"

    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write(text)

    atomic_write(os.path.join(out, "dataset.yaml"), write)
    return files + 1, time.perf_counter() - start
