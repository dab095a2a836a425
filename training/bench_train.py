"""``python -m training.bench_train``: training steps per second, fp32 vs the fast CPU setting.

For each mode (base, refine) two copies of the network start from the same weights: one trains in
fp32, the other with bf16 autocast and channels_last. They take turns on the same batches (so a busy
machine slows both alike), and the report gives each one's median step time, steps per second, the
speed-up, and the losses of the two side by side (the fast setting should follow the fp32 curve).
The batches are random composites made by :func:`training.augment.compose_batch` from generated
subjects, at the recipe's sizes (the model card's): base batch 6 at 224 px, refine batch 4 at 512 px
with backbone scale 0.5.
"""
import copy
import statistics
import time
from typing import Dict, List, Optional, Sequence

from matte_ros.core.cli import Command, OneLineParser, exit_on_interrupt, number

PROG = "python -m training.bench_train"

# Ctrl-C while torch loads: one line and exit 130 (the runner takes over once main runs)
with exit_on_interrupt(PROG, active=__name__ == "__main__"):
    import numpy as np
    import torch

    from matte_ros.core.synthetic import render_background, render_subject

    from .augment import compose_batch
    from .config import TrainConfig
    from .losses import base_loss, refine_loss
    from .models import build_training_model, param_groups, training_autocast

__all__ = ["RECIPES", "make_batches", "bench_mode", "format_report", "main"]

# The model card's recipe: (batch, side, backbone scale) per mode.
RECIPES = {"base": (6, 224, 0.25), "refine": (4, 512, 0.5)}


def make_batches(n: int, batch: int, side: int, seed: int = 0) -> List[Dict[str, torch.Tensor]]:
    """``n`` batches of generated (pha, fgr, bgr), each (B, C, side, side) float32, composited later."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        items = [render_subject(rng, side, side) for _ in range(batch)]
        bgrs = [render_background(rng, side, side) for _ in range(batch)]
        out.append({"pha": torch.from_numpy(np.stack([p for _, p in items]))[:, None],
                    "fgr": torch.from_numpy(np.stack([f for f, _ in items])).permute(0, 3, 1, 2).contiguous(),
                    "bgr": torch.from_numpy(np.stack(bgrs)).permute(0, 3, 1, 2).contiguous()})
    return out


class _Runner:
    """One network + Adam at one precision setting; ``step`` trains on a batch and returns (seconds, loss)."""

    def __init__(self, cfg: TrainConfig, net: torch.nn.Module, fast: bool):
        self.cfg, self.fast, self.refine = cfg, fast, cfg.model_type != "base"
        self.net = net.to(memory_format=torch.channels_last) if fast else net
        self.opt = torch.optim.Adam(param_groups(self.net, cfg.model_type, cfg.lr_scale))
        self.net.train()

    def step(self, raw: Dict[str, torch.Tensor], seed: int) -> tuple:
        torch.manual_seed(seed)                                     # the same augmentation for both runners
        pha, fgr, bgr = raw["pha"], raw["fgr"], raw["bgr"]
        if self.fast:
            pha, fgr, bgr = (t.contiguous(memory_format=torch.channels_last) for t in (pha, fgr, bgr))
        start = time.perf_counter()
        batch = compose_batch(pha, fgr, bgr, train=True)
        with training_autocast(torch.device("cpu"), False, self.fast):
            out = self.net(batch.src, batch.bgr)
            if self.refine:
                terms = refine_loss(out.pha, out.fgr, out.pha_sm, out.fgr_sm, out.err_sm, batch.pha, batch.fgr)
            else:
                terms = base_loss(out.pha, out.fgr, out.err, batch.pha, batch.fgr)
        self.opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        self.opt.step()
        return time.perf_counter() - start, float(terms["total"].detach())


def bench_mode(mode: str, steps: int, warmup: int = 2, batch: Optional[int] = None, side: Optional[int] = None,
               seed: int = 0) -> Dict[str, object]:
    """Alternate fp32 and fast steps on the same batches -> medians, steps/s and both loss curves."""
    if steps < 1 or warmup < 0:
        raise ValueError(f"need steps >= 1 and warmup >= 0, got {steps}, {warmup}")
    b, s, scale = RECIPES[mode]
    b, s = batch or b, side or s
    cfg = TrainConfig(model_type=mode, backbone_scale=scale, refine_sample_pixels=80_000)
    torch.manual_seed(seed)
    net = build_training_model(cfg)
    runners = {"fp32": _Runner(cfg, net, False), "fast": _Runner(cfg, copy.deepcopy(net), True)}
    batches = make_batches(min(steps + warmup, 8), b, s, seed)
    times: Dict[str, List[float]] = {"fp32": [], "fast": []}
    losses: Dict[str, List[float]] = {"fp32": [], "fast": []}
    for i in range(steps + warmup):
        for name in (("fp32", "fast") if i % 2 == 0 else ("fast", "fp32")):   # alternate who goes first
            t, loss = runners[name].step(batches[i % len(batches)], seed + i)
            if i >= warmup:
                times[name].append(t)
                losses[name].append(loss)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"mode": mode, "batch": b, "side": s, "backbone_scale": scale, "steps": steps, "median_s": med,
            "steps_per_s": {k: 1.0 / v for k, v in med.items()}, "speedup": med["fp32"] / med["fast"],
            "losses": losses}


def format_report(results: Sequence[Dict[str, object]]) -> str:
    lines = [f"{'mode':<7} {'batch x side':>12} {'fp32 s/step':>12} {'fast s/step':>12} {'fp32 steps/s':>13} "
             f"{'fast steps/s':>13} {'speed-up':>9} {'loss fp32 / fast (mean)':>24}"]
    for r in results:
        lf, lb = (float(np.mean(r["losses"][k])) for k in ("fp32", "fast"))
        lines.append(f"{r['mode']:<7} {str(r['batch']) + ' x ' + str(r['side']):>12} {r['median_s']['fp32']:>12.2f} "
                     f"{r['median_s']['fast']:>12.2f} {r['steps_per_s']['fp32']:>13.3f} "
                     f"{r['steps_per_s']['fast']:>13.3f} {r['speedup']:>8.2f}x {lf:>11.4f} / {lb:.4f}")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("--modes", nargs="+", choices=sorted(RECIPES), default=["base", "refine"])
    p.add_argument("--steps", type=number(int, 1), default=10, help="timed steps per setting (default 10)")
    p.add_argument("--warmup", type=number(int, 0), default=2, help="untimed steps first (default 2)")
    p.add_argument("--batch", type=number(int, 2), default=None, help="override the recipe's batch size")
    p.add_argument("--side", type=number(int, 64), default=None, help="override the recipe's sample side")
    p.add_argument("--threads", type=number(int, 1), default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--losses", action="store_true", help="also print both loss curves step by step")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    results = []
    for mode in args.modes:
        results.append(bench_mode(mode, args.steps, args.warmup, args.batch, args.side))
        if args.losses:
            r = results[-1]
            for i, (a, b) in enumerate(zip(r["losses"]["fp32"], r["losses"]["fast"])):
                print(f"{mode} step {i + 1}: loss fp32 {a:.4f}  fast {b:.4f}")
    print(f"training steps, fp32 vs fast (bf16 autocast + channels_last), {torch.get_num_threads()} thread(s), "
          f"medians of {args.steps} steps after {args.warmup} warm-up")
    print(format_report(results))
    return 0


COMMAND = Command(PROG, "training.bench_train:main")

if __name__ == "__main__":
    COMMAND()
