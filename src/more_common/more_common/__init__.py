"""The shared contract of the stack, pure Python (imports no rclpy): action contract, dataset format, typed config."""
