"""The package's Fast DDS profile (``fastdds.xml`` beside this file) and how processes get it.

Fast DDS reads a default XML profile from ``FASTRTPS_DEFAULT_PROFILES_FILE`` (Fast DDS 2, ROS 2
Jazzy) or ``FASTDDS_DEFAULT_PROFILES_FILE`` (Fast DDS 3) when a process creates its first
participant. The package's executables and the demo use ours unless the user named a profile;
other rmw implementations ignore both variables.
"""
import os
from typing import Dict, Mapping

__all__ = ["FASTDDS_PROFILE", "PROFILE_VARS", "fastdds_profile_env", "use_fastdds_profile"]

FASTDDS_PROFILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fastdds.xml")
PROFILE_VARS = ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE")


def fastdds_profile_env(env: Mapping[str, str]) -> Dict[str, str]:
    """The variables to add to ``env`` so that Fast DDS loads our profile: none when ``env`` already
    names a profile (the user's choice wins), else both variables set to ``FASTDDS_PROFILE``."""
    if any(env.get(var) for var in PROFILE_VARS):
        return {}
    return {var: FASTDDS_PROFILE for var in PROFILE_VARS}


def use_fastdds_profile() -> None:
    """Set the variables in this process (and the children it starts), before rclpy.init."""
    os.environ.update(fastdds_profile_env(os.environ))
