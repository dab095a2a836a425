"""The training configuration: one dataclass, every field both a CLI flag and a YAML key.

Precedence: dataclass defaults < ``--config FILE`` (YAML) < flags given on the command line.
Sizes left at ``None`` take the published value of the chosen mode (see :func:`resolve`).
"""
import argparse
import dataclasses
import math
import os
import typing
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence, Tuple

import yaml

from matte_ros.core.cli import OneLineParser
from matte_ros.core.files import read_yaml_mapping
from matte_ros.core.model import BACKBONES
from matte_ros.core.model.refine_settings import refine_problem
from matte_ros.core.settings import device_problem

from .discriminator import min_input_size

__all__ = ["MODEL_TYPES", "TrainConfig", "build_parser", "parse_config", "resolve", "save_config", "MODE_DEFAULTS"]

MODEL_TYPES = ("base", "refine", "gan")

# Published per-mode values: sample side, random crop range, scale range of the foreground affine.
MODE_DEFAULTS = {
    "base": {"image_size": 512, "crop_size": (256, 512), "pair_scale": (0.4, 1.0)},
    "refine": {"image_size": 2048, "crop_size": (1024, 2048), "pair_scale": (0.3, 1.0)},
}


def _f(default: Any, help: str, **kw: Any) -> Any:
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class TrainConfig:
    model_type: str = _f("base", "what to train: base (coarse network), refine (end to end) or gan "
                                 "(refine + PatchGAN discriminator)", choices=MODEL_TYPES)
    backbone: str = _f("mobilenetv2", "encoder", choices=BACKBONES)
    dataset: Optional[str] = _f(None, "dataset name in the dataset config (default: its only dataset, "
                                      "or PhotoMatte85 without a config)")
    dataset_config: Optional[str] = _f(None, "dataset config YAML (default: the RGBA foregrounds + backgrounds "
                                             "layout datasets/PhotoMatte85/{train,valid}, datasets/backgrounds/"
                                             "{train,valid})")
    load_base: Optional[str] = _f(None, "two-step training: copy every non-refiner weight from this base "
                                        "or refine checkpoint; the refiner starts fresh")
    init_weights: Optional[str] = _f(None, "fine-tuning: copy all weights (refiner included) from this "
                                           "checkpoint; optimiser state starts fresh")
    resume: Optional[str] = _f(None, "continue a run: a checkpoint path, or 'auto' for <output-dir>/last.pth "
                                     "when it exists")
    epochs: int = _f(10, "number of epochs")
    max_steps: Optional[int] = _f(None, "stop after this many steps in all (optional)")
    max_minutes: Optional[float] = _f(None, "stop after this many minutes of training in this process (then "
                                            "validate and write last.pth; --resume auto continues)")
    batch_size: int = _f(4, "samples per step and process (at least 2: BatchNorm after global pooling)")
    num_workers: int = _f(2, "data loader worker processes")
    image_size: Optional[int] = _f(None, "side of the square training samples (default 512 base, 2048 refine/gan)")
    crop_size: Optional[Tuple[int, int]] = _f(None, "random crop side range MIN MAX per step "
                                                    "(default 256 512 base, 1024 2048 refine/gan)", nargs=2)
    valid_every: int = _f(1000, "validate every N steps (0: only at the end)")
    valid_samples: int = _f(50, "validation samples (a fixed subset of the valid split)")
    checkpoint_every: int = _f(500, "write last.pth every N steps (and always at the end)")
    output_dir: Optional[str] = _f(None, "checkpoint folder (default checkpoints/<model-type>)")
    log_dir: Optional[str] = _f(None, "TensorBoard folder (default <output-dir>/logs)")
    log_every: int = _f(10, "TensorBoard scalars every N steps")
    image_every: int = _f(200, "TensorBoard image grids every N steps (0: never)")
    device: str = _f("auto", "auto | cpu | cuda | cuda:N (under torchrun: the local rank's GPU)")
    threads: Optional[int] = _f(None, "CPU threads of each process (torch.set_num_threads; default: torch's "
                                      "choice). 1 is often fastest on a busy machine")
    amp: bool = _f(True, "mixed precision (CUDA only; ignored on the CPU)")
    bf16: bool = _f(False, "CPU: bf16 autocast of the forward pass (fast on CPUs with AVX-512 BF16)")
    channels_last: bool = _f(False, "channels_last memory format for the networks and batches")
    seed: int = _f(0, "random seed (initialisation, data order, augmentation)")
    backbone_scale: float = _f(0.25, "refine/gan: downsampling before the backbone")
    refine_sample_pixels: int = _f(80_000, "refine/gan: pixels refined per sample (sampling mode)")
    lr_scale: float = _f(1.0, "multiplies every published learning rate")
    hard_scenes: float = _f(0.0, "share of training samples rewritten into plain walls and subjects coloured "
                                 "like the local background plus a small offset (training/hard_scenes.py)")
    grad_clip: float = _f(0.0, "clip the gradient norm to this value (0: off)")
    max_nonfinite: int = _f(20, "stop after this many consecutive non-finite losses")
    disc_layers: int = _f(4, "gan: stride-2 conv layers of the PatchGAN discriminator")
    disc_channels: int = _f(64, "gan: channels of the discriminator's first layer")
    disc_lr: float = _f(1e-4, "gan: discriminator learning rate")
    gan_weight: float = _f(0.002, "gan: weight of the adversarial loss")
    sync_bn: bool = _f(False, "distributed: convert BatchNorm to SyncBatchNorm")

    def check(self) -> None:
        """Raise ValueError on inconsistent settings (after :func:`resolve`)."""
        if self.model_type not in MODEL_TYPES:
            raise ValueError(f"model_type must be one of {MODEL_TYPES}, got {self.model_type!r}")
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {self.backbone!r}")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if _scalar_type(f.type) is float and value is not None and not math.isfinite(value):
                raise ValueError(f"{f.name} must be a finite number, got {value}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.batch_size < 2:
            raise ValueError("batch_size must be at least 2 (the ASPP pooling branch uses BatchNorm on one "
                             f"value per sample), got {self.batch_size}")
        positive = {"epochs": self.epochs, "image_size": self.image_size, "valid_samples": self.valid_samples,
                    "log_every": self.log_every, "max_nonfinite": self.max_nonfinite,
                    "disc_layers": self.disc_layers, "disc_channels": self.disc_channels}
        for name, value in positive.items():
            if value is None or value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        for name in ("valid_every", "checkpoint_every", "image_every", "num_workers"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be at least 1, got {self.threads}")
        if self.max_minutes is not None and not 0 < self.max_minutes < float("inf"):
            raise ValueError(f"max_minutes must be a positive number, got {self.max_minutes}")
        if not 0 <= self.hard_scenes <= 1:
            raise ValueError(f"hard_scenes must be in 0..1, got {self.hard_scenes}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {self.max_steps}")
        lo, hi = self.crop_size
        if not 32 <= lo <= hi:
            raise ValueError(f"crop_size must be MIN MAX with 32 <= MIN <= MAX, got {lo} {hi}")
        for problem in (refine_problem("backbone_scale", self.backbone_scale, allow_auto=False),
                        device_problem(self.device), refine_problem("refine_sample_pixels", self.refine_sample_pixels)):
            if problem is not None:
                raise ValueError(problem)
        for name, zero_ok in (("lr_scale", False), ("disc_lr", False), ("grad_clip", True), ("gan_weight", True)):
            value = getattr(self, name)
            if value < 0 or (value == 0 and not zero_ok):
                raise ValueError(f"{name} must be {'>= 0' if zero_ok else '> 0'}, got {value}")
        if self.model_type != "base" and hi // 4 * 4 < lo:
            raise ValueError(f"crop_size {lo} {hi} holds no multiple of 4 (refine and gan crops are multiples of 4)")
        if self.model_type == "gan" and int(lo * self.backbone_scale) < min_input_size(self.disc_layers):
            raise ValueError(f"gan: the smallest coarse crop ({lo} x {self.backbone_scale} = "
                             f"{int(lo * self.backbone_scale)} px) is below the {min_input_size(self.disc_layers)} "
                             f"px a {self.disc_layers}-layer discriminator needs; raise crop_size or "
                             "backbone_scale, or lower disc_layers")
        if self.load_base and self.init_weights:
            raise ValueError("give either load_base or init_weights, not both")
        written = {os.path.realpath(os.path.join(self.output_dir or "", n)) for n in ("last.pth", "best.pth")}
        for name in ("load_base", "init_weights"):
            path = getattr(self, name)
            if self.output_dir and path and os.path.realpath(path) in written:
                raise ValueError(f"{name} {path} is a file this run overwrites (in output_dir {self.output_dir}); "
                                 "copy it elsewhere or choose another output_dir")

    def to_dict(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self)
        if d["crop_size"] is not None:
            d["crop_size"] = list(d["crop_size"])
        return d


def resolve(cfg: TrainConfig) -> TrainConfig:
    """Fill the mode-dependent defaults and check; returns a new config."""
    mode = MODE_DEFAULTS["base" if cfg.model_type == "base" else "refine"]
    out = dataclasses.replace(cfg)
    if out.image_size is None:
        out.image_size = mode["image_size"]
    if out.crop_size is None:
        out.crop_size = mode["crop_size"]
    out.crop_size = (int(out.crop_size[0]), int(out.crop_size[1]))
    if out.output_dir is None:
        out.output_dir = os.path.join("checkpoints", out.model_type)
    if out.log_dir is None:
        out.log_dir = os.path.join(out.output_dir, "logs")
    out.check()
    return out


def build_parser() -> argparse.ArgumentParser:
    """Flags generated from the dataclass; every default is SUPPRESS so only given flags appear."""
    p = OneLineParser(prog="python -m training train", argument_default=argparse.SUPPRESS,
                      description="Train a Background Matting V2 model (base, refine or gan).")
    p.add_argument("--config", help="YAML file whose keys are the long flag names (dashes or underscores); "
                                    "flags given on the command line win")
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        meta = dict(f.metadata)
        help_ = meta.pop("help") + ("" if f.default is None else f" (default: {f.default})")
        if f.type is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, help=help_)
            continue
        if "nargs" in meta:
            meta["metavar"] = ("MIN", "MAX")
        p.add_argument(flag, type=_scalar_type(f.type), help=help_, **meta)
    return p


def _scalar_type(annotation: Any) -> type:
    """int/float/str of an annotation such as ``Optional[Tuple[int, int]]``."""
    while typing.get_origin(annotation) is not None:
        annotation = [a for a in typing.get_args(annotation) if a is not type(None)][0]
    return annotation


def _typed(name: str, annotation: Any, value: Any, source: str) -> Any:
    """``value`` of setting ``name`` as its field's type (YAML may give a string for a number)."""
    kind = _scalar_type(annotation)
    try:
        if value is None:
            return None
        if name == "crop_size":
            if isinstance(value, (str, bytes)) or len(value) != 2:
                raise ValueError
            return tuple(int(v) for v in value)
        if kind is bool:
            if not isinstance(value, bool):
                raise ValueError
            return value
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        return kind(value)
    except (TypeError, ValueError):
        want = "MIN MAX (two integers)" if name == "crop_size" else kind.__name__
        raise ValueError(f"{source}: {name} must be {want}, got {value!r}") from None


def _from_mapping(values: Dict[str, Any], source: str) -> Dict[str, Any]:
    fields = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    out = {}
    for key, value in values.items():
        name = str(key).replace("-", "_")
        if name not in fields:
            raise ValueError(f"{source}: unknown setting {key!r}")
        out[name] = _typed(name, fields[name], value, source)
    return out


def parse_config(argv: Optional[Sequence[str]] = None) -> TrainConfig:
    """Defaults, then the YAML of ``--config``, then the flags; resolved and checked."""
    args = vars(build_parser().parse_args(argv))
    values: Dict[str, Any] = {}
    path = args.pop("config", None)
    if path is not None:
        data = read_yaml_mapping(path, "--config", "a mapping of settings")
        values.update(_from_mapping(data, path))
    values.update(_from_mapping(args, "command line"))
    return resolve(TrainConfig(**values))


def save_config(cfg: TrainConfig, path: str) -> None:
    """Write the resolved configuration as YAML (loadable again with ``--config``)."""
    from matte_ros.core.files import atomic_write

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            yaml.safe_dump(cfg.to_dict(), fh, sort_keys=False)
    atomic_write(path, write)
