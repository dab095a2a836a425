"""Outputs written under a temporary name and moved into place only when the run succeeded.

    png    OUT/<type>.partial/          -> OUT/<type>/
    video  OUT/<type>.partial.<ext>     -> OUT/<type>.<ext>
    bag    OUT.partial/<name>/          -> OUT        (<name>: OUT's last component, the name the
                                                       bag's storage file is given)

What this program wrote is listed in a manifest (safety.Manifest): OUT's for png and video, the
bag's own for a bag (OUT.partial's for a partial bag). ``check`` refuses, before anything is
touched, whatever is in the way that the manifest does not list, and what it lists unless
``--overwrite``. A run that fails calls ``discard``: its staged outputs are removed, so nothing
new is in place and earlier outputs stay as they were. Ctrl-C calls ``keep_partial``: the staged
outputs stay, complete files of the frames done, under their .partial names, listed so that a
later ``--overwrite`` may replace them. ``commit`` replaces the earlier outputs this program wrote
and moves the new ones into place.
"""
import os
import shutil
from typing import List, Sequence, Tuple

from .frames import OfflineError
from .safety import MANIFEST, Manifest
from .writers import output_path

__all__ = ["PARTIAL", "Staging"]

PARTIAL = ".partial"


def _occupied(path: str) -> bool:
    """A file or link, or a folder that is not empty."""
    if os.path.islink(path) or os.path.isfile(path):
        return True
    return os.path.isdir(path) and bool(os.listdir(path))


def _delete(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


class Staging:
    """The outputs of one run of format ``fmt`` at ``out``: [(final path, staged path)]."""

    def __init__(self, fmt: str, out: str, types: Sequence[str], codec: str = "h264"):
        self.fmt, self.out = fmt, os.path.normpath(out)
        self._made_out = False
        if fmt == "bag":
            self.holder = self.out + PARTIAL
            staged = os.path.join(self.holder, os.path.basename(os.path.abspath(self.out)))
            self.pairs: List[Tuple[str, str]] = [(self.out, staged)]
        else:
            self.holder = None
            self.pairs = [(output_path(fmt, self.out, t, codec), output_path(fmt, self.out, t, codec, PARTIAL))
                          for t in types]

    # ---- what the run touches ------------------------------------------------------------------
    @property
    def written(self) -> List[str]:
        """Every path the run may create, replace or remove."""
        paths = [p for pair in self.pairs for p in pair]
        if self.holder is not None:
            return paths + [self.holder, os.path.join(self.out, MANIFEST), os.path.join(self.holder, MANIFEST)]
        return paths + [os.path.join(self.out, MANIFEST)]

    @property
    def roots(self) -> List[str]:
        """Folders the run adds entries to (and creates when missing), leaving the rest alone."""
        return [] if self.holder is not None else [self.out]

    def _in_the_way(self) -> List[Tuple[str, str]]:
        """[(path, the folder whose manifest would list it)]."""
        if self.holder is not None:
            return [(self.out, self.out), (self.holder, self.holder)]
        return [(p, self.out) for pair in self.pairs for p in pair]

    def check(self, overwrite: bool) -> None:
        """OfflineError (one line, nothing touched) for anything in the way that this program did not
        write, or that it did and ``overwrite`` is not given."""
        if self.holder is None and os.path.lexists(self.out) and not os.path.isdir(self.out):
            raise OfflineError(f"output {self.out} exists and is not a folder; choose another output path")
        occupied = [(path, root) for path, root in self._in_the_way() if _occupied(path)]
        for path, root in occupied:
            stranger = Manifest(root).foreign(path)
            if stranger is not None:
                raise OfflineError(f"output {path} exists and matte_offline did not write {stranger} (its {MANIFEST} "
                                   "does not list it as it was written); not touching it: choose another output "
                                   "path or move it away")
        if occupied and not overwrite:
            raise OfflineError(f"output {occupied[0][0]} exists; pass --overwrite to replace it")

    # ---- the run --------------------------------------------------------------------------------
    def begin(self) -> Tuple[str, str]:
        """Remove the partial outputs of an earlier run (``check`` found them this program's), create
        the folders; -> (path, suffix) for writers.open_writer."""
        finals = {final for final, _ in self.pairs}
        for path, root in self._in_the_way():
            if path not in finals and _occupied(path):
                manifest = Manifest(root)
                manifest.remove(path)
                manifest.save()
        if self.holder is not None:
            os.makedirs(self.holder, exist_ok=True)
            return self.pairs[0][1], ""
        self._made_out = not os.path.isdir(self.out)
        os.makedirs(self.out, exist_ok=True)
        return self.out, PARTIAL

    def discard(self) -> None:
        """Remove what this run wrote (after a failure): nothing new stays in place."""
        for _, staged in self.pairs:
            _delete(staged)
        if self.holder is not None:
            _delete(self.holder)
        elif self._made_out and os.path.isdir(self.out) and not os.listdir(self.out):
            os.rmdir(self.out)

    def keep_partial(self) -> List[str]:
        """List the staged outputs in their manifest and return their paths (after Ctrl-C)."""
        if self.holder is not None:
            manifest, kept = Manifest(self.holder), [self.holder]
            manifest.add(self.holder)
        else:
            manifest = Manifest(self.out)
            kept = [staged for _, staged in self.pairs if os.path.lexists(staged)]
            for staged in kept:
                manifest.add(staged)
        manifest.save()
        return kept

    def commit(self) -> List[str]:
        """Replace the earlier outputs this program wrote, move the new ones into place; their paths."""
        if self.holder is not None:
            final, staged = self.pairs[0]
            own = Manifest(staged)
            own.add(staged)
            own.save()                       # the bag lists its own files: a later --overwrite may replace it
            self._clear(final, Manifest(final))
            os.rename(staged, final)
            _delete(self.holder)
            return [final]
        manifest = Manifest(self.out)
        for final, staged in self.pairs:
            self._clear(final, manifest)
            os.rename(staged, final)
            manifest.add(final)
        manifest.save()
        return [final for final, _ in self.pairs]

    @staticmethod
    def _clear(final: str, manifest: Manifest) -> None:
        if _occupied(final):
            manifest.remove(final)           # checked again: only what the manifest lists
            manifest.save()
        elif os.path.isdir(final):
            os.rmdir(final)                  # an empty folder in the way
