"""ATOM documents of the Service Bus REST API: queue entries, feeds and error bodies.

The shapes are those Azure answers with (and `azure.servicebus.management` parses):
an `<entry>` whose content is a `QueueDescription`, a `<feed>` of entries with a `next`
link while more pages remain, an empty feed for an entity that does not exist, and
`<Error><Code/><Detail/></Error>` for failures.
"""

from __future__ import annotations

import datetime as dt
import uuid
from urllib.parse import quote
from xml.sax.saxutils import escape, quoteattr

from devtools.servicebus_emulator.config import FOREVER
from devtools.servicebus_emulator.snapshot import QueueSnapshot

ATOM = "http://www.w3.org/2005/Atom"
SB = "http://schemas.microsoft.com/netservices/2010/10/servicebus/connect"
SB_COUNTS = "http://schemas.microsoft.com/netservices/2011/06/servicebus"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
TIMESPAN_MAX = "P10675199DT2H48M5.4775807S"  # .NET TimeSpan.MaxValue: Azure's "never"
NEVER = "0001-01-01T00:00:00Z"  # Azure's AccessedAt for an entity nobody used yet
ENTRY_TYPE = "application/atom+xml;type=entry;charset=utf-8"
FEED_TYPE = "application/atom+xml;type=feed;charset=utf-8"
ERROR_TYPE = "application/xml; charset=utf-8"
DECLARATION = '<?xml version="1.0" encoding="utf-8"?>'


def duration(seconds: float) -> str:
    """Seconds -> ISO-8601 (60 -> PT1M, 0.5 -> PT0.5S, 14 days -> P14D)."""
    if seconds >= FOREVER:
        return TIMESPAN_MAX
    whole = int(seconds)
    fraction = round(seconds - whole, 6)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = "P" + (f"{days}D" if days else "")
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if secs or fraction:
        clock += f"{secs + fraction:g}S"
    if clock or text == "P":
        text += "T" + (clock or "0S")
    return text


