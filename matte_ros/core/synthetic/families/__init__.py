"""The registry of subject families: which exist, which training may draw, which are held out.

Each family is a function ``layers(rng, h, w, palette, texture, **options) -> [Layer, ...]`` (back
to front, see :mod:`..layers`). Training data (``python -m training synth``) draws only from
``TRAINING_FAMILIES``; ``HELD_OUT_FAMILIES`` (whole families of shapes and surfaces: animal-like
bodies under dense fur, furniture of bars and slats) are reserved for the stress suite
(``python -m training eval --suite stress``), so that it measures matting and not memory of the
training shapes.
"""
from typing import Callable, Dict, List, NamedTuple

from .animal import animal_layers
from .furniture import furniture_layers
from .organic import object_layers
from .person import HAIR_DENSITIES, person_layers
from .plant import plant_layers
from .text import text_layers

__all__ = ["Family", "FAMILIES", "TRAINING_FAMILIES", "HELD_OUT_FAMILIES", "HAIR_DENSITIES", "family"]


class Family(NamedTuple):
    layers: Callable[..., List]
    held_out: bool
    about: str


FAMILIES: Dict[str, Family] = {
    "person": Family(person_layers, False, "head, torso, arms in a pose, hair volume and strands"),
    "object": Family(object_layers, False, "organic blob with lobes and holes, a furry rim (p 0.5)"),
    "plant": Family(plant_layers, False, "branching stems, leaves with gaps between them, a pot"),
    "text": Family(text_layers, False, "words in Hershey fonts, bold or hairline, turned"),
    "animal": Family(animal_layers, True, "four-legged body, head, ears, tail under dense fur"),
    "furniture": Family(furniture_layers, True, "chair, table, shelf or stool of thin bars and slats"),
}
TRAINING_FAMILIES = tuple(k for k, f in FAMILIES.items() if not f.held_out)
HELD_OUT_FAMILIES = tuple(k for k, f in FAMILIES.items() if f.held_out)


def family(name: str) -> Family:
    """The family called ``name``; ValueError naming the known ones otherwise."""
    if name not in FAMILIES:
        raise ValueError(f"unknown subject kind {name!r}; expected one of {tuple(FAMILIES)}")
    return FAMILIES[name]
