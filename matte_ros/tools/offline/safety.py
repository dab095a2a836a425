"""What a run may touch: never an input, and of what is in its way only what this program wrote.

    inputs = input_paths(args)             every file or folder the run reads, named ("the input", "--plate", ...)
    check_apart(written, roots, inputs)    OfflineError when a path the run writes is, contains or lies
                                           inside an input (an output root: is or lies inside)
    Manifest(root)                         root/.matte_offline.json: the files (relative to root) this
                                           program wrote there, with the size and modification time they
                                           had; foreign(path) names the first file at or below path that
                                           is not listed, or was changed since

Both checks run before anything is created or removed, and before the model loads. Paths are
compared after resolving symbolic links (and as files by device and inode, so a hard link to an
input is that input).
"""
import glob
import json
import os
import shutil
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from matte_ros.core.files import atomic_write

from .frames import OfflineError
from .options import parse_colour

__all__ = ["MANIFEST", "input_paths", "check_apart", "Manifest", "files_under"]

MANIFEST = ".matte_offline.json"
_TOOL = "matte_offline"


def input_paths(args) -> List[Tuple[str, str]]:
    """[(what, path)] of everything the run reads: the input and --plate-folder (a glob: its files),
    --plate, --composite-bg when it names an image, --checkpoint."""
    found = []
    for what, spec in (("the input", args.input), ("--plate-folder", args.plate_folder)):
        if spec is None:
            continue
        if not os.path.exists(spec) and any(c in spec for c in "*?["):
            found += [(what, p) for p in sorted(glob.glob(spec))]
        else:
            found.append((what, spec))
    for what, path in (("--plate", args.plate), ("--checkpoint", args.checkpoint)):
        if path is not None:
            found.append((what, path))
    if args.composite_bg is not None and parse_colour(args.composite_bg) is None:
        found.append(("--composite-bg", args.composite_bg))
    return found


def _real(path: str) -> str:
    return os.path.realpath(os.path.abspath(path))


def _relation(path: str, other: str) -> Optional[str]:
    """How ``path`` stands to ``other``: "is", "contains", "lies inside", or None when apart."""
    a, b = _real(path), _real(other)
    if a == b:
        return "is"
    try:
        if os.path.exists(path) and os.path.exists(other) and os.path.samefile(path, other):
            return "is"
    except OSError:
        pass
    if b.startswith(a.rstrip(os.sep) + os.sep):
        return "contains"
    if a.startswith(b.rstrip(os.sep) + os.sep):
        return "lies inside"
    return None


def check_apart(written: Iterable[str], roots: Iterable[str], inputs: Sequence[Tuple[str, str]]) -> None:
    """OfflineError, one line, when a path in ``written`` is, contains or lies inside an input, or a
    folder in ``roots`` (where the run only adds entries) is or lies inside one."""
    checks = [(p, ("is", "contains", "lies inside")) for p in written] + [(r, ("is", "lies inside")) for r in roots]
    for path, refused in checks:
        for what, inp in inputs:
            rel = _relation(path, inp)
            if rel in refused:
                raise OfflineError(f"output {path} {rel} {what} {inp}; inputs are never written: choose an "
                                   "output path apart from every input (nothing was touched)")


def files_under(path: str) -> List[str]:
    """The files (and symbolic links) at or below ``path``: [path] for a file, [] when missing."""
    if os.path.islink(path) or os.path.isfile(path):
        return [path]
    found = []
    for top, dirs, files in os.walk(path):
        found += [os.path.join(top, n) for n in files]
        found += [os.path.join(top, d) for d in dirs if os.path.islink(os.path.join(top, d))]
    return sorted(found)


class Manifest:
    """The files this program wrote in ``root`` (relative path -> [size, mtime_ns]), kept in root/MANIFEST."""

    def __init__(self, root: str):
        self.root, self.path = root, os.path.join(root, MANIFEST)
        self.files: Dict[str, List[int]] = self._load()

    def _load(self) -> Dict[str, List[int]]:
        if not os.path.lexists(self.path):
            return {}
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            raise OfflineError(f"{self.path} is not matte_offline's manifest ({e}); not touching {self.root}") from None
        files = data.get("files") if isinstance(data, dict) and data.get("tool") == _TOOL else None
        if not isinstance(files, dict) or not all(isinstance(v, list) for v in files.values()):
            raise OfflineError(f"{self.path} is not matte_offline's manifest; not touching {self.root}")
        return files

    def _rel(self, path: str) -> str:
        return os.path.relpath(path, self.root)

    @staticmethod
    def _stamp(path: str) -> List[int]:
        st = os.lstat(path)
        return [st.st_size, st.st_mtime_ns]

    def foreign(self, path: str) -> Optional[str]:
        """The first file at or below ``path`` that this program did not write or that was changed
        since (None: all of them are its, as it left them)."""
        for f in files_under(path):
            if f != self.path and self.files.get(self._rel(f)) != self._stamp(f):
                return f
        return None

    def add(self, path: str) -> None:
        self.files.update((self._rel(f), self._stamp(f)) for f in files_under(path) if f != self.path)

    def remove(self, path: str) -> None:
        """Delete ``path`` (a file, or a folder of files all listed here) and forget its files."""
        stranger = self.foreign(path)
        if stranger is not None:
            raise OfflineError(f"{stranger} was not written by matte_offline; not removing {path}")
        for f in files_under(path):
            self.files.pop(self._rel(f), None)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.remove(path)

    def save(self) -> None:
        """Write the manifest (atomically); with nothing listed, remove it."""
        self.files = {f: v for f, v in self.files.items() if os.path.lexists(os.path.join(self.root, f))}
        if not self.files:
            if os.path.lexists(self.path):
                os.remove(self.path)
            return
        text = json.dumps({"tool": _TOOL, "files": dict(sorted(self.files.items()))}, indent=1) + "\n"

        def write(tmp: str) -> None:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
        atomic_write(self.path, write)
