"""Synthetic matting scenes with ground truth, no downloads (pure numpy/OpenCV; no ROS, no torch).

Shared by the fake camera (``SceneSequence``) and the dataset writer (``python -m training synth``).
Everything is a function of the ``numpy.random.Generator`` passed in, so a seed fixes the output.
"""
from .families import HAIR_DENSITIES, HELD_OUT_FAMILIES, TRAINING_FAMILIES
from .scene import SceneSequence, cast_shadow, jpeg_roundtrip, perturb_plate
from .subject import SUBJECT_KINDS, render_subject
from .textures import flat_texture, random_colors, render_background, render_texture

__all__ = ["render_background", "render_subject", "perturb_plate", "cast_shadow", "jpeg_roundtrip", "SceneSequence",
           "render_texture", "flat_texture", "random_colors", "SUBJECT_KINDS", "TRAINING_FAMILIES",
           "HELD_OUT_FAMILIES", "HAIR_DENSITIES"]
