"""The simulator's ROS nodes (simulation only): the six-task world node, the kinematic base node, `more-demo`."""
