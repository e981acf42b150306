from setuptools import find_packages, setup

PACKAGE = "more_vla_policy"  # ROS 2 (rclpy)

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
    description="The MoRE policy's ROS face.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "command_publisher=more_vla_policy.command_publisher:main",
            "camera_node=more_vla_policy.camera_node:main",
            "policy_node=more_vla_policy.policy_node:main",
            "more-replay=more_vla_policy.replay.cli:main",
            "bag_player=more_vla_policy.replay.player_node:main",
            "bag_recorder=more_vla_policy.replay.recorder_node:main",
        ]
    },
)
