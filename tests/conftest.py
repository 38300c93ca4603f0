"""Shared fixtures. Service fixtures live in their own modules, loaded as plug-ins below.

A test that needs a service which is not there is skipped on a developer's machine and
fails when ``CI=true``: CI must exercise every sink against the real thing.
"""

from support.services import IN_CI, service_missing  # noqa: F401 (kept for older imports)

pytest_plugins = [
    "support.kafka_fixtures",
    "support.db_fixtures",
    "support.bus_fixtures",
    "support.remote_fixtures",
]
