"""ROS-side helpers of every node: names, QoS, node skeleton, parameters, diagnostics, conversions, test probes."""
