from setuptools import find_packages, setup

PACKAGE = "more_sim_ros"  # ROS 2 (rclpy)

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
    description="The simulator's ROS nodes, for simulation only (never installed on the robot).",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "world_sim_node=more_sim_ros.world_node:main",
            "base_sim_node=more_sim_ros.base_node:main",
            "more-demo=more_sim_ros.demo:main",
        ]
    },
)
