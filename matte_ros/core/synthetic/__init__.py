"""Synthetic matting scenes with ground truth, no downloads (pure numpy/OpenCV; no ROS, no torch).

Shared by the fake camera (``SceneSequence``) and the dataset writer (``python -m training synth``).
Everything is a function of the ``numpy.random.Generator`` passed in, so a seed fixes the output.
"""
from .scene import SceneSequence, cast_shadow, jpeg_roundtrip, perturb_plate
from .subject import SUBJECT_KINDS, render_subject
from .textures import random_colors, render_background, render_texture

__all__ = ["render_background", "render_subject", "perturb_plate", "cast_shadow", "jpeg_roundtrip", "SceneSequence",
           "render_texture", "random_colors", "SUBJECT_KINDS"]
