"""Floor 1, no ROS and no training: the network and its fast path, the engine, plates, metrics,
synthetic scenes and small file helpers."""
