"""Unitree Go2 bridge: message packing, CRC, limits, safety state machine, remote, sport-mode release and node."""
