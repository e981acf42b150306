"""Offline training of the MoRE VLA policy: data streaming, RL/IL objectives, checkpoints, evaluation."""
