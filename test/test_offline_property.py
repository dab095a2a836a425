"""Property test of matte_offline: random inputs (folder, glob, video, bag), output paths (fresh,
overlapping an input, an earlier run's, somebody else's), flags and faults (a truncated video or
bag, a bad bag message, a garbage image, a full disk under the writer, Ctrl-C). After every run:
the inputs are unchanged, no traceback is printed, and the exit status says whether the outputs are
complete: 0 -> every output in place with every frame; otherwise nothing new in place but files
named .partial. The network is a stub (the properties are about files, not mattes)."""
import errno
import hashlib
import os
import random
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
from offline_inputs import drop_bag_messages, read_bag, scene, write_bag, write_pngs, write_video

from matte_ros.tools.offline import job
from matte_ros.tools.offline.cli import COMMAND
from matte_ros.tools.offline.writers import VIDEO_CODECS

H, W, N = 32, 48, 6
TYPES = ("alpha", "alpha,foreground", "composite,alpha")
OPEN_WRITER = job.open_writer


class StubEngine:
    """alpha: where the frame differs from the plate; Ctrl-C at frame ``stop_at``."""

    def __init__(self, stop_at=None):
        self.stop_at, self.seen, self.plate = stop_at, 0, None

    def set_background(self, plate):
        self.plate = plate

    def process(self, rgb, composite=None, maps=False):
        if self.seen == self.stop_at:
            raise KeyboardInterrupt
        self.seen += 1
        alpha = (np.abs(rgb.astype(np.int16) - self.plate).max(2) > 20).astype(np.float32)
        return SimpleNamespace(alpha=alpha, foreground=rgb, composite=rgb if composite is not None else None,
                               error=None, refinement=None)


class FullDisk:
    """A writer whose ``after``-th write fails as a full disk does."""

    def __init__(self, writer, after):
        self.writer, self.after = writer, after

    def write(self, result):
        self.after -= 1
        if self.after < 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "out")
        self.writer.write(result)

    def __getattr__(self, name):
        return getattr(self.writer, name)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """{kind: (path inside its case folder, frames it holds)} made once; each case copies them."""
    root = tmp_path_factory.mktemp("inputs")
    plate, frames = scene(N, H, W)
    frames = [plate] + frames[1:]
    made = {}
    write_pngs(root / "folder" / "shots", frames)
    made["folder"] = ("shots", N)
    write_pngs(root / "glob" / "shots", frames)
    made["glob"] = ("shots/*.png", N)
    write_pngs(root / "garbage" / "shots", frames)
    (root / "garbage" / "shots" / "f003.png").write_bytes(b"\x89PNG\r\n\x1a\nnot an image")
    made["garbage"] = ("shots", None)           # None: a bad frame at index 3
    os.makedirs(root / "video")
    write_video(str(root / "video" / "clip.mov"), frames)
    made["video"] = ("clip.mov", N)
    os.makedirs(root / "cut")
    write_video(str(root / "cut" / "clip.mp4"), frames * 3, codec="libx264")
    import av
    with av.open(str(root / "cut" / "clip.mp4")) as c:
        ends = [p.pos + p.size for p in c.demux(c.streams.video[0]) if p.size and p.pos is not None]
    with open(root / "cut" / "clip.mp4", "r+b") as f:
        f.truncate(ends[4])
    with av.open(str(root / "cut" / "clip.mp4")) as c:
        made["cut"] = ("clip.mp4", -sum(1 for _ in c.decode(c.streams.video[0])))    # negative: truncated
    write_bag(str(root / "bag" / "rec"), frames)
    made["bag"] = ("rec", N)
    write_bag(str(root / "badmsg" / "rec"), frames, corrupt=[3])
    made["badmsg"] = ("rec", None)
    write_bag(str(root / "short" / "rec"), frames)
    drop_bag_messages(str(root / "short" / "rec"), 4)
    made["short"] = ("rec", -4)
    return root, made


def snapshot(folder):
    out = {}
    for top, _, names in os.walk(folder):
        for n in names:
            p = os.path.join(top, n)
            with open(p, "rb") as f:
                out[os.path.relpath(p, folder)] = hashlib.sha256(f.read()).hexdigest()
    return out


def frames_in(path, fmt, kind, codec):
    """Frames of output type ``kind`` at its final place."""
    if fmt == "png":
        return len(os.listdir(os.path.join(path, kind)))
    if fmt == "bag":
        return len(read_bag(path).get(f"/matte/{kind}", []))
    import av
    with av.open(os.path.join(path, kind + VIDEO_CODECS[codec].extension)) as c:
        return sum(1 for _ in c.decode(c.streams.video[0]))


def call(args) -> int:
    """matte_offline's exit code, through the package's runner as the console script runs it."""
    try:
        return COMMAND.run(args)
    except SystemExit as e:         # a flag refused as it is parsed
        return e.code


