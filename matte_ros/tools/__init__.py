"""Floor 3, programs for people: the demo and the benchmarks."""
