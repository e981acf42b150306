"""The MoRE VLA policy: model/ (pure torch, no rclpy), the policy core and the ROS nodes."""
