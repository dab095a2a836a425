"""Copies the photographs of the GPU training recipe into ``.photos/`` (ignored by git; the run carries it).

    .venv/bin/python .ci/gpu_photos.py [--out .photos] [--folders training/recipes/photos.txt] [--wheels .whl-train]

``.photos/train/``: the training photographs (the folders of training/recipes/photos.txt, as the model
card lists them), one file per picture, its original bytes: the largest file of each picture, which is
what ``split_photos`` keeps (a wallpaper's screenshot is a smaller copy), so ``synth --photos
.photos/train`` splits them into the same train / valid / test photographs as the original folders
(checked after copying). ``.photos/stress/``: the stress suite's held-out photographs
(training/heldout.py STRESS_PHOTOS, those installed here with the expected bytes) under their own names,
for ``eval --suite stress --photos .photos/stress``. Prints the sizes and what would travel: the working
tree (tracked and untracked files outside .gitignore), ``.photos`` and the wheel folder, against the
64 MiB limit (exit 1 above it).
"""
import argparse
import os
import shutil
import subprocess
import sys
from typing import Dict, List, Sequence, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from training.heldout import STRESS_PHOTOS, check_training_photos, file_sha256  # noqa: E402
from training.photos import SPLITS, find_photos, split_photos  # noqa: E402

__all__ = ["read_folders", "carried_name", "copy_training", "copy_stress", "tree_bytes", "main"]

LIMIT_MIB = 64


def read_folders(path: str) -> List[str]:
    """The folders of a list file (one a line; blank lines and ``#`` comments skipped)."""
    with open(path) as f:
        return [line.strip() for line in f if line.strip() and not line.lstrip().startswith("#")]


def carried_name(path: str, roots: Sequence[str]) -> str:
    """A flat file name for ``path`` under one of ``roots``: the root's name and the path inside it,
    joined with '-' (``/usr/share/wallpapers/Kite/contents/images/2560x1600.jpg`` -> ``Kite-contents-
    images-2560x1600.jpg``)."""
    real = os.path.realpath(path)
    for root in roots:
        base = os.path.realpath(root)
        if real.startswith(base.rstrip(os.sep) + os.sep):
            return "-".join([os.path.basename(base)] + os.path.relpath(real, base).split(os.sep))
    return os.path.basename(path)


def _split_digests(paths: Sequence[str]) -> Dict[str, List[str]]:
    split = split_photos(paths)
    return {k: sorted(file_sha256(p) for p in split[k]) for k in SPLITS}


def copy_training(roots: Sequence[str], dest: str) -> List[str]:
    """Copy one file per picture of ``roots`` into ``dest`` (emptied first); ValueError when a held-out
    photograph is among them or the copies would split otherwise than the originals."""
    found = find_photos(roots)
    if not found:
        raise ValueError(f"no photographs in {', '.join(roots)}")
    check_training_photos(found)
    split = split_photos(found)
    keep = sorted(p for k in SPLITS for p in split[k])
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(dest)
    copies = []
    for path in keep:
        copies.append(os.path.join(dest, carried_name(path, roots)))
        if os.path.exists(copies[-1]):
            raise ValueError(f"two photographs would be copied as {copies[-1]}")
        shutil.copyfile(path, copies[-1])
    want = {k: sorted(file_sha256(p) for p in split[k]) for k in SPLITS}
    if _split_digests(copies) != want:
        raise ValueError(f"the copies in {dest} split otherwise than the photographs of {', '.join(roots)}")
    return copies


def copy_stress(dest: str, photos: Dict[str, str] = STRESS_PHOTOS) -> List[str]:
    """Copy the held-out photographs of ``photos`` (path -> SHA-256) installed here with those bytes into
    ``dest`` (emptied first), under their own names; ValueError when none is installed."""
    present = [p for p, digest in photos.items() if os.path.isfile(p) and file_sha256(p) == digest]
    if not present:
        raise ValueError("none of the stress suite's photographs is installed here: apt-get install "
                         "lomiri-wallpapers lomiri-wallpapers-16.04 lomiri-wallpapers-20.04")
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(dest)
    copies = [os.path.join(dest, os.path.basename(p)) for p in present]
    for src, dst in zip(present, copies):
        shutil.copyfile(src, dst)
    return copies


def _bytes(paths: Sequence[str]) -> int:
    return sum(os.path.getsize(p) for p in paths)


def _folder_bytes(folder: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(folder) for f in files)


def tree_bytes(repo: str = REPO) -> int:
    """Bytes of the working tree that travels: tracked files and untracked ones outside .gitignore."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=repo,
                           check=True, stdout=subprocess.PIPE).stdout.decode().split("\0")
    paths = (os.path.join(repo, n) for n in names if n)
    return sum(os.path.getsize(p) for p in paths if os.path.isfile(p))


def _mib(n: int) -> str:
    return f"{n / 2 ** 20:.1f} MiB"


def _shown(path: str) -> str:
    """``path`` relative to the repository when inside it."""
    rel = os.path.relpath(path, REPO)
    return path if rel.startswith(os.pardir) else rel


def main(argv: Sequence[str] = None) -> int:
    p = argparse.ArgumentParser(prog=".ci/gpu_photos.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=os.path.join(REPO, ".photos"), help="destination (default .photos)")
    p.add_argument("--folders", default=os.path.join(REPO, "training", "recipes", "photos.txt"),
                   help="list of the training photo folders (default training/recipes/photos.txt)")
    p.add_argument("--wheels", default=os.path.join(REPO, ".whl-train"),
                   help="the wheel folder that travels with them, counted in the total (default .whl-train)")
    args = p.parse_args(argv)
    try:
        roots = read_folders(args.folders)
        train = copy_training(roots, os.path.join(args.out, "train"))
        stress = copy_stress(os.path.join(args.out, "stress"))
        sizes: List[Tuple[str, int]] = [("working tree", tree_bytes()), (_shown(args.out), _folder_bytes(args.out)),
                                        (_shown(args.wheels),
                                         _folder_bytes(args.wheels) if os.path.isdir(args.wheels) else 0)]
    except (OSError, ValueError, subprocess.CalledProcessError) as e:
        print(f"gpu-photos: error: {e}", file=sys.stderr)
        return 2
    for kind, copies in (("training", train), ("stress", stress)):
        print(f"gpu-photos: {len(copies)} {kind} photographs ({_mib(_bytes(copies))}) -> "
              f"{_shown(os.path.dirname(copies[0]))}")
    total = sum(n for _, n in sizes)
    print("gpu-photos: " + " + ".join(f"{name} {_mib(n)}" for name, n in sizes)
          + f" = {_mib(total)} of the {LIMIT_MIB} MiB that may travel")
    if total > LIMIT_MIB * 2 ** 20:
        print(f"gpu-photos: warning: over {LIMIT_MIB} MiB: the run cannot carry all of it", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
