"""Host <-> device copies of a frame loop: numpy views on the CPU; on CUDA, pinned host memory and
one stream per owner, so that every copy is an asynchronous DMA and one synchronisation per frame
waits for all of them.

    io = FrameIO(device)
    with io.stream():
        u8 = io.upload(frame)                 # (H, W, 3) uint8 -> device tensor (non-blocking on CUDA)
        ...                                   # work queued on io's stream
        pending = io.download(result)         # device tensor -> host copy in flight
        ...                                   # host work here overlaps the device
    arrays = io.finish(pending, ...)          # waits once; numpy arrays

Pinned buffers come from PyTorch's caching host allocator (reused once the copies that read or
wrote them are done), and each returned array owns its buffer, so results stay valid after later frames.
"""
import contextlib
from typing import Iterator, List, Optional, Union

import numpy as np
import torch

__all__ = ["FrameIO"]

Pending = Union[np.ndarray, torch.Tensor]


class FrameIO:
    """Copies for ``device``: plain on the CPU, pinned and on a stream of its own on CUDA."""

    def __init__(self, device: torch.device):
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self._stream = torch.cuda.Stream(self.device) if self.cuda else None

    @contextlib.contextmanager
    def stream(self) -> Iterator[None]:
        """Queue the device work inside on this object's stream (no-op on the CPU)."""
        if self._stream is None:
            yield
        else:
            with torch.cuda.stream(self._stream):
                yield

    def upload(self, frame: np.ndarray) -> torch.Tensor:
        """frame: a C-contiguous array -> the same data on the device (a view on the CPU)."""
        if not self.cuda:
            return torch.from_numpy(frame)
        host = torch.empty(frame.shape, dtype=torch.from_numpy(frame[:0]).dtype, pin_memory=True)
        host.numpy()[...] = frame
        return host.to(self.device, non_blocking=True)

    def download(self, x: torch.Tensor) -> Pending:
        """x: a device tensor -> its host copy (a numpy view on the CPU, a pinned tensor being
        filled on CUDA: read it through ``finish``)."""
        if not self.cuda:
            return x.contiguous().numpy()
        host = torch.empty(x.shape, dtype=x.dtype, pin_memory=True)
        host.copy_(x, non_blocking=True)
        return host

    def finish(self, *pending: Optional[Pending]) -> List[Optional[np.ndarray]]:
        """Wait for this object's stream (CUDA), then the downloads as numpy arrays (None stays None)."""
        if self._stream is not None:
            self._stream.synchronize()
        return [p.numpy() if isinstance(p, torch.Tensor) else p for p in pending]
