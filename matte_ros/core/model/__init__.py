"""The Background Matting V2 network and its checkpoint loader."""
from .backbones import BACKBONES
from .checkpoint import (
                         DEFAULT_WEIGHTS,
                         Checkpoint,
                         CheckpointError,
                         load_checkpoint,
                         load_weights,
                         read_checkpoint,
                         save_checkpoint,
                         save_safetensors,
)
from .matting import BaseOutput, MattingBase, MattingRefine, RefineOutput, build_model
from .patches import CROP_METHODS, REPLACE_METHODS
from .refiner import REFINE_MODES, Refiner

__all__ = ["DEFAULT_WEIGHTS", "BACKBONES", "CROP_METHODS", "REPLACE_METHODS", "REFINE_MODES", "BaseOutput",
           "Checkpoint", "CheckpointError", "MattingBase", "MattingRefine", "RefineOutput", "Refiner", "build_model",
           "load_checkpoint", "load_weights", "read_checkpoint", "save_checkpoint", "save_safetensors"]
