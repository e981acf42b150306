"""Bringup of the stacks: `stacks` (each stack's one node list), launch files + YAML, `runner` (more-stack)."""
