"""Shared contract of the MoRE-on-Go2 stack (pure Python; ROS helpers import rclpy lazily)."""
