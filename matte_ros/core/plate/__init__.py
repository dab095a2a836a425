"""The background plate, in one place: how it is captured, stored, aligned, kept up and held for
the network. Pure numpy/OpenCV apart from the tensors the engine keeps in its entries; no ROS.

capture.py    averaging frames of the empty, still scene (PlateCapture for the node, average_frames
              for the offline tool), with the stillness check
store.py      plates on disk, one PNG per resolution (plate_<W>x<H>.png)
align.py      camera motion between plate and frame: ECC, ORB, SIFT or ORB then ECC behind one
              interface (estimate_warp, align), used by upkeep and by ``matte_offline --align``
upkeep/       keeping a plate matching the camera frame by frame (exposure, drift, motion, health)
prepared.py   the engine's plate per frame size and what the network made of it
"""
from .align import ALIGN_METHODS, DEFAULT_METHOD, Alignment, align, estimate_warp
from .capture import MAX_MOVING, MOTION_LEVELS, CaptureResult, PlateCapture, average_frames, thumbnail
from .prepared import NoBackgroundError, PlateEntry, SizeMismatchError, find_plate
from .store import load_plates, plate_file, remove_plates, save_plate

__all__ = ["PlateCapture", "CaptureResult", "average_frames", "thumbnail", "MOTION_LEVELS", "MAX_MOVING",
           "plate_file", "save_plate", "load_plates", "remove_plates", "ALIGN_METHODS", "DEFAULT_METHOD",
           "Alignment", "align", "estimate_warp", "PlateEntry", "find_plate", "NoBackgroundError",
           "SizeMismatchError"]
