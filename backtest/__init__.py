"""Backtests of both detectors on labelled series, scored the way the Numenta Anomaly Benchmark scores."""
