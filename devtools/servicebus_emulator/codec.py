"""AMQP message sections, read and written with proton's codec.

A stored message keeps the client's bytes for properties, application properties, body and
footer as they came (so types round-trip exactly), and the broker writes a fresh header
(with delivery-count) and message annotations (sequence number, times, lock) per delivery.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from proton import UNDESCRIBED, Array, Data, Described, Message, symbol, timestamp, ulong

HEADER = 0x70
DELIVERY_ANNOTATIONS = 0x71
MESSAGE_ANNOTATIONS = 0x72
PROPERTIES = 0x73
APPLICATION_PROPERTIES = 0x74
DATA = 0x75
SEQUENCE = 0x76
VALUE = 0x77
FOOTER = 0x78
_KNOWN = {HEADER, DELIVERY_ANNOTATIONS, MESSAGE_ANNOTATIONS, PROPERTIES,
          APPLICATION_PROPERTIES, DATA, SEQUENCE, VALUE, FOOTER}  # fmt: skip


class CodecError(Exception):
    pass


@dataclass
class Sections:
    """A message split into its sections; raw bytes kept for what the broker never edits."""

    durable: bool = False
    priority: int = 4
    ttl_ms: int | None = None
    annotations: dict[Any, Any] = field(default_factory=dict)
    properties: list[Any] = field(default_factory=list)
    raw_properties: bytes = b""
    application_properties: dict[Any, Any] | None = None
    raw_application_properties: bytes = b""
    raw_body: bytes = b""  # body sections and footer, verbatim
    data_sections: list[bytes] = field(default_factory=list)

    @property
    def message_id(self) -> str | None:
        value = self.properties[0] if self.properties else None
        return None if value is None else str(value)

    @property
    def session_id(self) -> str | None:
        value = self.properties[10] if len(self.properties) > 10 else None
        return None if value is None else str(value)


def _split(raw: bytes) -> list[tuple[int, bytes, Data]]:
    sections = []
    position = 0
    view = memoryview(raw)
    while position < len(raw):
        data = Data()
        try:
            consumed = data.decode(bytes(view[position:]))
        except Exception as exc:
            raise CodecError(f"undecodable AMQP section at byte {position}: {exc}") from exc
        if consumed <= 0:
            raise CodecError(f"empty AMQP section at byte {position}")
        data.rewind()
        data.next()
        if data.type() != Data.DESCRIBED:
            raise CodecError("a message section must be a described type")
        data.enter()
        data.next()
        descriptor = data.get_object()
        data.next()
        code = int(descriptor) if isinstance(descriptor, int) else -1
        if code not in _KNOWN:
            raise CodecError(f"unknown message section {descriptor!r}")
        sections.append((code, bytes(view[position : position + consumed]), data))
        position += consumed
    return sections


def parse(raw: bytes) -> Sections:
    parsed = Sections()
    body_parts: list[bytes] = []
    for code, chunk, data in _split(raw):
        if code == HEADER:
            header = data.get_object() or []
            header = list(header) + [None] * (5 - len(header))
            parsed.durable = bool(header[0])
            parsed.priority = 4 if header[1] is None else int(header[1])
            parsed.ttl_ms = None if header[2] is None else int(header[2])
        elif code == MESSAGE_ANNOTATIONS:
            parsed.annotations = dict(data.get_object() or {})
        elif code == PROPERTIES:
            parsed.properties = list(data.get_object() or [])
            parsed.raw_properties = chunk
        elif code == APPLICATION_PROPERTIES:
            parsed.application_properties = dict(data.get_object() or {})
            parsed.raw_application_properties = chunk
        elif code in (DATA, SEQUENCE, VALUE, FOOTER):
            if code == DATA:
                parsed.data_sections.append(bytes(data.get_object() or b""))
            body_parts.append(chunk)
        # delivery annotations are hop-by-hop and are not stored
    parsed.raw_body = b"".join(body_parts)
    return parsed


def split_batch(parsed: Sections) -> list[Sections] | None:
    """The messages inside a batch envelope, or None when `parsed` is a plain message.

    The SDK sends a batch (message format 0x80013700, which proton does not expose) as an
    envelope whose data sections each hold one encoded message; a plain message's data
    section does not decode as AMQP sections with a body of their own.
    """
    if not parsed.data_sections or any(d[:1] != b"\x00" for d in parsed.data_sections):
        return None
    try:
        inner = [parse(section) for section in parsed.data_sections]
    except CodecError:
        return None
    return inner if all(message.raw_body for message in inner) else None


def encode_header(durable: bool, priority: int, ttl_ms: int | None, delivery_count: int) -> bytes:
    data = Data()
    data.put_described()
    data.enter()
    data.put_ulong(HEADER)
    data.put_list()
    data.enter()
    data.put_bool(durable)
    data.put_ubyte(priority)
    if ttl_ms is None:
        data.put_null()
    else:
        data.put_uint(ttl_ms)
    data.put_bool(delivery_count == 0)  # first-acquirer
    data.put_uint(delivery_count)
    data.exit()
    data.exit()
    return bytes(data.encode())


def encode_section(code: int, value: Any) -> bytes:
    data = Data()
    data.put_object(Described(ulong(code), value))
    return bytes(data.encode())


def encode_message(
    sections: Sections,
    *,
    delivery_count: int,
    annotations: dict[Any, Any],
    application_properties: dict[Any, Any] | None = None,
) -> bytes:
    """Wire bytes for one delivery: fresh header and annotations, the rest as received."""
    merged = dict(sections.annotations)
    merged.update(annotations)
    if application_properties is None:
        app_props = sections.raw_application_properties
    else:
        combined = dict(sections.application_properties or {})
        combined.update(application_properties)
        app_props = encode_section(APPLICATION_PROPERTIES, combined)
    return b"".join(
        [
            encode_header(sections.durable, sections.priority, sections.ttl_ms, delivery_count),
            encode_section(MESSAGE_ANNOTATIONS, merged),
            sections.raw_properties,
            app_props,
            sections.raw_body,
        ]
    )


def sym(name: str) -> symbol:
    return symbol(name)


def ms_timestamp(epoch_seconds: float) -> timestamp:
    return timestamp(int(epoch_seconds * 1000))


def array_of(kind: int, values: list[Any]) -> Array:
    return Array(UNDESCRIBED, kind, *values)  # type: ignore[arg-type]


def decode_request(raw: bytes) -> Message:
    message = Message()
    message.decode(raw)
    return message


def encode_response(
    correlation_id: Any,
    status_code: int,
    description: str,
    body: Any,
    *,
    status_field: str,
    description_field: str,
    error_condition: str | None = None,
) -> bytes:
    properties: dict[str, Any] = {status_field: status_code, description_field: description}
    if error_condition:
        properties["errorCondition"] = symbol(error_condition)
        properties["error-condition"] = symbol(error_condition)
    message = Message(body=body, correlation_id=correlation_id, properties=properties)
    return bytes(message.encode())
