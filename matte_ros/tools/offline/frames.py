"""What flows through the offline pipeline: input frames, raw bag messages passed through, results.

Frame       one decoded input image (RGB) with its name, time and, for a bag, its message
RawMessage  a bag message copied unchanged to an output bag (other topics, the input image itself)
Result      a frame with the engine's outputs and the optional error / refinement maps
"""
from typing import Any, NamedTuple, Optional

import numpy as np

__all__ = ["OfflineError", "RawMessage", "Stamp", "Frame", "Result", "OUTPUT_TYPES", "TYPE_ALIASES",
           "parse_output_types"]


class OfflineError(ValueError):
    """A problem with the user's inputs, options or files; the message is one line that says what to change."""


class RawMessage(NamedTuple):
    """A bag message as stored: its rosbags connection, bag timestamp (ns) and serialized bytes."""
    connection: Any
    timestamp: int
    data: bytes


class Stamp(NamedTuple):
    """The std_msgs/Header of an image message: stamp (sec, nanosec) and frame_id."""
    sec: int
    nanosec: int
    frame_id: str


class Frame(NamedTuple):
    """index: 0-based position in the input; name: output file stem (the input file's for images,
    a zero-padded index otherwise); rgb: (H, W, 3) uint8; time_s: seconds from the input's start
    (None for images); stamp / raw: the header and the message itself (bag inputs only)."""
    index: int
    name: str
    rgb: np.ndarray
    time_s: Optional[float] = None
    stamp: Optional[Stamp] = None
    raw: Optional[RawMessage] = None


class Result(NamedTuple):
    """frame: the input Frame; alpha: (H, W) float32 0..1; foreground: (H, W, 3) uint8;
    composite: (H, W, 3) uint8 or None; error / refinement: (H, W) float32 0..1 or None."""
    frame: Frame
    alpha: np.ndarray
    foreground: np.ndarray
    composite: Optional[np.ndarray]
    error: Optional[np.ndarray]
    refinement: Optional[np.ndarray]


# The output types, in the order they are written; the published programs' short names are accepted too.
OUTPUT_TYPES = ("alpha", "foreground", "composite", "error", "refinement")
TYPE_ALIASES = {"pha": "alpha", "fgr": "foreground", "com": "composite", "err": "error", "ref": "refinement"}


def parse_output_types(text: str) -> tuple:
    """"alpha,fgr,err" -> ("alpha", "foreground", "error") in OUTPUT_TYPES order; OfflineError for
    an unknown or empty list."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if not names:
        raise OfflineError(f"--output-types is empty; choose from {', '.join(OUTPUT_TYPES)}")
    chosen = set()
    for n in names:
        n = TYPE_ALIASES.get(n, n)
        if n not in OUTPUT_TYPES:
            raise OfflineError(f"unknown output type {n!r}; choose from {', '.join(OUTPUT_TYPES)} "
                               f"(or {', '.join(TYPE_ALIASES)})")
        chosen.add(n)
    return tuple(t for t in OUTPUT_TYPES if t in chosen)
