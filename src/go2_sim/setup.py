from setuptools import find_packages, setup

PACKAGE = "go2_sim"  # ROS 2 (rclpy)

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
    description="A simulated Unitree Go2 (MuJoCo) on LowCmd/LowState or in sport mode; simulation only.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "go2_mujoco_sim=go2_sim.node:main",
            "go2_sport_sim=go2_sim.sport_sim_node:main",
        ]
    },
)
