"""``python -m training train --model-type {base,refine,gan} ...`` (also under ``torchrun``)."""
import sys
from typing import List, Optional

from .config import parse_config
from .trainer import NonFiniteLossError, Trainer
from . import distributed as D

__all__ = ["main"]


def main(argv: Optional[List[str]] = None) -> int:
    try:
        cfg = parse_config(argv)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    ctx = D.setup(cfg.device)
    try:
        if Trainer(cfg, ctx).fit().interrupted:
            return 130
    except NonFiniteLossError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except ValueError as e:      # bad data, configs or checkpoints: a clear message, not a traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        D.teardown(ctx)
    return 0
