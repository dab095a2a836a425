"""Photographs held out of training and validation, in one place.

The stress suite (:mod:`training.stress`) is built from photographs no training or validation run
may use: Debian's Lomiri wallpaper packages (``apt-get install lomiri-wallpapers
lomiri-wallpapers-16.04 lomiri-wallpapers-20.04``; none of them is among the training packages of
the model card) and the sample photographs shipped with scikit-image, scikit-learn and matplotlib
(where those are installed). Whole packages are held out: every file of them, renders included, is
refused by the training data writer (:func:`check_training_photos`), recognised by its SHA-256
wherever it was copied to; the library samples by their folders. The stress suite uses the files
of ``STRESS_PHOTOS`` (the photographs among them) that are installed, and the library samples.
"""
import hashlib
import importlib.util
import os
from functools import lru_cache
from typing import Dict, Iterable, List, Optional

from .photos import find_photos

__all__ = ["HELD_OUT_PACKAGES", "STRESS_PHOTOS", "HELD_OUT_SHA256", "LIBRARY_SAMPLES", "library_sample_dirs",
           "file_sha256", "held_out", "check_training_photos", "stress_photos"]

HELD_OUT_PACKAGES = ("lomiri-wallpapers", "lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04")
_FOLDER = "/usr/share/backgrounds"
STRESS_PHOTOS: Dict[str, str] = {   # installed path -> SHA-256: the photographs of HELD_OUT_PACKAGES
    "Bridge_by_Sander_Klootwijk.jpg": "bd86b081f9975e2b83527f71e49b9271a8ab40885428395969d9f7d834d7f050",
    "Dragonfly_by_Bolly.jpg": "af5af17841009732def24b09bb1e669a1b09d2b4bdeee7812c371101c30d2bb3",
    "Picture_0B_by_freespace.jpg": "c8c0ab18e48d9e0419fe42881112137f3afafc27dfddc29ec3a6d54c56d225ad",
    "Picture_1A_by_freespace.jpg": "89e86af38d04daaef975665dc2127e9fa76f0fd68f4eea105a2d0ae3390b010b",
    "Wine_by_Jakkub_Mede.jpg": "d2e96e6d4da40dd804b3d0ce295e94de04a2d7d9b6785d42cd9d92ba58bced74",
    "aitzgorri_by_Aitzol_Berasategi.jpg": "66268e7b48f8854d36a28765fac6e23ec1aee251daa6da1f64715f201020ad36",
    "analogpattern_by_Peter_Nerlich.jpg": "15372488a192b2be2eafc67bd3ed31cbfca19abe3929e925607fcbc9cb4d4202",
    "free_by_Peter_Nerlich.jpg": "85a5453c2fed514c75973016f3d862aca62eb7ca087618822469274ac1092373",
    "friends_by_Aitzol_Berasategi.jpg": "cc40e313c74e421edffe3403def413c16878ce14661cce7ec5915baeab35538d",
    "greentock_by_Peter_Nerlich.jpg": "e7b20e2db9dcd6e2b278ca55873c2110b35d89cd38b04d0b18728726888e6889",
    "life_by_Aitzol_Berasategi.jpg": "4c119350ead80201fe256850c3d316309ddfb4bdf10b235ce982dcde0c667c05",
    "picosdeeuropa_by_Aitzol_Berasategi.jpg": "414d0072b2f6f2c555deafeaef6e45c4fed6fa9ad26eba6560ca8803959cf97a",
    "seeding_by_Clements_Engelhardt.jpg": "a5634d1ab5e41a3568e92d4a894a500c92b891f9ff734e50bd224d6e185a605f",
    "sunset_by_Aitzol_Berasategi.jpg": "474dab6a4b9f94dc76c29dfe30e9f5db4af0fd2e33fe5d695f8152b371efca18",
    "Kleiber_by_Lukas_Baubkus.jpg": "6572410c09f4492c74ccadde133565a14c0161617d5917d4c820c66d65a44ba7",
}
STRESS_PHOTOS = {os.path.join(_FOLDER, k): v for k, v in STRESS_PHOTOS.items()}
HELD_OUT_SHA256 = frozenset(STRESS_PHOTOS.values()) | frozenset((   # and the renders of those packages
    "1bb17dfa4b0e9dfedc8726334c922c26339201e1d09e00b141ae9d39ea80e261",   # warty-final-ubuntu.png, lomiri-default
    "bfb425545e77e9f0eb1b037b607fc9ed4a446f3b0f04aa2879be3556073c57ef",   # umang_by_Abhishek_Mudgal.jpg
    "4e1f6bfd73f374ac28adbf37d5f9f7ce847dccba71e860f0ff50509316be1f82",   # Fossa_by_Jasper_Roks.jpg
    "9319dfb3651833881339a8d9b769b99efaf474969e6cd58e427eb2524aca8e8a",   # Infinite-Sea_by_Aury88.jpg
    "dc688df829e177f23d5e2761a198d2e44e477e4b3b3c750661052c89f7abc46c",   # Painting-Colors_by__herobrine7gamer.jpg
))
LIBRARY_SAMPLES = (("skimage", "data"), ("sklearn", os.path.join("datasets", "images")),
                   ("matplotlib", os.path.join("mpl-data", "sample_data")))


