"""Offline matting of image folders, video files and rosbag2 recordings (the ``matte_offline`` command).

readers.py   inputs: image folder / glob, video (PyAV); bags.py: rosbag2 in and out (rosbags)
plate.py     plate sources: an image, averaged frames, per-frame backgrounds, alignment
writers.py   PNG sequences, videos, the output bag
pipeline.py  reading, inference and writing overlapped; the throughput benchmark
safety.py    inputs are never written; the manifest of what this program wrote
staging.py   outputs written under .partial names, moved into place when the run succeeded
options.py   the flags, checked as they are parsed
job.py       one run: checks, engine, staged outputs; cli.py: the command (Ctrl-C while loading included)
"""
