#!/usr/bin/env python3
"""Make the include paths baked into the ROS 2 PyPI wheels exist on this machine.

Why: the ros-jazzy-* wheels were built in a manylinux container whose Python lived in
/opt/python/cp311-cp311. Their exported CMake targets (rosidl_generator_py, rosidl_typesupport_*)
carry that interpreter's include directory and numpy's include directory as absolute paths, and
CMake refuses to generate a build that names include directories which do not exist. A colcon
build of an interface package (src/more_msgs) therefore fails on any machine that got ROS 2 from
PyPI, until those two paths exist. We create them as symlinks to this interpreter's include
directory and this numpy's include directory, which hold the same headers.

Only the pip-only setup needs this. Inside a real ROS 2 install (apt, ros:jazzy) the CMake targets
point at the system's own paths and this script is never run.

Idempotent: existing correct links are left alone; a path that exists and is not our link is left
alone too (it is then somebody else's real directory). Creating /opt/python needs root; without
it the script explains what to do and exits non-zero.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

WHEEL_BUILD_PYTHON = Path("/opt/python/cp311-cp311")


def wanted_links() -> dict[Path, Path]:
    import numpy

    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return {
        WHEEL_BUILD_PYTHON / "include" / version: Path(sysconfig.get_paths()["include"]),
        WHEEL_BUILD_PYTHON / "lib" / version / "site-packages" / "numpy" / "_core" / "include": Path(
            numpy.get_include()
        ),
    }


def ensure_link(link: Path, target: Path) -> str:
    if link.is_symlink():
        if Path(os.readlink(link)) == target:
            return "ok"
        link.unlink()
    elif link.exists():
        return "exists (not ours, left alone)"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target, target_is_directory=True)
    return "created"


def main() -> int:
    if sys.version_info[:2] != (3, 11):
        print(f"note: the ROS 2 Jazzy wheels are cp311; this is Python {sys.version.split()[0]}", file=sys.stderr)
    status = 0
    for link, target in wanted_links().items():
        if not target.is_dir():
            print(f"error: {target} does not exist (install the Python headers / numpy first)", file=sys.stderr)
            status = 1
            continue
        try:
            result = ensure_link(link, target)
        except PermissionError:
            print(
                f"error: cannot create {link} (needs root). Run once as root:\n"
                f"  sudo mkdir -p {link.parent} && sudo ln -sfn {target} {link}",
                file=sys.stderr,
            )
            status = 1
            continue
        if result != "ok":
            print(f"{link} -> {target}: {result}")
    return status


if __name__ == "__main__":
    sys.exit(main())
