"""CUDA graphs of the fast path: where a frame's work has static shapes, the whole FastRefine call
(a few hundred small kernels at HD) is captured once per frame shape, plate shape and settings and
replayed for every later frame, so the host launches one graph instead of every kernel.

    graphed = GraphedRefine(fast)                  # fast: a FastRefine on CUDA
    pha, fgr = graphed(src, plate, settings)       # the numbers fast(src, plate, settings) gives

Static shapes: sync-free sampling (a fixed number of patches, no host synchronisation) and full
mode (see ``FastRefine.static_shapes``); thresholding, whose patch count is data-dependent, runs
eagerly. A captured call reads a private copy of src and of the plate (copied in before each replay;
the plate only when a different one is given) and its outputs are cloned, so results stay valid
after later calls. A capture that fails (an operation CUDA graphs cannot hold) is reported once by a
RuntimeWarning and that key runs eagerly from then on.
"""
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Hashable, Optional, Tuple

import torch

from .fast import FastRefine, PreparedPlate, RefineSettings

__all__ = ["GraphedRefine", "capture_cuda_graph"]

WARMUP_CALLS = 3            # eager calls before a capture (allocations, cuDNN/cuBLAS kernel choice)
MAX_GRAPHS = 4              # captured keys kept (least recently used dropped): each holds its own memory pool

Outputs = Tuple[torch.Tensor, torch.Tensor]
Capture = Callable[[Callable[[], Outputs]], Tuple[Callable[[], None], Outputs]]


def capture_cuda_graph(run: Callable[[], Outputs]) -> Tuple[Callable[[], None], Outputs]:
    """``run`` (reading and writing only tensors that stay alive) warmed up on a side stream, then
    captured into a torch.cuda.CUDAGraph -> (replay, the outputs the replays write)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(WARMUP_CALLS):
            run()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        outputs = run()
    return graph.replay, outputs


@dataclass
class _Captured:
    src: torch.Tensor                       # the static input the graph reads
    plate: PreparedPlate                    # the static plate the graph reads
    replay: Callable[[], None]
    outputs: Outputs                        # what each replay writes
    copied: PreparedPlate                   # the plate whose numbers ``plate`` holds now


class GraphedRefine:
    """``fast`` (a FastRefine) with its static-shape calls captured and replayed (see the module);
    ``capture`` is how a call is captured (default: a CUDA graph)."""

    def __init__(self, fast: FastRefine, capture: Capture = capture_cuda_graph, max_graphs: int = MAX_GRAPHS):
        self.fast = fast
        self._capture = capture
        self._max = max_graphs
        self._graphs: OrderedDict[Hashable, Optional[_Captured]] = OrderedDict()   # None: capture failed

    @property
    def captured(self) -> int:
        """How many keys have a captured graph now."""
        return sum(g is not None for g in self._graphs.values())

    @torch.inference_mode()
    def __call__(self, src: torch.Tensor, plate: PreparedPlate,
                 settings: Optional[RefineSettings] = None) -> Outputs:
        s = self.fast.settings_or_default(settings)
        if not self.fast.static_shapes(s):
            return self.fast(src, plate, s)
        self.fast.check(src, plate)             # a wrong input raises here, not as a failed capture
        key = (tuple(src.shape), src.dtype, plate.key, s)
        if key not in self._graphs:
            self._graphs[key] = self._new(src, plate, s)
            while len(self._graphs) > self._max:
                self._graphs.popitem(last=False)
        self._graphs.move_to_end(key)
        g = self._graphs[key]
        if g is None:
            return self.fast(src, plate, s)
        g.src.copy_(src)
        if g.copied is not plate:
            g.plate.copy_(plate)
            g.copied = plate
        g.replay()
        return g.outputs[0].clone(), g.outputs[1].clone()

    def _new(self, src: torch.Tensor, plate: PreparedPlate, s: RefineSettings) -> Optional[_Captured]:
        """The capture of ``key``, or None (warned) where it fails."""
        static_src, static_plate = src.clone(), plate.clone()
        try:
            replay, outputs = self._capture(lambda: self.fast(static_src, static_plate, s))
        except Exception as e:              # what a capture raises depends on the op and the CUDA version
            warnings.warn(f"the fast path is not captured as a CUDA graph for {tuple(src.shape)} frames "
                          f"({type(e).__name__}: {e}); it runs eagerly", RuntimeWarning, stacklevel=3)
            return None
        return _Captured(static_src, static_plate, replay, outputs, plate)
