"""Lambda that answers the callback step when its Glue run finishes (events completion mode)."""
