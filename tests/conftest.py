"""Shared fixtures: the API simulator, the MongoDB-compatible server, crawl runners."""

pytest_plugins = [
    "tests.support.simulator",
    # "tests.support.mongo",
]
