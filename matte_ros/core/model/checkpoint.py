"""One loader for every weight file matte_ros meets, and the atomic writer of its own.

Formats read:
  (a) the plain state-dict ``.pth`` files released with the paper (config inferred from the keys),
  (b) matte_ros checkpoints: a dict with ``model_config`` and ``state_dict`` (plus training state),
  (c) ``.safetensors`` with the config as JSON in the metadata.
Nothing is unpickled beyond tensors and plain containers (``weights_only=True``): a file that would
run code is refused with :class:`CheckpointError`. Tensors are mapped to the CPU.
"""
import json
import os
import pickle
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional

import torch
from torch import nn

from ..files import atomic_write
from .matting import MattingRefine, build_model

__all__ = ["DEFAULT_WEIGHTS", "CheckpointError", "Checkpoint", "read_checkpoint", "load_checkpoint", "load_weights",
           "infer_config", "save_checkpoint", "save_safetensors"]


# The project's own default model, shipped inside the package (see matte_ros/weights/MODEL_CARD.md).
DEFAULT_WEIGHTS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                               "weights", "default.safetensors")


class CheckpointError(ValueError):
    """A weight file that cannot be read or does not fit the model."""


@dataclass
class Checkpoint:
    state_dict: Dict[str, torch.Tensor]
    config: Dict[str, Any]                      # arch + constructor kwargs (saved or inferred)
    extra: Dict[str, Any] = field(default_factory=dict)   # training state of matte_ros checkpoints


def infer_config(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, Any]:
    """Architecture of a released state dict, read off its keys and shapes."""
    if "backbone.features.0.0.weight" in state_dict:
        backbone = "mobilenetv2"
    elif "backbone.layer1.0.conv1.weight" in state_dict:
        backbone = "resnet101" if "backbone.layer3.22.conv1.weight" in state_dict else "resnet50"
    else:
        raise CheckpointError("not a Background Matting V2 state dict: no backbone.* keys found")
    w = state_dict.get("refiner.conv1.weight")
    if w is None:
        return {"arch": "MattingBase", "backbone": backbone}
    return {"arch": "MattingRefine", "backbone": backbone, "refine_kernel_size": int(w.shape[-1])}


def _model_config(model: nn.Module) -> Dict[str, Any]:
    return model.config() if hasattr(model, "config") else {}


def save_checkpoint(path: str, model: nn.Module, **extra: Any) -> None:
    """Write a matte_ros checkpoint atomically: model config, weights and any training state."""
    payload = {"format": "matte_ros", "model_config": _model_config(model),
               "state_dict": model.state_dict(), **extra}
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def save_safetensors(path: str, model: nn.Module, dtype: Optional[torch.dtype] = None) -> None:
    """Weights (optionally cast, e.g. fp16; BatchNorm counters stay integer) + config metadata."""
    from safetensors.torch import save_file
    tensors = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu()
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        tensors[k] = v.contiguous()
    meta = {"format": "matte_ros", "model_config": json.dumps(_model_config(model))}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


_ZIP_MAGIC = b"PK\x03\x04"                     # torch.save since PyTorch 1.6
_PICKLE_PROTOCOLS = tuple(bytes([0x80, p]) for p in range(2, 6))   # the legacy torch.save format, plain pickles


def _first_line(err: BaseException) -> str:
    """The first sentence of an exception's message (library messages run on for paragraphs)."""
    text = str(err).strip()
    return text.splitlines()[0].split(". ")[0].rstrip(".") if text else type(err).__name__


