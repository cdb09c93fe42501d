"""The Caller: who a request comes from, as the core sees it (no HTTP, no credentials)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Caller:
    """An authenticated caller.

    `owner` is recorded on every job it submits and scopes what it may see; `admin` opens the
    operator routes (and every owner's jobs); `submits_per_minute` overrides the global rate
    limit for this caller (None: the global one; 0: no limit).
    """

    owner: str
    admin: bool = False
    credential: str = "none"  # how it was proven, for audit entries: "api-key:<id>", "entra"
    submits_per_minute: int | None = None

    def may_see(self, job_owner: str) -> bool:
        return self.admin or job_owner == self.owner


# Every request when AUTH_MODE=off (local experiments only): one owner, full rights.
UNAUTHENTICATED = Caller(owner="anonymous", admin=True, credential="auth-off")
