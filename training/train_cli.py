"""``python -m training train --model-type {base,refine,gan} ...`` (also under ``torchrun``)."""
import sys
from typing import List, Optional

from matte_ros.core.cli import debug_enabled, describe_error

from . import distributed as D
from .config import parse_config
from .trainer import NonFiniteLossError, Trainer

__all__ = ["main"]


def main(argv: Optional[List[str]] = None) -> int:
    try:
        cfg = parse_config(argv)
        ctx = D.setup(cfg.device)          # ValueError for a device this machine does not have
    except (ValueError, OSError) as e:
        if debug_enabled():
            raise
        print(f"error: {describe_error(e)}", file=sys.stderr)
        return 2
    try:
        if Trainer(cfg, ctx).fit().interrupted:
            return 130
    except NonFiniteLossError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as e:      # bad data, configs or checkpoints: a clear message, not a traceback
        if debug_enabled():
            raise
        print(f"error: {describe_error(e) if isinstance(e, OSError) else e}", file=sys.stderr)
        return 2
    finally:
        D.teardown(ctx)
    return 0
