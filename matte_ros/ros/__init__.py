"""Floor 2, the rclpy shell over :mod:`matte_ros.core`: the node, its parameters and diagnostics,
image message conversion, the fake camera, the capture client and the Fast DDS profile."""
