from setuptools import find_packages, setup

PACKAGE = "more_sim"  # pure Python, imports no rclpy

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
    description="A MuJoCo simulator of the MoRE paper's six language-conditioned tasks (Gymnasium API, no ROS).",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "more-sim=more_sim.cli:main",
        ]
    },
)
