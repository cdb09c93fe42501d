"""Test-wide fixtures. The heavy ones (Azurite, the Service Bus emulator) live in tests/fixtures."""

pytest_plugins = [
    "tests.fixtures.servicebus",
    "tests.fixtures.azurite",
    "tests.fixtures.app",
]
