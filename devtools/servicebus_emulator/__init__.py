"""A local Service Bus emulator: an AMQP 1.0 broker the azure-servicebus SDK talks to.

For development and tests only; see README.md in this folder for what it supports.
"""

CONNECTION_STRING_TEMPLATE = (
    "Endpoint=sb://{host}:{port};SharedAccessKeyName=RootManageSharedAccessKey;"
    "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true"
)


def connection_string(host: str, port: int) -> str:
    return CONNECTION_STRING_TEMPLATE.format(host=host, port=port)
