"""Rosbag record/replay: bag I/O with `rosbags`, offline replay evaluation (`more-replay`), bag -> dataset."""
