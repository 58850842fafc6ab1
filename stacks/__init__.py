"""Deployable stacks. Each is thin: it creates constructs and wires them together."""
