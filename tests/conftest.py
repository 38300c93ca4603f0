"""Shared fixtures. Service fixtures live in their own modules, loaded as plug-ins below.

A test that needs a service which is not there is skipped on a developer's machine and
fails when ``CI=true``: CI must exercise every sink against the real thing.
"""

import os

import pytest

pytest_plugins = ["kafka_fixtures", "db_fixtures"]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def service_missing(what: str) -> None:
    """Skip (developer machine) or fail (CI) the current test because ``what`` is missing."""
    if IN_CI:
        pytest.fail(f"{what} is required when CI=true", pytrace=False)
    pytest.skip(f"{what} is not available")
