"""Teleoperation and data collection: `more-teleop` (keyboard/joystick in the VLA's action space), `command_mux`
(teleop overrides the VLA; /cmd_vel mirror) and `episode_control` (episode start/stop and success labels)."""