def library_sample_dirs() -> List[str]:
    """The installed sample-photo folders of scikit-image, scikit-learn and matplotlib (not imported)."""
    found = []
    for package, sub in LIBRARY_SAMPLES:
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            spec = None
        for root in (spec.submodule_search_locations or []) if spec else []:
            folder = os.path.join(root, sub)
            if os.path.isdir(folder):
                found.append(os.path.realpath(folder))
    return found


@lru_cache(maxsize=1024)
def _sha256(path: str, size: int, mtime: float) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: str) -> str:
    """SHA-256 of a file's bytes (cached per path, size and modification time)."""
    st = os.stat(path)
    return _sha256(os.path.realpath(path), st.st_size, st.st_mtime)


def held_out(paths: Iterable[str], sha256: Optional[frozenset] = None, folders: Optional[Iterable[str]] = None
             ) -> List[str]:
    """The ``paths`` that are held-out photographs: bytes equal to a held-out file (``sha256``, default
    HELD_OUT_SHA256), or a file inside a held-out folder (``folders``, default: the library samples)."""
    sha256 = HELD_OUT_SHA256 if sha256 is None else sha256
    dirs = [os.path.realpath(d) + os.sep for d in (library_sample_dirs() if folders is None else folders)]
    return [p for p in paths
            if any(os.path.realpath(p).startswith(d) for d in dirs) or file_sha256(p) in sha256]


def check_training_photos(paths: Iterable[str], **kw) -> None:
    """ValueError naming the first held-out photograph among ``paths`` (training and validation must not
    see them; they belong to the stress suite)."""
    bad = held_out(list(paths), **kw)
    if bad:
        raise ValueError(f"{len(bad)} photograph(s) are held out for the stress suite and must not be used for "
                         f"training or validation, e.g. {bad[0]} (see training/heldout.py; pass narrower folders)")


def stress_photos(folder: Optional[str] = None) -> List[str]:
    """The held-out photographs: STRESS_PHOTOS present with the expected bytes, then the library
    samples (sorted). With ``folder`` (copies carried to another machine, e.g. ``.photos/stress`` of
    ``.ci/gpu_photos.py``) the STRESS_PHOTOS are looked up there by SHA-256 instead, in the same order,
    so the suite is the same one; ValueError for a photograph there that is not one of them."""
    if folder is None:
        found = [p for p, digest in STRESS_PHOTOS.items() if os.path.isfile(p) and file_sha256(p) == digest]
    else:
        if not os.path.isdir(folder):
            raise ValueError(f"no such folder of stress photographs: {folder}")
        by_digest = {}
        for path in find_photos([folder]):
            digest = file_sha256(path)
            if digest not in STRESS_PHOTOS.values():
                raise ValueError(f"{path} is not one of the stress suite's photographs (training/heldout.py "
                                 "STRESS_PHOTOS, checked by SHA-256)")
            by_digest.setdefault(digest, path)
        found = [by_digest[d] for d in STRESS_PHOTOS.values() if d in by_digest]
    dirs = library_sample_dirs()
    return found + (find_photos(dirs) if dirs else [])
