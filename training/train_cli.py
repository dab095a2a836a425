"""``python -m training train --model-type {base,refine,gan} ...`` (also under ``torchrun``).

Wrong settings, data or checkpoints raise ``ValueError`` / ``OSError`` (exit 2), too many non-finite
losses ``NonFiniteLossError`` (a ``Failure``: exit 1), a Ctrl-C stop after its checkpoint
``KeyboardInterrupt`` (130); the runner (``python -m training``) prints the one line."""
from typing import List, Optional

from . import distributed as D
from .config import parse_config
from .trainer import Trainer

__all__ = ["main"]


def main(argv: Optional[List[str]] = None) -> int:
    cfg = parse_config(argv)
    ctx = D.setup(cfg.device)          # ValueError for a device this machine does not have
    try:
        if Trainer(cfg, ctx).fit().interrupted:
            raise KeyboardInterrupt          # stopped after a checkpoint (the log says how to go on)
    finally:
        D.teardown(ctx)
    return 0
