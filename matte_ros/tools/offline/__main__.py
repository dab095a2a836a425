"""python -m matte_ros.tools.offline: the matte_offline command."""
import sys

from .cli import main

sys.exit(main())
