"""One log format for the local programs (host, emulator), on stderr."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(
    level: str,
    quiet: Mapping[str, int] | None = None,
    *,
    formatter: logging.Formatter | None = None,
) -> None:
    """Log at `level`; `quiet` raises the threshold of chatty libraries (logger -> level).
    `formatter` replaces the text format (the host's LOG_FORMAT=json passes one)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter or logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler])
    if logging.getLogger().level > logging.DEBUG:
        for name, threshold in (quiet or {}).items():
            logging.getLogger(name).setLevel(threshold)
