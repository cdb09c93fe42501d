"""Which callback URLs are allowed: an allow-list of hosts, https, and no private addresses.

CALLBACK_ALLOWED_HOSTS is a comma-separated list of entries:
- `hooks.example.com`  that host exactly, over https;
- `*.example.com`      any name under example.com (not example.com itself), over https;
- `http://host`        that host exactly, over plain http too (an exact entry only);
- `10.1.2.3`, `[fd00::1]` an IP address: a URL may name it, and a name may resolve to it.
Any port is allowed. A host's addresses must all be public (not private, loopback,
link-local, shared, reserved or multicast) unless the list names each such address: this is
checked at submit and again at delivery, when the request goes to the address just checked
(so a DNS answer that changes in between, DNS rebinding, cannot point it elsewhere).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from shared.errors import FieldProblem, ValidationFailed

FIELD = "callback_url"
MAX_URL_LENGTH = 2048
RESOLVE_TIMEOUT_SECONDS = 2.0

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]


class CallbackRefused(Exception):
    """A callback URL (or what its host resolves to) is not allowed."""


@dataclass(frozen=True)
class AllowEntry:
    host: str  # a lower-case name, the suffix of a wildcard, or an address's text
    wildcard: bool = False
    http: bool = False
    address: Address | None = None

    def matches(self, host: str) -> bool:
        if self.wildcard:
            return _address(host) is None and host.endswith("." + self.host)
        if self.address is not None:
            return _address(host) == self.address
        return host == self.host


@dataclass(frozen=True)
class CallbackTarget:
    """A URL that passed the allow-list: what delivery connects to."""

    url: str
    scheme: str
    host: str
    port: int
    path: str  # path and query, as sent in the request line


def parse_allow_list(raw: str | None) -> tuple[AllowEntry, ...]:
    """The entries of CALLBACK_ALLOWED_HOSTS; ValueError names a bad one."""
    entries = []
    for part in (raw or "").split(","):
        text = part.strip().lower()
        if not text:
            continue
        http = text.startswith("http://")
        host = text.removeprefix("http://")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        wildcard = host.startswith("*.")
        if wildcard:
            host = host[2:]
            if http:
                raise ValueError(f"{part.strip()!r}: plain http is for exact hosts only")
        address = _address(host)
        if not host or "/" in host or "*" in host or (":" in host and address is None):
            raise ValueError(f"{part.strip()!r} is not a host name, *.suffix or IP address")
        if wildcard and (address is not None or "." not in host):
            raise ValueError(f"{part.strip()!r}: a wildcard needs a domain like *.example.com")
        entries.append(AllowEntry(host=host, wildcard=wildcard, http=http, address=address))
    return tuple(entries)


async def system_resolver(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class CallbackPolicy:
    def __init__(self, entries: Iterable[AllowEntry], resolver: Resolver = system_resolver) -> None:
        self.entries = tuple(entries)
        self._resolver = resolver
        self._named = {e.address for e in self.entries if e.address is not None}

    @property
    def enabled(self) -> bool:
        return bool(self.entries)

    def target(self, url: str) -> CallbackTarget:
        """The URL's target when the allow-list lets it through; CallbackRefused says why not."""
        if len(url) > MAX_URL_LENGTH:
            raise CallbackRefused(f"is longer than {MAX_URL_LENGTH} characters")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise CallbackRefused(f"is not a valid URL ({exc})") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CallbackRefused("must be an absolute https:// URL")
        if parts.username is not None or parts.password is not None:
            raise CallbackRefused("must not carry a user name or password")
        if any(ord(ch) <= 32 or ord(ch) == 127 for ch in url):
            raise CallbackRefused("must not contain spaces or control characters")
        host = parts.hostname.lower().rstrip(".")
        if not self.entries:
            raise CallbackRefused(
                "callbacks are off here: no host is allowed (CALLBACK_ALLOWED_HOSTS)"
            )
        matching = [e for e in self.entries if e.matches(host)]
        if not matching:
            raise CallbackRefused(
                f"host {host!r} is not on the allow-list (CALLBACK_ALLOWED_HOSTS)"
            )
        if parts.scheme == "http" and not any(e.http for e in matching):
            raise CallbackRefused(f"must use https (plain http is not allowed for {host!r})")
        return CallbackTarget(
            url=url,
            scheme=parts.scheme,
            host=host,
            port=port or (443 if parts.scheme == "https" else 80),
            path=_request_target(parts),
        )

    async def addresses(self, target: CallbackTarget) -> list[Address]:
        """The target's addresses, all allowed (CallbackRefused otherwise)."""
        literal = _address(target.host)
        if literal is not None:
            found = [literal]
        else:
            try:
                async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
                    answers = await self._resolver(target.host, target.port)
            except (OSError, TimeoutError) as exc:
                raise CallbackRefused(f"host {target.host!r} does not resolve ({exc})") from None
            found = [a for a in (_address(text) for text in answers) if a is not None]
            if not found:
                raise CallbackRefused(f"host {target.host!r} does not resolve")
        for address in found:
            if not is_public(address) and address not in self._named:
                raise CallbackRefused(
                    f"host {target.host!r} is at {address}, a private or reserved address "
                    "the allow-list does not name"
                )
        return found

    async def check(self, url: str | None) -> None:
        """At submit: a 422 naming the field unless `url` may be called back."""
        if url is None:
            return
        try:
            await self.addresses(self.target(url))
        except CallbackRefused as exc:
            raise ValidationFailed(f"callback_url {exc}", [FieldProblem(FIELD, str(exc))]) from None


def is_public(address: Address) -> bool:
    """Reachable on the internet: not private, loopback, link-local, shared or reserved."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def _address(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _request_target(parts: SplitResult) -> str:
    path = parts.path or "/"
    return f"{path}?{parts.query}" if parts.query else path
