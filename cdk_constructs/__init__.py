"""Reusable CDK constructs: one per logical unit of the system. Stacks only wire these together."""
