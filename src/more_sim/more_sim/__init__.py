"""The six-task MoRE simulator (Gymnasium API, MuJoCo rendering), experts, data and evaluation.

Importing the package registers the Gymnasium ids listed in `more_sim.registration.ENV_IDS`.
"""

import os

# MuJoCo picks its OpenGL platform when it is first imported, by any module of this package (scene.py for the
# kinematic camera, go2/ for the walking robot): headless EGL unless the user chose one (scene.py: why)
os.environ.setdefault("MUJOCO_GL", "egl")

from more_sim.registration import ENV_IDS, register_envs

register_envs()

__all__ = ["ENV_IDS", "register_envs"]