def _read_safetensors(path: str) -> Checkpoint:
    from safetensors import SafetensorError, safe_open
    try:
        with safe_open(path, framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            sd = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is not a readable safetensors file (truncated or corrupt: "
                              f"{_first_line(e)})") from None
    sd = {k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()}
    if "model_config" not in meta:
        return Checkpoint(sd, _infer_config_of(path, sd))
    try:
        config = json.loads(meta["model_config"])
    except ValueError as e:
        raise CheckpointError(f"{path}: its model_config metadata is not valid JSON ({e})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: its model_config metadata must be a JSON object, found "
                              f"{type(config).__name__}")
    return Checkpoint(sd, config)


def _infer_config_of(path: str, sd: Mapping[str, torch.Tensor]) -> Dict[str, Any]:
    try:
        return infer_config(sd)
    except CheckpointError as e:
        raise CheckpointError(f"{path} is {e}") from None


def _read_torch(path: str) -> Any:
    """torch.load with weights_only, after a look at the first bytes (what torch.save writes)."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    if not head:
        raise CheckpointError(f"{path} is empty (0 bytes): not a PyTorch checkpoint")
    if not (head.startswith(_ZIP_MAGIC) or head[:2] in _PICKLE_PROTOCOLS):
        raise CheckpointError(f"{path} is not a PyTorch checkpoint (neither a torch.save zip archive nor a pickle)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")          # torch's note on pickle protocols other than 2
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        detail = next((ln.strip() for ln in str(e).splitlines() if ln.strip().startswith("Unsupported")), "")
        raise CheckpointError(
            f"refusing to load {path}: it holds pickled objects that would execute code when loaded "
            f"(only tensors and plain containers are accepted{'; ' + detail if detail else ''})") from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is a truncated or corrupt PyTorch checkpoint ({_first_line(e)})") from None


def read_checkpoint(path: str) -> Checkpoint:
    """Read any supported weight file without executing code; tensors on the CPU.
    Every failure is a :class:`CheckpointError` whose message names the file and what is wrong."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.endswith(".safetensors"):
        return _read_safetensors(path)
    obj = _read_torch(path)
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} does not hold a state dict (found {type(obj).__name__})")
    if "state_dict" in obj and "model_config" in obj:
        sd, config = obj["state_dict"], obj["model_config"]
        if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
            raise CheckpointError(f"{path}: its state_dict is not a mapping of names to tensors")
        if not isinstance(config, dict):
            raise CheckpointError(f"{path}: its model_config is not a mapping (found {type(config).__name__})")
        extra = {k: v for k, v in obj.items() if k not in ("state_dict", "model_config")}
        return Checkpoint(sd, dict(config), extra)
    if not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path} is neither a state dict nor a matte_ros checkpoint")
    return Checkpoint(obj, _infer_config_of(path, obj))


def load_weights(model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Load strictly into ``model``; ``refiner.*`` keys are dropped for a MattingBase.
    On a mismatch the error names both architectures and the differing keys."""
    sd = dict(state_dict)
    if not isinstance(model, MattingRefine):
        sd = {k: v for k, v in sd.items() if not k.startswith("refiner.")}
    expected = model.state_dict()
    missing = sorted(set(expected) - set(sd))
    unexpected = sorted(set(sd) - set(expected))
    wrong = sorted(k for k in set(sd) & set(expected) if sd[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        try:
            found = infer_config(sd)
            found_s = f"{found['arch']}({found['backbone']})"
        except CheckpointError:
            found_s = "an unknown network"
        want = _model_config(model)
        msg = [f"{source} does not fit the model: the model expects "
               f"{want.get('arch', type(model).__name__)}({want.get('backbone', '?')}), the file holds {found_s}."]
        for label, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                            ("shape mismatches", wrong)):
            if keys:
                shown = ", ".join(keys[:8]) + (f", ... ({len(keys)} in all)" if len(keys) > 8 else "")
                msg.append(f"{label}: {shown}")
        raise CheckpointError("\n".join(msg))
    model.load_state_dict(sd, strict=True)


def load_checkpoint(path: str, model: Optional[nn.Module] = None, **overrides: Any) -> nn.Module:
    """Model with the weights of ``path``, in eval mode on the CPU.

    Without ``model`` one is built from the file's config updated by ``overrides`` (e.g.
    ``backbone_scale=0.125, refine_mode="thresholding"``, or ``arch="MattingBase"``).
    """
    ckpt = read_checkpoint(path)
    if model is None:
        config = {**ckpt.config, **overrides}
        if config.get("arch") == "MattingBase":
            config = {"arch": "MattingBase", "backbone": config.get("backbone")}
        try:
            model = build_model(config)
        except (TypeError, ValueError, KeyError) as e:
            raise CheckpointError(f"cannot build the model of {path} from its config"
                                  + (f" and {overrides}" if overrides else "") + f": {_first_line(e)}") from None
    load_weights(model, ckpt.state_dict, source=path)
    return model.eval()
