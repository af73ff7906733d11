"""Packaging beyond pyproject.toml: ``conf/`` and ``recipes/`` stay at the top of the repository and ship
inside the wheel as ``speech/conf`` and ``speech/recipes`` (package data of the mapped folders), so a normal
``pip install`` can train a recipe."""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
MAPPED = {"speech.conf": "conf", "speech.recipes": "recipes"}  # package -> folder at the top of the repository
DATA = ["*.yaml", "*.md", "*.sh", "*.txt", "*.py"]

packages = find_packages(include=["speech", "speech.*"])
package_dir = dict(MAPPED)
package_data = {"speech": ["py.typed", "pretrained/*.pt", "pretrained/*.onnx", "pretrained/*.md"]}
for package, folder in MAPPED.items():
    for sub in [HERE / folder, *sorted(p for p in (HERE / folder).rglob("*") if p.is_dir() and p.name != "__pycache__")]:
        name = ".".join([package, *sub.relative_to(HERE / folder).parts])
        packages.append(name)
        package_data[name] = DATA

setup(packages=packages, package_dir=package_dir, package_data=package_data)
