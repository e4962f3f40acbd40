"""Packaging for Scrapyd: ``scrapyd-deploy`` builds an egg from this file.

The egg holds the ``pgy_spider`` package only (never the tests or the benchmarks)
and names its settings module through the ``scrapy`` entry point, which is how
Scrapyd finds the project's settings. Eggs carry no dependencies: the Scrapyd host
installs ``requirements.txt`` itself (see README "Deploy to Scrapyd").
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
    name="pgy-spider",
    version="1.0",
    description="Xiaohongshu note IDs to notes through Just One API's note-detail endpoint",
    packages=find_packages(exclude=["tests", "tests.*", "bench", "bench.*"]),
    package_data={PACKAGE: package_data()},
    entry_points={"scrapy": ["settings = pgy_spider.settings"]},
    python_requires=">=3.11",
)
