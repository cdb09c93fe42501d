"""One log format for the local programs (host, emulator), on stderr."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping


def configure_logging(level: str, quiet: Mapping[str, int] | None = None) -> None:
    """Log at `level`; `quiet` raises the threshold of chatty libraries (logger -> level)."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if logging.getLogger().level > logging.DEBUG:
        for name, threshold in (quiet or {}).items():
            logging.getLogger(name).setLevel(threshold)
