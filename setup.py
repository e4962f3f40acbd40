"""Packaging: the metadata and the dependencies are in pyproject.toml.

This file is what ``scrapyd-deploy`` runs (``python setup.py bdist_egg``). The package
holds ``pgy_spider`` only (never the tests or the benchmarks), with every non-Python file
under it (sample seeds, the report's template). Scrapyd installs no dependencies from an
egg: the Scrapyd host installs ``requirements.txt`` itself (see README "Deploy to Scrapyd").
"""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent
PACKAGE = "pgy_spider"


def package_data() -> list[str]:
    """Every non-Python file under the package (sample seeds and the like)."""
    root = HERE / PACKAGE
    return sorted(
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.is_file()
        and path.suffix not in {".py", ".pyc", ".pyo"}
        and "__pycache__" not in path.parts
    )


setup(
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    package_data={PACKAGE: package_data()},
)
