"""The training loop of every mode (base, refine, gan), single process or DDP.

One step: batch of (pha, fgr, bgr) samples -> random crop -> shadow/composite/noise/plate jitter
(:func:`training.augment.compose_batch`) -> forward under autocast -> losses -> (non-finite check) ->
scaled backward -> optional clipping -> Adam. In gan mode the PatchGAN discriminator then takes its own
step on (composite, alpha) pairs at the coarse size.
"""
import os
import signal
import threading
import time
from typing import Any, Callable, Dict, Optional

import cv2
import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from matte_ros.core.cli import Failure
from matte_ros.core.files import remove_orphaned_temporaries
from matte_ros.core.model import load_weights, read_checkpoint, save_checkpoint

from . import distributed as D
from .augment import VALID_PAIR_SCALE, compose_batch, random_crop
from .config import MODE_DEFAULTS, TrainConfig, save_config
from .data import CompositingDataset, collate, load_data_config, scan_backgrounds, scan_foregrounds
from .discriminator import PatchDiscriminator, min_input_size
from .hard_scenes import hard_scenes
from .losses import base_loss, ralsgan_d_loss, ralsgan_g_loss, refine_loss
from .models import build_training_model, load_all_weights, load_base_weights, param_groups, training_autocast
from .state import TrainingState, capture_rng, is_finite_module, restore_rng, resume_path, rng_for_rank
from .tb import TrainLogger

__all__ = ["NonFiniteLossError", "Trainer"]


class NonFiniteLossError(Failure):
    """Too many consecutive non-finite losses: the run stops, the last good checkpoint is kept (a
    :class:`Failure`: the command exits 1)."""


def _worker_init(_: int) -> None:
    cv2.setNumThreads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)      # Ctrl-C stops the main process cleanly, not the workers


