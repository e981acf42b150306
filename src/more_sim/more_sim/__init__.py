"""The six-task MoRE simulator (Gymnasium API, MuJoCo rendering), experts, data and evaluation.

Importing the package registers the Gymnasium ids listed in `more_sim.registration.ENV_IDS`.
"""

from more_sim.registration import ENV_IDS, register_envs

register_envs()

__all__ = ["ENV_IDS", "register_envs"]
