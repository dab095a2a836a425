"""``python -m training.average``: the mean of several checkpoints of one run (weight averaging).

At a constant learning rate the weights of successive checkpoints scatter around a better point;
their mean (stochastic weight averaging, Izmailov et al. 2018) usually scores better than any one
of them. Float tensors are averaged (BatchNorm running statistics included); integer tensors
(BatchNorm's batch counters) are taken from the last checkpoint. An ``--out`` ending in
``.safetensors`` is written in fp16 (a shipping candidate, e.g. the training recipes' export; one
checkpoint alone is just converted); the training steps of the inputs are printed. ``--out`` is
written atomically (a new file renamed into place) and may not name one of the inputs.
"""
import os
from typing import Dict, Optional, Sequence

from matte_ros.core.cli import Command, OneLineParser, exit_on_interrupt

PROG = "python -m training.average"

with exit_on_interrupt(PROG, active=__name__ == "__main__"):     # Ctrl-C while torch loads: one line, 130
    import torch

    from matte_ros.core.model import load_checkpoint, load_weights, read_checkpoint, save_checkpoint, save_safetensors

__all__ = ["PROG", "average_state_dicts", "main"]


def average_state_dicts(state_dicts: Sequence[Dict[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
    """The element-wise mean of float tensors of same-keyed state dicts; other tensors from the last."""
    if not state_dicts:
        raise ValueError("need at least one state dict")
    keys = list(state_dicts[0])
    for i, sd in enumerate(state_dicts[1:], 1):
        if list(sd) != keys:
            raise ValueError(f"state dict {i} has other tensors than the first")
        for k in keys:
            if sd[k].shape != state_dicts[0][k].shape:
                raise ValueError(f"tensor {k} has shape {tuple(sd[k].shape)} in state dict {i}, "
                                 f"{tuple(state_dicts[0][k].shape)} in the first")
    out = {}
    for k in keys:
        if state_dicts[0][k].is_floating_point():
            out[k] = torch.stack([sd[k].float() for sd in state_dicts]).mean(0).to(state_dicts[0][k].dtype)
        else:
            out[k] = state_dicts[-1][k].clone()
    return out


def _same_file(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b) or (os.path.exists(a) and os.path.exists(b)
                                                            and os.path.samefile(a, b))


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("checkpoints", nargs="+", help="checkpoints of one network (same architecture)")
    p.add_argument("--out", required=True,
                   help="output: .pth (weights only, float32) or .safetensors (fp16, as the package ships weights); "
                        "not one of the inputs")
    args = p.parse_args(argv)
    clash = next((c for c in args.checkpoints if _same_file(c, args.out)), None)
    if clash is not None:
        raise ValueError(f"--out {args.out} would overwrite the input {clash}")
    model = load_checkpoint(args.checkpoints[-1])
    ckpts = [read_checkpoint(c) for c in args.checkpoints]
    load_weights(model, average_state_dicts([c.state_dict for c in ckpts]), source="the average")
    if args.out.endswith(".safetensors"):
        save_safetensors(args.out, model, dtype=torch.float16)          # both write a temporary, then rename
    else:
        save_checkpoint(args.out, model, averaged=list(args.checkpoints))
    steps = [c.extra.get("training", {}).get("step") for c in ckpts]
    at = (" at step(s) " + ", ".join(str(s) for s in steps)) if all(isinstance(s, int) for s in steps) else ""
    print(f"averaged {len(args.checkpoints)} checkpoint(s){at} -> {args.out}")
    return 0


COMMAND = Command(PROG, "training.average:main")

if __name__ == "__main__":
    COMMAND()
