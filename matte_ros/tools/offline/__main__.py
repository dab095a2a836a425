"""python -m matte_ros.tools.offline: the matte_offline command."""
from .cli import COMMAND

COMMAND()
