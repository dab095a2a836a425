"""The offline run: reading, inference and writing overlapped in three threads joined by bounded queues.

    reader thread   source.frames() -> in queue          (decoding, bag deserialisation)
    calling thread  in queue -> plate, engine.process (with the maps when asked) -> out queue   (the network)
    writer thread   out queue -> writer.write / write_raw (encoding, files)

Inference runs in the calling thread so that Ctrl-C (KeyboardInterrupt) lands there: the run then
stops reading, the writer finishes the results already made and the writer is closed, so a video
is playable and a bag opens. Errors in either helper thread stop the run and are raised here.
"""
import contextlib
import queue
import signal
import sys
import threading
import time
from typing import Callable, List, NamedTuple, Optional, Sequence

import numpy as np

from matte_ros.core.engine import MattingEngine, SizeMismatchError

from .frames import Frame, OfflineError, RawMessage, Result

__all__ = ["RunStats", "matte_frame", "run", "FirstFrames", "bench_offline", "no_interrupts"]

_END = object()
_POLL_S = 0.1


class RunStats(NamedTuple):
    frames: int
    seconds: float
    interrupted: bool

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class _Failed(NamedTuple):
    error: BaseException


def _put(q: "queue.Queue", item, stop: threading.Event) -> bool:
    """Put unless ``stop`` is set first; False when stopped."""
    while not stop.is_set():
        try:
            q.put(item, timeout=_POLL_S)
            return True
        except queue.Full:
            pass
    return False


@contextlib.contextmanager
def no_interrupts():
    """SIGINT ignored inside the block when this is the main thread (elsewhere signals never arrive)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def matte_frame(engine: MattingEngine, frame: Frame, plates, types: Sequence[str], composite=None) -> Result:
    """One frame through the engine: its plate from ``plates`` (set when new), alpha and foreground,
    the composite when asked, and the error / refinement maps of the same coarse pass when asked."""
    plate = plates.for_frame(frame)
    if plate is not None:
        engine.set_background(plate)
    try:
        res = engine.process(frame.rgb, composite=composite if "composite" in types else None,
                             maps="error" in types or "refinement" in types)
    except SizeMismatchError:
        h, w = frame.rgb.shape[:2]
        raise OfflineError(f"frame {frame.name} is {w}x{h} but the plate is another size; "
                           "every frame must have the plate's size") from None
    return Result(frame, res.alpha, res.foreground, res.composite, res.error, res.refinement)


def _read(source, q: "queue.Queue", stop: threading.Event) -> None:
    try:
        for item in source.frames():
            if not _put(q, item, stop):
                return
        _put(q, _END, stop)
    except BaseException as e:         # handed to the calling thread, which raises it
        _put(q, _Failed(e), stop)


def _write(writer, q: "queue.Queue", failed: List[BaseException]) -> None:
    """Write the queue's items until _END, then close the writer (in this thread: an SQLite bag may
    only be used by the thread that opened it)."""
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if failed:
                continue                    # keep draining so the calling thread never blocks
            try:
                if isinstance(item, RawMessage):
                    writer.write_raw(item)
                else:
                    writer.write(item)
            except BaseException as e:
                failed.append(e)
    finally:
        try:
            writer.close()
        except BaseException as e:
            failed.append(e)


def run(source, engine: MattingEngine, plates, writer, types: Sequence[str], composite=None,
        progress: bool = True, queue_size: int = 4, on_result: Optional[Callable[[Result], None]] = None) -> RunStats:
    """Matte every frame of ``source`` into ``writer``, which the writer thread uses and closes.
    ``on_result`` is called in the calling thread after each frame. Returns RunStats; interrupted
    is True after Ctrl-C."""
    from tqdm import tqdm
    stop = threading.Event()
    in_q: queue.Queue = queue.Queue(maxsize=queue_size)
    out_q: queue.Queue = queue.Queue(maxsize=queue_size)
    failed: List[BaseException] = []
    reader = threading.Thread(target=_read, args=(source, in_q, stop), name="offline-reader", daemon=True)
    writing = threading.Thread(target=_write, args=(writer, out_q, failed), name="offline-writer", daemon=True)
    bar = tqdm(total=source.count, unit="frame", file=sys.stderr, disable=not progress, dynamic_ncols=True,
               smoothing=0.1)
    n, interrupted, start = 0, False, time.perf_counter()
    reader.start()
    writing.start()
    try:
        while not failed:
            try:
                item = in_q.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            if item is _END:
                break
            if isinstance(item, _Failed):
                raise item.error
            if isinstance(item, RawMessage):
                out_q.put(item)
                continue
            result = matte_frame(engine, item, plates, types, composite)
            out_q.put(result)
            n += 1
            bar.update(1)
            if on_result is not None:
                on_result(result)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        stop.set()
        with no_interrupts():              # a second Ctrl-C must not cut the closing of the outputs short
            out_q.put(_END)
            writing.join()
        bar.close()
        reader.join(timeout=5.0)
    if failed:
        raise failed[0]
    return RunStats(n, time.perf_counter() - start, interrupted)


class FirstFrames:
    """The first ``n`` frames of a source (and the passed-through messages before the n-th's end)."""

    def __init__(self, source, n: int):
        self.source, self.n = source, n
        self.kind, self.fps, self.size = source.kind, source.fps, source.size
        self.count = n if source.count is None else min(n, source.count)

    def __getattr__(self, name):
        return getattr(self.source, name)

    def frames(self):
        seen = 0
        for item in self.source.frames():
            if isinstance(item, Frame):
                if seen == self.n:
                    return
                seen += 1
            yield item


def bench_offline(source, engine: MattingEngine, make_plates: Callable[[], object], make_writer: Callable[[], object],
                  types: Sequence[str], frames: int, composite=None) -> dict:
    """Offline frames/s against the engine alone on the same first ``frames`` frames.

    The engine alone runs matte_frame over the frames decoded in memory beforehand (once before and
    once after the offline run, averaged); the offline run reads, mattes and writes them through
    ``make_writer()``. Returns {"frames", "offline_fps", "engine_fps", "ratio", "interrupted"}; after
    Ctrl-C in the offline run the engine is not timed again (engine_fps is the first pass's)."""
    head = FirstFrames(source, frames)
    decoded = [f for f in head.frames() if isinstance(f, Frame)]
    if not decoded:
        raise OfflineError("no frames to benchmark")

    def engine_alone() -> float:
        plates = make_plates()
        t = time.perf_counter()
        for f in decoded:
            matte_frame(engine, f, plates, types, composite)
        return len(decoded) / (time.perf_counter() - t)

    matte_frame(engine, decoded[0], make_plates(), types, composite)          # warm-up
    before = engine_alone()
    stats = run(head, engine, make_plates(), make_writer(), types, composite, progress=False)
    engine_fps = before if stats.interrupted else float(np.mean([before, engine_alone()]))
    return {"frames": stats.frames, "offline_fps": stats.fps, "engine_fps": engine_fps,
            "ratio": stats.fps / engine_fps, "interrupted": stats.interrupted}
