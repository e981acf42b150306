from setuptools import find_packages, setup

PACKAGE = "more_common"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["setuptools", "numpy"],
    zip_safe=True,
    maintainer="MoRE-Go2 maintainers",
    maintainer_email="maintainers@more-go2.dev",
    description="Action contract, topic names, QoS and node skeleton shared by the MoRE-on-Go2 stack.",
    license="Apache-2.0",
    entry_points={"console_scripts": []},
)
