from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "more_bringup"  # ROS 2 (rclpy)

setup(
    name=PACKAGE,
    version="0.2.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", sorted(str(p) for p in Path("launch").glob("*.launch.py"))),
        (f"share/{PACKAGE}/launch/config", sorted(str(p) for p in Path("launch/config").glob("*.yaml"))),
        (f"share/{PACKAGE}/launch", ["launch/more.rviz"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="MoRE-Go2 maintainers",
    maintainer_email="maintainers@more-go2.dev",
    description="Bringup of the MoRE-on-Go2 stacks.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "more-stack=more_bringup.runner:main",
        ]
    },
)
