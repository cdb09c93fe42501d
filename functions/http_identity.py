"""Who is calling. One place, so authentication can be added without touching the routes."""

from fastapi import Request

ANONYMOUS = "anonymous"


def caller(request: Request) -> str:
    """Every caller is anonymous until authentication is configured (Functions keys guard
    the app in Azure)."""
    return ANONYMOUS