def timestamp(epoch: float) -> str:
    if epoch <= 0:
        return NEVER
    moment = dt.datetime.fromtimestamp(epoch, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _now() -> str:
    return timestamp(dt.datetime.now(dt.UTC).timestamp())


def _flag(value: bool) -> str:
    return "true" if value else "false"


def queue_description(queue: QueueSnapshot, base: str) -> str:
    """The `QueueDescription` element for one queue; `base` is `http://host:port`."""
    s = queue.settings
    forwarding = ""
    if s.forward_to:
        forwarding += f"<ForwardTo>{escape(_entity_uri(base, s.forward_to))}</ForwardTo>"
    dead_letter_forwarding = ""
    if s.forward_dead_lettered_to:
        uri = escape(_entity_uri(base, s.forward_dead_lettered_to))
        dead_letter_forwarding = (
            f"<ForwardDeadLetteredMessagesTo>{uri}</ForwardDeadLetteredMessagesTo>"
        )
    counts = (
        f'<CountDetails xmlns:d2p1="{SB_COUNTS}">'
        f"<d2p1:ActiveMessageCount>{queue.active}</d2p1:ActiveMessageCount>"
        f"<d2p1:DeadLetterMessageCount>{queue.dead_letters}</d2p1:DeadLetterMessageCount>"
        f"<d2p1:ScheduledMessageCount>{queue.scheduled}</d2p1:ScheduledMessageCount>"
        "<d2p1:TransferMessageCount>0</d2p1:TransferMessageCount>"
        "<d2p1:TransferDeadLetterMessageCount>0</d2p1:TransferDeadLetterMessageCount>"
        "</CountDetails>"
    )
    created = timestamp(queue.created_at)
    return (
        f'<QueueDescription xmlns="{SB}" xmlns:i="{XSI}">'
        f"<LockDuration>{duration(s.lock_duration)}</LockDuration>"
        "<MaxSizeInMegabytes>1024</MaxSizeInMegabytes>"
        f"<RequiresDuplicateDetection>{_flag(s.requires_duplicate_detection)}"
        "</RequiresDuplicateDetection>"
        f"<RequiresSession>{_flag(s.requires_session)}</RequiresSession>"
        f"<DefaultMessageTimeToLive>{duration(s.default_ttl)}</DefaultMessageTimeToLive>"
        f"<DeadLetteringOnMessageExpiration>{_flag(s.dead_letter_on_expiration)}"
        "</DeadLetteringOnMessageExpiration>"
        f"<DuplicateDetectionHistoryTimeWindow>{duration(s.duplicate_window)}"
        "</DuplicateDetectionHistoryTimeWindow>"
        f"<MaxDeliveryCount>{s.max_delivery_count}</MaxDeliveryCount>"
        "<EnableBatchedOperations>true</EnableBatchedOperations>"
        f"<SizeInBytes>{queue.size_in_bytes}</SizeInBytes>"
        f"<MessageCount>{queue.total}</MessageCount>"
        "<IsAnonymousAccessible>false</IsAnonymousAccessible>"
        "<AuthorizationRules></AuthorizationRules>"
        "<Status>Active</Status>"
        f"{forwarding}"
        f"<CreatedAt>{created}</CreatedAt><UpdatedAt>{created}</UpdatedAt>"
        f"<AccessedAt>{timestamp(queue.accessed_at)}</AccessedAt>"
        "<SupportOrdering>true</SupportOrdering>"
        f"{counts}"
        f"<AutoDeleteOnIdle>{TIMESPAN_MAX}</AutoDeleteOnIdle>"
        "<EnablePartitioning>false</EnablePartitioning>"
        "<EntityAvailabilityStatus>Available</EntityAvailabilityStatus>"
        f"{dead_letter_forwarding}"
        "<EnableExpress>false</EnableExpress>"
        f"<MaxMessageSizeInKilobytes>{s.max_message_bytes // 1024}</MaxMessageSizeInKilobytes>"
        "</QueueDescription>"
    )


def _entity_uri(base: str, name: str) -> str:
    # Azure answers forwarding targets as the target's full address, not its bare name.
    host = base.split("://", 1)[-1]
    return f"sb://{host}/{name}"


def _entry_body(queue: QueueSnapshot, base: str, api_version: str) -> str:
    href = f"{base}/{quote(queue.name)}?api-version={quote(api_version)}"
    created = timestamp(queue.created_at)
    return (
        f"<id>{escape(href)}</id>"
        f'<title type="text">{escape(queue.name)}</title>'
        f"<published>{created}</published><updated>{created}</updated>"
        f"<author><name>{escape(base.split('://', 1)[-1])}</name></author>"
        f'<link rel="self" href={quoteattr(href)}/>'
        f'<content type="application/xml">{queue_description(queue, base)}</content>'
    )


def entry(queue: QueueSnapshot, base: str, api_version: str) -> str:
    return f'{DECLARATION}<entry xmlns="{ATOM}">{_entry_body(queue, base, api_version)}</entry>'


def feed(
    queues: list[QueueSnapshot], base: str, api_version: str, *, skip: int, top: int, total: int
) -> str:
    """One page of the queue list; a `next` link (the SDK pages on it) while more remain."""
    self_href = f"{base}/$Resources/queues?$skip={skip}&$top={top}&api-version={api_version}"
    links = f'<link rel="self" href={quoteattr(self_href)}/>'
    if skip + len(queues) < total:
        following = skip + len(queues)
        next_href = (
            f"{base}/$Resources/queues?$skip={following}&$top={top}&api-version={api_version}"
        )
        links += f'<link rel="next" href={quoteattr(next_href)}/>'
    entries = "".join(f"<entry>{_entry_body(q, base, api_version)}</entry>" for q in queues)
    return (
        f'{DECLARATION}<feed xmlns="{ATOM}"><title type="text">Queues</title>'
        f"<id>{escape(self_href)}</id><updated>{_now()}</updated>{links}{entries}</feed>"
    )


def empty_feed() -> str:
    """What Azure answers for GET of an entity that does not exist (the SDK raises
    ResourceNotFoundError on it)."""
    return (
        f'{DECLARATION}<feed xmlns="{ATOM}">'
        '<title type="text">Publicly Listed Services</title>'
        '<subtitle type="text">This is the list of publicly-listed services currently '
        "available.</subtitle>"
        f"<id>uuid:{uuid.uuid4()};id=1</id><updated>{_now()}</updated>"
        "<generator>Service Bus emulator</generator></feed>"
    )


def error(code: int, detail: str) -> str:
    return f"<Error><Code>{code}</Code><Detail>{escape(detail)}</Detail></Error>"
