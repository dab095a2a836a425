"""The networks being trained: construction per mode, published learning rates, initial weights, precision."""
from typing import Dict, List

import torch
from torch import nn

from matte_ros.core.model import MattingBase, MattingRefine, load_weights, read_checkpoint

from .config import TrainConfig

__all__ = ["LEARNING_RATES", "build_training_model", "param_groups", "load_base_weights", "load_all_weights",
           "training_autocast"]

# Adam learning rates of the published training, per module of the network.
LEARNING_RATES = {
    "base": {"backbone": 1e-4, "aspp": 5e-4, "decoder": 5e-4},
    "refine": {"backbone": 5e-5, "aspp": 5e-5, "decoder": 1e-4, "refiner": 3e-4},
}


def build_training_model(cfg: TrainConfig) -> nn.Module:
    """MattingBase for base; MattingRefine in sampling mode for refine and gan."""
    if cfg.model_type == "base":
        return MattingBase(cfg.backbone)
    return MattingRefine(cfg.backbone, backbone_scale=cfg.backbone_scale, refine_mode="sampling",
                         refine_sample_pixels=cfg.refine_sample_pixels)


def training_autocast(device: torch.device, amp: bool, bf16: bool) -> torch.autocast:
    """The forward pass's autocast: fp16 on CUDA when ``amp``; bf16 on the CPU when ``bf16`` (native on
    CPUs with AVX-512 BF16 / AMX); otherwise disabled (fp32)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16, enabled=amp)
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)


def param_groups(model: nn.Module, model_type: str, lr_scale: float = 1.0) -> List[Dict]:
    """Adam parameter groups named after the modules, at the published rates times ``lr_scale``."""
    rates = LEARNING_RATES["base" if model_type == "base" else "refine"]
    return [{"params": list(getattr(model, name).parameters()), "lr": lr * lr_scale, "name": name}
            for name, lr in rates.items()]


def load_base_weights(model: nn.Module, path: str) -> List[str]:
    """Two-step training: copy every non-refiner weight of the base or refine checkpoint ``path``;
    the refiner keeps its fresh initialisation. Returns the names of the parameters left fresh.
    A checkpoint of another backbone raises CheckpointError naming both."""
    ckpt = read_checkpoint(path)
    base = MattingBase(model.backbone_name)
    load_weights(base, ckpt.state_dict, source=path)     # drops refiner.*, strict on the rest
    missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
    if unexpected or any(not k.startswith("refiner.") for k in missing):
        raise ValueError(f"{path}: base weights do not fit the model (missing {missing}, unexpected {unexpected})")
    return sorted(missing)


def load_all_weights(model: nn.Module, path: str) -> None:
    """Fine-tuning: every weight from ``path`` (strict; a refine model needs a refine checkpoint)."""
    load_weights(model, read_checkpoint(path).state_dict, source=path)
