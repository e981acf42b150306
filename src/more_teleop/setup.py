from setuptools import find_packages, setup

PACKAGE = "more_teleop"  # ROS 2 (rclpy)

setup(
    name=PACKAGE,
    version="0.2.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="MoRE-Go2 maintainers",
    maintainer_email="maintainers@more-go2.dev",
    description="Teleoperation in the VLA's action space, the VLA/teleop command mux (/cmd_vel) and episode labelling.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "more-teleop=more_teleop.teleop_node:main",
            "command_mux=more_teleop.mux_node:main",
            "episode_control=more_teleop.episode_node:main",
        ]
    },
)