class Trainer:
    """Build everything from a resolved :class:`TrainConfig` and run with :meth:`fit`."""

    def __init__(self, cfg: TrainConfig, ctx: Optional[D.DistContext] = None, log: Callable[[str], None] = tqdm.write):
        self.cfg, self.ctx = cfg, ctx or D.setup(cfg.device)
        self._log = log
        self.refine = cfg.model_type != "base"
        if cfg.threads is not None:
            torch.set_num_threads(cfg.threads)
        # Data loader workers are forked while this process runs: an OpenCV thread pool started here
        # (JPEG batches, colour conversions) can be forked holding its lock, and the worker then hangs
        # in its first OpenCV call. One OpenCV thread in this process starts no pool.
        cv2.setNumThreads(1)
        torch.manual_seed(cfg.seed)                        # identical initial weights on every rank
        self._build_data()
        self._build_networks()
        self.state = TrainingState(cfg.model_type)
        self._resume()
        self.logger = TrainLogger(cfg.log_dir) if self.ctx.is_main else None
        self._seen_skipped: set = set()
        self.nonfinite_streak = 0

    # ------------------------------------------------------------------ set-up
    def log(self, msg: str) -> None:
        if self.ctx.is_main:
            self._log(msg)

    def _build_data(self) -> None:
        cfg, ctx = self.cfg, self.ctx
        data = load_data_config(cfg.dataset_config, cfg.dataset)
        try:
            train_items, r1 = scan_foregrounds(data.train, f"{data.name} train ({data.train.layout})")
            valid_items, r2 = scan_foregrounds(data.valid, f"{data.name} valid ({data.valid.layout})")
            train_bgrs, r3 = scan_backgrounds(data.bgr_train, "backgrounds train")
            valid_bgrs, r4 = scan_backgrounds(data.bgr_valid, "backgrounds valid")
        except ValueError as e:
            if cfg.dataset_config is None:
                raise ValueError(f"{e}\n(no --dataset-config: the RGBA foregrounds + backgrounds layout "
                                 f"datasets/PhotoMatte85/{{train,valid}} and datasets/backgrounds/{{train,valid}} "
                                 f"under {os.getcwd()} is used)") from None
            raise
        for report in (r1, r2, r3, r4):
            for line in report.lines():
                self.log(line)
        scale = MODE_DEFAULTS["refine" if self.refine else "base"]["pair_scale"]
        self.train_set = CompositingDataset(train_items, train_bgrs, cfg.image_size, scale, cfg.seed, train=True)
        valid_set = CompositingDataset(valid_items, valid_bgrs, cfg.image_size, VALID_PAIR_SCALE, cfg.seed,
                                       train=False, length=cfg.valid_samples)
        self.sampler = D.ResumableSampler(self.train_set, ctx, cfg.seed, shuffle=True)
        self.steps_per_epoch = len(self.sampler.inner) // cfg.batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(f"{len(self.train_set)} training samples over {ctx.world_size} process(es) make no "
                             f"full batch of {cfg.batch_size}; lower --batch-size")
        common = dict(batch_size=cfg.batch_size, num_workers=cfg.num_workers, collate_fn=collate,
                      pin_memory=ctx.device.type == "cuda", worker_init_fn=_worker_init,
                      persistent_workers=False)
        # Own generators: creating an iterator must not draw from torch's global RNG (resume exactness).
        self.train_loader = DataLoader(self.train_set, sampler=self.sampler, drop_last=True,
                                       generator=torch.Generator().manual_seed(cfg.seed), **common)
        self.valid_loader = DataLoader(valid_set, shuffle=False, generator=torch.Generator().manual_seed(cfg.seed),
                                       **common)

    def _build_networks(self) -> None:
        cfg, ctx = self.cfg, self.ctx
        net = build_training_model(cfg)
        if cfg.channels_last:
            net = net.to(memory_format=torch.channels_last)
        if cfg.load_base:
            fresh = load_base_weights(net, cfg.load_base)
            self.log(f"loaded base weights from {cfg.load_base}; fresh: {len(fresh)} refiner tensors")
        elif cfg.init_weights:
            load_all_weights(net, cfg.init_weights)
            self.log(f"initialised all weights from {cfg.init_weights}")
        self.model = D.wrap(net, ctx, cfg.sync_bn, find_unused=self.refine)
        self.net = D.unwrap(self.model)
        self.opt = torch.optim.Adam(param_groups(self.net, cfg.model_type, cfg.lr_scale))
        self.amp = bool(cfg.amp and ctx.device.type == "cuda")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.disc = self.disc_net = self.disc_opt = self.disc_scaler = None
        if cfg.model_type == "gan":
            coarse = int(cfg.crop_size[0] * cfg.backbone_scale)
            if coarse < min_input_size(cfg.disc_layers):
                raise ValueError(f"gan: the smallest coarse crop ({cfg.crop_size[0]} x {cfg.backbone_scale} = "
                                 f"{coarse} px) is below the {min_input_size(cfg.disc_layers)} px a "
                                 f"{cfg.disc_layers}-layer discriminator needs; raise --crop-size or "
                                 f"--backbone-scale, or lower --disc-layers")
            self.disc = D.wrap(PatchDiscriminator(4, cfg.disc_layers, cfg.disc_channels), ctx, cfg.sync_bn)
            self.disc_net = D.unwrap(self.disc)
            self.disc_opt = torch.optim.Adam(self.disc_net.parameters(), lr=cfg.disc_lr)
            self.disc_scaler = torch.amp.GradScaler("cuda", enabled=self.amp)

    def _resume(self) -> None:
        cfg, ctx = self.cfg, self.ctx
        path = resume_path(cfg.resume, cfg.output_dir)
        rank_seed = cfg.seed + 1 + ctx.rank                 # fresh runs: per-rank augmentation streams
        torch.manual_seed(rank_seed)
        np.random.seed(rank_seed)
        __import__("random").seed(rank_seed)
        if path is None:
            if cfg.resume == "auto":
                self.log(f"--resume auto: no {os.path.join(cfg.output_dir, 'last.pth')} yet, starting fresh")
            return
        ckpt = read_checkpoint(path)
        if "training" not in ckpt.extra:
            raise ValueError(f"{path} holds weights but no training state; use --load-base or --init-weights")
        self.state.load(ckpt.extra["training"], path)
        load_weights(self.net, ckpt.state_dict, source=path)
        self.opt.load_state_dict(ckpt.extra["optimizer"])
        self.scaler.load_state_dict(ckpt.extra["scaler"])
        if self.disc is not None:
            self.disc_net.load_state_dict(ckpt.extra["discriminator"]["state_dict"])
            self.disc_opt.load_state_dict(ckpt.extra["disc_optimizer"])
            self.disc_scaler.load_state_dict(ckpt.extra["disc_scaler"])
        rng = rng_for_rank(ckpt.extra["rng"], ctx.rank, ctx.world_size)
        if rng is None:
            self.log(f"{path} was written by {len(ckpt.extra['rng'])} process(es), this run has "
                     f"{ctx.world_size}: random streams restart (the data order is kept)")
        else:
            restore_rng(rng)
        saved = ckpt.extra.get("train_config", {})
        for key in ("batch_size", "image_size", "seed", "dataset", "dataset_config"):
            if key in saved and saved[key] != getattr(cfg, key):
                self.log(f"note: {key} was {saved[key]!r} in {path} and is {getattr(cfg, key)!r} now; "
                         f"the run goes on with the new value (the data order differs from the original run's)")
        self.log(f"resumed {path}: step {self.state.step}, epoch {self.state.epoch}")

    # ------------------------------------------------------------------ one step
    def _autocast(self):
        return training_autocast(self.ctx.device, self.amp, self.cfg.bf16)

    def _losses(self, out, pha: torch.Tensor, fgr: torch.Tensor) -> Dict[str, torch.Tensor]:
        if self.refine:
            return refine_loss(out.pha, out.fgr, out.pha_sm, out.fgr_sm, out.err_sm, pha, fgr)
        return base_loss(out.pha, out.fgr, out.err, pha, fgr)

    @staticmethod
    def _judged(out, batch) -> Dict[str, torch.Tensor]:
        """(composite over the plate, alpha) of the truth and of the prediction at the coarse size."""
        size = out.pha_sm.shape[2:]
        real = torch.cat([batch.fgr * batch.pha + batch.bgr * (1 - batch.pha), batch.pha], dim=1)
        fake = torch.cat([out.fgr * out.pha + batch.bgr * (1 - out.pha), out.pha], dim=1)
        return {k: F.interpolate(v.float(), size=size, mode="bilinear", align_corners=False)
                for k, v in (("real", real), ("fake", fake))}

    def _update(self, loss: torch.Tensor, opt, scaler, params) -> bool:
        """Backward and step; a non-finite loss (on any rank) skips the step. Returns True if stepped."""
        bad = D.any_true(not bool(torch.isfinite(loss.detach())), self.ctx)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()                       # every rank takes part in DDP's all-reduce
        if bad:
            opt.zero_grad(set_to_none=True)
            return False
        if self.cfg.grad_clip > 0:
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
        scaler.step(opt)
        scaler.update()
        return True

    def train_step(self, raw: Dict[str, Any]) -> Optional[Dict[str, float]]:
        """One optimisation step on a collated batch; None when skipped for a non-finite loss."""
        cfg, dev = self.cfg, self.ctx.device
        self._note_skipped(raw["skipped"])
        pha, fgr, bgr = (raw[k].to(dev, non_blocking=True) for k in ("pha", "fgr", "bgr"))
        pha, fgr, bgr = random_crop([pha, fgr, bgr], *cfg.crop_size, multiple=4 if self.refine else 1)
        if cfg.channels_last:
            pha, fgr, bgr = (t.contiguous(memory_format=torch.channels_last) for t in (pha, fgr, bgr))
        fgr, bgr, calm = hard_scenes(fgr, bgr, cfg.hard_scenes)
        batch = compose_batch(pha, fgr, bgr, train=True, calm=calm)
        with self._autocast():
            out = self.model(batch.src, batch.bgr)
            terms = self._losses(out, batch.pha, batch.fgr)
            total = terms["total"]
            if self.disc is not None:
                judged = self._judged(out, batch)
                real, fake = self.disc_net(torch.cat([judged["real"], judged["fake"]])).chunk(2)
                terms["gan_g"] = ralsgan_g_loss(real, fake)
                total = total + cfg.gan_weight * terms["gan_g"]
        ok = self._update(total, self.opt, self.scaler, self.net.parameters())
        if ok and self.disc is not None:
            with self._autocast():
                real, fake = self.disc(torch.cat([judged["real"], judged["fake"].detach()])).chunk(2)
                terms["gan_d"] = ralsgan_d_loss(real, fake)
            ok = self._update(terms["gan_d"], self.disc_opt, self.disc_scaler, self.disc_net.parameters())
        if not ok:
            self.state.nonfinite_total += 1
            self.nonfinite_streak += 1
            self.log(f"step {self.state.step + 1}: non-finite loss, step skipped "
                     f"({self.nonfinite_streak} in a row, {self.state.nonfinite_total} in all)")
            if self.nonfinite_streak >= cfg.max_nonfinite:
                last = os.path.join(cfg.output_dir, "last.pth")
                raise NonFiniteLossError(
                    f"stopping: {self.nonfinite_streak} consecutive non-finite losses (up to step "
                    f"{self.state.step + 1}). The last good checkpoint is kept unchanged"
                    + (f": {last}" if os.path.isfile(last) else " (none was written yet)")
                    + ". Try a lower --lr-scale, --grad-clip, or --no-amp.")
            return None
        self.nonfinite_streak = 0
        self._last = (batch, out)
        return {k: float(v.detach()) for k, v in terms.items()}

    def _note_skipped(self, skipped) -> None:
        for item in skipped:
            self.state.skipped_total += 1
            if item not in self._seen_skipped:
                self._seen_skipped.add(item)
                self.log(f"skipped unreadable file: {item}")

    # ------------------------------------------------------------------ validation, checkpoints
    @torch.no_grad()
    def validate(self) -> Dict[str, float]:
        """Loss, SAD and MSE of alpha over the fixed validation subset (rank 0's model, eval mode)."""
        from matte_ros.core.metrics import mse, sad
        self.net.eval()
        n, loss, sads, mses = 0, 0.0, [], []
        try:
            for raw in self.valid_loader:
                pha, fgr, bgr = (raw[k].to(self.ctx.device) for k in ("pha", "fgr", "bgr"))
                batch = compose_batch(pha, fgr, bgr, train=False)
                with self._autocast():
                    out = self.net(batch.src, batch.bgr)
                loss += float(self._losses(out, pha, fgr)["total"]) * pha.shape[0]
                n += pha.shape[0]
                pred, true = out.pha.float().cpu().numpy(), pha.cpu().numpy()
                for p, t in zip(pred[:, 0], true[:, 0]):
                    sads.append(sad(p, t))
                    mses.append(mse(p, t))
        finally:
            self.net.train()
        return {"loss": loss / n, "sad": float(np.mean(sads)), "mse": float(np.mean(mses))}

    def save(self, name: str) -> Optional[str]:
        """Write <output_dir>/<name>.pth (rank 0; all ranks must call: RNG states are gathered)."""
        rng = D.gather_objects(capture_rng(), self.ctx)
        if not self.ctx.is_main:
            return None
        path = os.path.join(self.cfg.output_dir, name + ".pth")
        nets = [self.net] + ([self.disc_net] if self.disc_net is not None else [])
        if not is_finite_module(*nets):
            self.log(f"not writing {path}: the network holds non-finite values; the previous file is kept")
            return None
        extra = {"training": self.state.to_dict(self.ctx.world_size), "train_config": self.cfg.to_dict(),
                 "optimizer": self.opt.state_dict(), "scaler": self.scaler.state_dict(), "rng": rng}
        if self.disc_net is not None:
            extra.update(discriminator={"config": self.disc_net.config(), "state_dict": self.disc_net.state_dict()},
                         disc_optimizer=self.disc_opt.state_dict(), disc_scaler=self.disc_scaler.state_dict())
        save_checkpoint(path, self.net, **extra)
        return path

    # ------------------------------------------------------------------ the loop
    def total_steps(self) -> int:
        total = self.cfg.epochs * self.steps_per_epoch
        return min(total, self.cfg.max_steps) if self.cfg.max_steps else total

    def fit(self) -> TrainingState:
        """Train up to ``total_steps()``; returns the state (``interrupted`` set after a Ctrl-C stop)."""
        cfg, st = self.cfg, self.state
        if self.ctx.is_main:
            os.makedirs(cfg.output_dir, exist_ok=True)
            for path in remove_orphaned_temporaries(cfg.output_dir):
                self.log(f"removed {path}: the temporary file of a checkpoint write that was killed")
            save_config(cfg, os.path.join(cfg.output_dir, "config.yaml"))
        total = self.total_steps()
        if st.step >= total:
            self.log(f"already at step {st.step} of {total}: nothing to do")
            return st
        self.log(f"{cfg.model_type}: {self.steps_per_epoch} steps/epoch x {cfg.batch_size} x "
                 f"{self.ctx.world_size} process(es) on {self.ctx.device}; steps {st.step} -> {total}")
        bar = tqdm(total=total, initial=st.step, disable=not self.ctx.is_main, dynamic_ncols=True, mininterval=1.0)
        self._marks = {"valid": -1, "saved": -1, "tick": (time.perf_counter(), st.step)}
        previous = self._catch_sigint()
        deadline = time.monotonic() + 60.0 * cfg.max_minutes if cfg.max_minutes else float("inf")
        out_of_time = False
        try:
            while st.step < total and st.epoch < cfg.epochs and not st.interrupted and not out_of_time:
                self.sampler.set_epoch(st.epoch, st.batch_in_epoch * cfg.batch_size)
                self.train_set.set_epoch(st.epoch)
                for raw in self.train_loader:
                    self._after_step(self.train_step(raw), bar)
                    st.interrupted = D.any_true(self._stop_requested, self.ctx)
                    out_of_time = cfg.max_minutes is not None and D.any_true(time.monotonic() >= deadline, self.ctx)
                    if st.step >= total or st.interrupted or out_of_time:
                        break
            if self._marks["valid"] != st.step and not st.interrupted:
                self._validate_and_keep_best()
            if self._marks["saved"] != st.step:
                self.save("last")
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            bar.close()
            if self.logger:
                self.logger.close()
        self.log(("interrupted" if st.interrupted else f"time budget of {cfg.max_minutes:g} min used" if out_of_time
                  else "done")
                 + f": step {st.step}, epoch {st.epoch}; non-finite steps {st.nonfinite_total}, skipped files "
                 f"{st.skipped_total}; checkpoints in {cfg.output_dir}"
                 + ("; continue with --resume auto" if st.interrupted else ""))
        return st

    def _after_step(self, terms: Optional[Dict[str, float]], bar: tqdm) -> None:
        """Counters, progress, TensorBoard, validation and checkpoints after one step."""
        cfg, st, marks = self.cfg, self.state, self._marks
        st.step += 1
        st.batch_in_epoch += 1
        if st.batch_in_epoch >= self.steps_per_epoch:          # checkpoints point at the next batch
            st.epoch, st.batch_in_epoch = st.epoch + 1, 0
        if terms is not None:
            bar.set_postfix(loss=f"{terms['total']:.4f}", refresh=False)
        bar.update(1)
        if terms is not None and self.logger:
            if st.step % cfg.log_every == 0:
                now = time.perf_counter()
                rate = (st.step - marks["tick"][1]) * cfg.batch_size * self.ctx.world_size / (now - marks["tick"][0])
                marks["tick"] = (now, st.step)
                self.logger.scalars(st, terms, self.opt, rate)
            if cfg.image_every and st.step % cfg.image_every == 0:
                self.logger.images(st.step, *self._last)
        if cfg.valid_every and st.step % cfg.valid_every == 0:
            self._validate_and_keep_best()
            marks["valid"] = st.step
        if cfg.checkpoint_every and st.step % cfg.checkpoint_every == 0:
            self.save("last")
            marks["saved"] = st.step

    def _catch_sigint(self):
        """First Ctrl-C: finish the step, write last.pth, stop. A second one aborts at once."""
        self._stop_requested = False
        if threading.current_thread() is not threading.main_thread():
            return None

        def handler(signum, frame):
            self._stop_requested = True
            self.log("Ctrl-C: stopping after this step and writing last.pth (press again to abort)")
            signal.signal(signal.SIGINT, signal.default_int_handler)
        return signal.signal(signal.SIGINT, handler)

    def _validate_and_keep_best(self) -> None:
        metrics, improved = (self.validate() if self.ctx.is_main else None), False
        if self.ctx.is_main:
            improved = metrics["loss"] < self.state.best_valid_loss
            if improved:
                self.state.best_valid_loss = metrics["loss"]
            self.logger.valid(self.state.step, metrics)
            self.log(f"step {self.state.step}: valid loss {metrics['loss']:.5f}, SAD {metrics['sad']:.4f}, "
                     f"MSE {metrics['mse']:.6f}" + (" (best)" if improved else ""))
        if D.any_true(improved, self.ctx):
            self.save("best")
