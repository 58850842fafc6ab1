"""Per-interval anomaly detector (Random Cut Forest) that replaces Lookout for Metrics."""
