"""Synthetic e-commerce event generator that feeds the Kinesis data stream."""
