"""Unitree Go2 bridge: message packing, CRC, safety state machine, backends and node."""
