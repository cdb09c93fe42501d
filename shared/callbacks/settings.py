"""The callback settings, checked once at start-up (shared/config.py reads the values)."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.callbacks.policy import AllowEntry, parse_allow_list
from shared.retry import RetryPolicy

MIN_SECRET_LENGTH = 32


@dataclass(frozen=True)
class CallbackSettings:
    queue: str = "callbacks"
    allowed_hosts: tuple[AllowEntry, ...] = ()
    signing_secret: str | None = field(default=None, repr=False)
    retry: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(base_seconds=5.0, max_seconds=600.0, max_attempts=8)
    )
    timeout_seconds: float = 10.0
    # Absolute links in the POSTed document (https://<WEBSITE_HOSTNAME>); "" keeps them relative.
    public_base_url: str = ""


def callback_settings(
    *,
    queue: str,
    allowed_hosts: str | None,
    signing_secret: str | None,
    retry: RetryPolicy,
    timeout_seconds: float,
    website_hostname: str | None,
    problems: list[str],
) -> CallbackSettings:
    try:
        entries = parse_allow_list(allowed_hosts)
    except ValueError as exc:
        problems.append(f"CALLBACK_ALLOWED_HOSTS is not valid: {exc}")
        entries = ()
    if entries and not signing_secret:
        problems.append("CALLBACK_ALLOWED_HOSTS needs CALLBACK_SIGNING_SECRET to sign callbacks")
    if signing_secret and len(signing_secret) < MIN_SECRET_LENGTH:
        problems.append(
            f"CALLBACK_SIGNING_SECRET is too short: use at least {MIN_SECRET_LENGTH} random "
            "characters"
        )
    base = ""
    if website_hostname:
        local = website_hostname.split(":")[0] in ("localhost", "127.0.0.1")
        base = f"{'http' if local else 'https'}://{website_hostname}"
    return CallbackSettings(
        queue=queue,
        allowed_hosts=entries,
        signing_secret=signing_secret,
        retry=retry,
        timeout_seconds=timeout_seconds,
        public_base_url=base,
    )
