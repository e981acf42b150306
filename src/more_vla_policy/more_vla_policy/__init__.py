"""The MoRE policy's ROS face: policy core and node, camera sources and node, monitoring, replay (model: more_model)."""
