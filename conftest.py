"""Repository-wide pytest set-up.

Each pytest session gets its own ROS_DOMAIN_ID (unless one is set), so concurrent test runs on one
machine never hear each other's DDS traffic, and discovery stays on the loopback interface.
"""

import os
import random

os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(1, 100)))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("MUJOCO_GL", "egl")
