"""Repository-wide pytest set-up.

Each pytest session gets a ROS_DOMAIN_ID of its own (unless one is set): it holds an exclusive lock on
`$TMPDIR/more-ros-domain-<id>.lock` for its whole run, so concurrent test runs on one machine (CI jobs, several
developers) never share a domain and never hear each other's DDS traffic. Discovery stays on the loopback
interface.
"""

import fcntl
import os
import random
import tempfile
from pathlib import Path

# Fast DDS with the default port mapping accepts domain ids 0..232; 0 is what a plain shell uses.
_DOMAINS = range(1, 233)


def _claim_domain() -> str:
    candidates = list(_DOMAINS)
    random.SystemRandom().shuffle(candidates)
    for domain in candidates:
        handle = open(Path(tempfile.gettempdir()) / f"more-ros-domain-{domain}.lock", "w")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        globals()["_domain_lock"] = handle  # held until this process ends
        return str(domain)
    raise RuntimeError("no free ROS_DOMAIN_ID: more than 232 test sessions at once")


if "ROS_DOMAIN_ID" not in os.environ:
    os.environ["ROS_DOMAIN_ID"] = _claim_domain()
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("MUJOCO_GL", "egl")
