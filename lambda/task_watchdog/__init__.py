"""Lambda that fails the callback step when its Fargate prep task stopped without reporting."""
