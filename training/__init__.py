"""Reproduce and fine-tune the BGMv2 models: ``python -m training {train,eval,export,synth} ...``."""
