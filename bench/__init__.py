"""Benchmarks for the Glue scripts, the detector, the callback and the developer loop: `python -m bench`."""
