"""Per-interval anomaly detector (one robust seasonal model per dimension value) that replaces Lookout for Metrics."""
