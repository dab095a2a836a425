"""What a training checkpoint holds beyond the weights, and putting it back.

A checkpoint is written by :func:`matte_ros.core.model.save_checkpoint` (model config + state dict, atomic)
with these extra keys, all plain containers and tensors (readable with ``weights_only=True``):

  training           {format, model_type, step, epoch, batch_in_epoch, best_valid_loss, nonfinite_total,
                      skipped_total, world_size}
  train_config       the resolved TrainConfig as a dict
  optimizer, scaler  state dicts of the network's Adam and GradScaler
  discriminator      {config, state_dict} (gan only), with disc_optimizer and disc_scaler
  rng                one dict per rank: torch, cuda, numpy and python random states
"""
import os
import random
from typing import Any, Dict, List, Optional

import numpy as np
import torch

__all__ = ["STATE_FORMAT", "TrainingState", "capture_rng", "restore_rng", "resume_path", "is_finite_module",
           "rng_for_rank"]

STATE_FORMAT = 1


class TrainingState:
    """Counters of a run. ``epoch``/``batch_in_epoch`` locate the next batch in the data order."""

    def __init__(self, model_type: str):
        self.model_type = model_type
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.best_valid_loss = float("inf")
        self.nonfinite_total = 0
        self.skipped_total = 0
        self.interrupted = False          # this run was stopped by Ctrl-C (not saved)

    def to_dict(self, world_size: int) -> Dict[str, Any]:
        return {"format": STATE_FORMAT, "model_type": self.model_type, "step": self.step, "epoch": self.epoch,
                "batch_in_epoch": self.batch_in_epoch, "best_valid_loss": float(self.best_valid_loss),
                "nonfinite_total": self.nonfinite_total, "skipped_total": self.skipped_total,
                "world_size": world_size}

    def load(self, d: Dict[str, Any], source: str) -> None:
        if int(d.get("format", -1)) != STATE_FORMAT:
            raise ValueError(f"{source}: training state format {d.get('format')!r}, this code reads {STATE_FORMAT}")
        if d["model_type"] != self.model_type:
            raise ValueError(f"{source} is a {d['model_type']} run; cannot resume it as {self.model_type} "
                             f"(use --load-base to start {self.model_type} training from it)")
        for key in ("step", "epoch", "batch_in_epoch", "nonfinite_total", "skipped_total"):
            setattr(self, key, int(d[key]))
        self.best_valid_loss = float(d["best_valid_loss"])


def capture_rng() -> Dict[str, Any]:
    """The RNG states of this process as tensors and plain containers."""
    _, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "cached": float(cached)},
            "python": {"version": version, "internal": list(internal), "gauss": gauss}}


def restore_rng(state: Dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss"]))


def resume_path(resume: Optional[str], output_dir: str) -> Optional[str]:
    """``auto`` -> <output_dir>/last.pth when it exists (else None: a fresh run); a path must exist."""
    if resume is None:
        return None
    if resume == "auto":
        path = os.path.join(output_dir, "last.pth")
        return path if os.path.isfile(path) else None
    if not os.path.isfile(resume):
        raise ValueError(f"--resume: checkpoint not found: {resume}")
    return resume


def is_finite_module(*modules: torch.nn.Module) -> bool:
    """True when every floating parameter and buffer is finite (a checkpoint worth keeping)."""
    tensors = [t.detach() for m in modules for t in list(m.parameters()) + list(m.buffers()) if t.is_floating_point()]
    return bool(torch.isfinite(torch.nn.utils.get_total_norm(tensors, norm_type=float("inf"))))


def rng_for_rank(states: List[Dict[str, Any]], rank: int, world_size: int) -> Optional[Dict[str, Any]]:
    """The saved RNG state of ``rank`` when the run had the same number of processes, else None."""
    return states[rank] if len(states) == world_size else None
