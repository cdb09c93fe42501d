"""Test-wide fixtures. The heavy ones (Azurite, the Service Bus emulator) live in tests/fixtures."""

from __future__ import annotations

import pytest

pytest_plugins = [
    "tests.fixtures.servicebus",
    "tests.fixtures.azurite",
    "tests.fixtures.app",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files marked `long_running` first, the rest in their usual order. `make test` hands
    whole files to its xdist workers in this order, so the longest start at once and the
    short ones fill in around them instead of trailing at the end."""
    items.sort(key=lambda item: item.get_closest_marker("long_running") is None)