def one_case(seed, inputs, tmp_path, monkeypatch, capsys):
    rng = random.Random(seed)
    root, made = inputs
    kind = rng.choice(sorted(made))
    rel, held = made[kind]
    case = tmp_path / f"case{seed}"
    shutil.copytree(root / kind, case)
    source = str(case / rel)
    is_bag = kind in ("bag", "badmsg", "short")
    fmt = "bag" if is_bag else ("png" if kind in ("folder", "glob", "garbage") else "video")
    if not is_bag and rng.random() < 0.3:
        fmt = rng.choice(["png", "video"])
    where = rng.choice(["fresh"] * 4 + ["the input", "inside the input", "around the input", "earlier run",
                                        "somebody's"])
    out = {"fresh": case / "out", "the input": case / rel.split("/")[0], "inside the input": case / rel / "m",
           "around the input": case, "earlier run": case / "out", "somebody's": case / "out"}[where]
    types = rng.choice(TYPES)
    args = [source, "-o", str(out), "--quiet", "--output-types", types, "--plate-frames", str(rng.choice([1, 1, 2, 9])),
            "--plate-max-moving", "1"]      # the scenes' subject moves from frame 0: no stillness check
    if fmt != ("bag" if is_bag else "png" if kind in ("folder", "glob", "garbage") else "video"):
        args += ["--format", fmt]
    if fmt == "video":
        args += ["--video-codec", rng.choice(["png", "h264"])]
    for flag, values in (("--bench", ["2", "0"]), ("--max-frame-pixels", ["100", str(H * W)]), ("--fps", ["5", "nan"])):
        if rng.random() < 0.15 and (flag != "--fps" or fmt == "video"):
            args += [flag, rng.choice(values)]
    for flag in ("--allow-truncated", "--overwrite"):
        if rng.random() < 0.4:
            args.append(flag)
    stop_at = rng.choice([None] * 6 + [1, 3])
    full_after = rng.choice([None] * 6 + [0, 2])
    monkeypatch.setattr(job, "_engine", lambda a, t: StubEngine(stop_at))
    monkeypatch.setattr(job, "open_writer", lambda *a: FullDisk(OPEN_WRITER(*a), full_after) if full_after is not None
                        else OPEN_WRITER(*a))
    if where == "earlier run":
        monkeypatch.setattr(job, "_engine", lambda a, t: StubEngine())
        assert call([a for a in args if a != "--overwrite"] + ["--allow-truncated"]) in (0, 2)
        monkeypatch.setattr(job, "_engine", lambda a, t: StubEngine(stop_at))
    elif where == "somebody's":
        os.makedirs(out / "alpha", exist_ok=True)
        (out / "alpha" / "keep.png").write_bytes(b"their file")
        (out / "alpha.mov").write_bytes(b"their video")
    capsys.readouterr()
    before = snapshot(case)
    inputs_before = {p: h for p, h in before.items() if p.startswith(rel.split("/")[0] + "/") or p == rel}
    rc = call(args)
    err = capsys.readouterr().err
    after = snapshot(case)
    what = f"seed {seed}: {kind} {where} {' '.join(args[1:])} stop_at={stop_at} full_after={full_after}\n{err}"
    assert "Traceback" not in err, what
    assert rc in (0, 2, 130), what
    assert {p: after.get(p) for p in inputs_before} == inputs_before, what              # inputs unchanged
    changed = {p for p in set(before) | set(after) if before.get(p) != after.get(p)}
    if rc == 0:
        bench = int(args[args.index("--bench") + 1]) if "--bench" in args else None
        if held is None:                                     # only the frames before the bad one were read
            assert bench is not None and bench <= 3, what
        else:
            assert held > 0 or "--allow-truncated" in args or bench is not None, what
        want = min(x for x in (bench, None if held is None else abs(held)) if x is not None)
        codec = args[args.index("--video-codec") + 1] if fmt == "video" else None
        for t in types.split(","):
            assert frames_in(str(out), fmt, t, codec) == want, what
    else:
        assert all(".partial" in p or p.endswith(".matte_offline.json") or p not in after for p in changed), what
        vanished = {p for p in changed if p not in after}
        assert all(".partial" in p for p in vanished), what
        if rc == 2:
            assert not any(".partial" in p for p in set(after) - set(before)), what
            assert err.startswith("matte_offline: error:") and err.count("\n") == 1, what
    return rc


def test_twenty_random_runs(inputs, tmp_path, monkeypatch, capsys):
    codes = [one_case(seed, inputs, tmp_path, monkeypatch, capsys) for seed in range(20)]
    assert min(codes.count(c) for c in (0, 2, 130)) >= 1


@pytest.mark.slow
def test_two_hundred_and_forty_random_runs(inputs, tmp_path, monkeypatch, capsys):
    codes = [one_case(seed, inputs, tmp_path, monkeypatch, capsys) for seed in range(1000, 1240)]
    assert min(codes.count(c) for c in (0, 2, 130)) >= 10
