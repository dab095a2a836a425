"""The coarse pass of the fast path (backbone, ASPP, decoder up to its last convolution) run as
TorchScript traces, one per input shape.

    coarse = TracedCoarse(net)              # net: the fast path's folded MattingRefine
    xl, skip = coarse(x)                    # == net.decoder.last_inputs(net.aspp(f[0]), *f[1:]), f = net.backbone(x)

Why: run from Python, these ~100 operations each return to the interpreter and take Python's global
interpreter lock; a trace runs them in C++ without it. Several threads matting at once in one
process (one per camera, ``ros/cameras.py``) then no longer queue for the lock between operations:
on a 2-core CPU two threads matting 640x480 frames took 1.37x the time per frame of one thread with
the eager modules, 1.14x with the trace (``tools/bench_cameras.py`` measures the node). The trace
runs the same operations on the same weights (shared, not copied) with graph optimisation off, so
the numbers are bit-identical to the eager modules'. A shape whose trace fails runs eagerly.
"""
import threading
import warnings
from typing import Dict, Optional, Tuple

import torch
from torch import nn

__all__ = ["TracedCoarse", "MAX_SHAPES"]

MAX_SHAPES = 8      # traces kept (frame sizes x backbone scales); beyond, the oldest is dropped


class _Coarse(nn.Module):
    """What is traced: x (B, 6, h, w) -> (xl, skip), the decoder's last convolution's inputs."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.backbone, self.aspp, self.decoder = net.backbone, net.aspp, net.decoder

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        f = self.backbone(x)
        return self.decoder.last_inputs(self.aspp(f[0]), f[1], f[2], f[3], f[4])


class TracedCoarse:
    """``net``'s coarse pass, traced per (shape, dtype, memory format) of its input on first use."""

    def __init__(self, net: nn.Module):
        self._eager = _Coarse(net).eval()
        self._traces: Dict[Tuple, Optional[torch.jit.ScriptModule]] = {}
        self._lock = threading.Lock()

    def _trace_for(self, x: torch.Tensor) -> Optional[torch.jit.ScriptModule]:
        key = (tuple(x.shape), x.dtype, x.is_contiguous(memory_format=torch.channels_last))
        trace = self._traces.get(key, False)
        if trace is not False:
            return trace
        with self._lock:
            if key not in self._traces:
                try:
                    with torch.jit.optimized_execution(False), warnings.catch_warnings():
                        warnings.simplefilter("ignore", torch.jit.TracerWarning)
                        warnings.simplefilter("ignore", FutureWarning)      # torch 2.14: "trace is deprecated"
                        trace = torch.jit.trace(self._eager, x, check_trace=False)
                except Exception:       # an operation the tracer cannot follow: this shape runs eagerly
                    trace = None
                if len(self._traces) >= MAX_SHAPES:
                    self._traces.pop(next(iter(self._traces)))
                self._traces[key] = trace
            return self._traces[key]

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        trace = self._trace_for(x)
        if trace is None:
            return self._eager(x)
        with torch.jit.optimized_execution(False):
            return trace(x)
