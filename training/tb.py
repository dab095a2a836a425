"""TensorBoard output of a training run (rank 0 only): scalars, learning rates, throughput, image grids."""
from typing import Dict

import torch
from torch.nn import functional as F
from torch.utils.tensorboard import SummaryWriter
from torchvision.utils import make_grid

__all__ = ["TrainLogger"]

_GRID_SAMPLES = 4


class TrainLogger:
    """``train/<term>`` for each loss term, ``train/lr/<group>``, ``train/samples_per_s``, counters;
    ``valid/{loss,sad,mse}``; image grids ``images/{src,bgr,true_pha,pha,fgr,composite,err,refined}``."""

    def __init__(self, log_dir: str):
        self.writer = SummaryWriter(log_dir)

    def scalars(self, state, terms: Dict[str, float], opt: torch.optim.Optimizer, samples_per_s: float) -> None:
        step = state.step
        for name, value in terms.items():
            self.writer.add_scalar(f"train/{name}", value, step)
        for group in opt.param_groups:
            self.writer.add_scalar(f"train/lr/{group.get('name', 'group')}", group["lr"], step)
        self.writer.add_scalar("train/samples_per_s", samples_per_s, step)
        self.writer.add_scalar("train/nonfinite_total", state.nonfinite_total, step)
        self.writer.add_scalar("train/skipped_files", state.skipped_total, step)

    def valid(self, step: int, metrics: Dict[str, float]) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(f"valid/{name}", value, step)
        self.writer.flush()

    @torch.no_grad()
    def images(self, step: int, batch, out) -> None:
        """batch: augment.Batch; out: BaseOutput or RefineOutput of the same step."""
        n = min(_GRID_SAMPLES, batch.src.shape[0])
        size = batch.src.shape[2:]

        def up(x: torch.Tensor) -> torch.Tensor:
            return F.interpolate(x.float(), size=size, mode="nearest")
        err = out.err_sm if hasattr(out, "err_sm") else out.err
        grids = {"src": batch.src, "bgr": batch.bgr, "true_pha": batch.pha, "pha": out.pha, "fgr": out.fgr,
                 "composite": out.fgr * out.pha, "err": up(err)}
        if hasattr(out, "ref_sm"):
            grids["refined"] = up(out.ref_sm)
        for name, x in grids.items():
            self.writer.add_image(f"images/{name}", make_grid(x[:n].detach().float().clamp(0, 1).cpu(), nrow=n),
                                  step)

    def close(self) -> None:
        self.writer.close()
