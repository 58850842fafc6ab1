"""Lambda that consumes SageMaker callback-step messages and starts (or stops) the prep work."""
