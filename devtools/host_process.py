"""Run devtools/host.py as a child process (tests and benchmarks), as `make run` does."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from devtools.processes import stop_process

REPO_ROOT = Path(__file__).resolve().parent.parent


class HostProcess:
    """`python -m devtools.host` in a child process, as `make run` starts it."""

    def __init__(self, env: dict[str, str], log_path: Path | None = None) -> None:
        self.log_path = log_path or Path(os.devnull)
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devtools.host", "--port", "0", "--no-timers"],
            cwd=REPO_ROOT,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("host listening on "):
            self.stop()
            tail = "" if log_path is None else log_path.read_text()[-3000:]
            raise RuntimeError(f"host did not start: {line!r}\n{tail}")
        self.base_url = line.split()[-1].removesuffix("/api")

    def kill(self) -> None:
        """Crash it: SIGKILL, no chance to settle or clean up."""
        os.killpg(os.getpgid(self.process.pid), signal.SIGKILL)
        self.process.wait(10)
        self._log.close()

    def stop(self) -> None:
        stop_process(self.process)
        self._log.close()


@contextlib.contextmanager
def run_host(env: dict[str, str], log_path: Path | None = None) -> Iterator[HostProcess]:
    host = HostProcess(env, log_path)
    try:
        yield host
    finally:
        host.stop()
