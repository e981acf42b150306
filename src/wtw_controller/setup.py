from setuptools import find_packages, setup

PACKAGE = "wtw_controller"  # ROS 2 (rclpy)

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
    description="The low-level locomotion controller (walk-these-ways and velocity-policy backends).",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "wtw_controller_node=wtw_controller.controller_node:main",
        ]
    },
)
