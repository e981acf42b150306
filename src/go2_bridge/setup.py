from setuptools import find_packages, setup

PACKAGE = "go2_bridge"  # ROS 2 (rclpy)

setup(
    name=PACKAGE,
    version="0.2.0",
    packages=find_packages(exclude=["test", "test.*"]),
    package_data={PACKAGE: ["config/*.yaml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="MoRE-Go2 maintainers",
    maintainer_email="maintainers@more-go2.dev",
    description="Unitree Go2 hardware bridge.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "go2_bridge_node=go2_bridge.bridge_node:main",
            "go2_sport_node=go2_bridge.sport_node:main",
        ]
    },
)
