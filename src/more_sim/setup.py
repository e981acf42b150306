from setuptools import find_packages, setup

PACKAGE = "more_sim"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="MoRE-Go2 maintainers",
    maintainer_email="maintainers@more-go2.dev",
    description="Six-task MuJoCo simulator, experts, data generation and evaluation.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "base_sim_node=more_sim.base_sim_node:main",
            "more-demo=more_sim.demo:main",
            "more-sim=more_sim.cli:main",
            "sim_node=more_sim.sim_node:main",
        ],
    },
)
