"""Start a demo server as a user would (a real process on a free port) and stop it afterwards."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(
    command: list[str], port: int, env: dict, log_path: Path, cwd: Path | None = None, timeout_s: float = 180
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Run `command` (which listens on `port`) until the block ends; yields (url, process)."""
    url = f"http://127.0.0.1:{port}/"
    # The tab tests drive the Point tab's server path; test_browser_decode turns the browser's on.
    env = {"SAM3_BROWSER_DECODE": "0", **env}
    with open(log_path, "w") as log:
        proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + timeout_s
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"the demo server exited: {log_path.read_text()[-3000:]}")
                try:
                    urllib.request.urlopen(url, timeout=2)
                    break
                except OSError:
                    if time.time() > deadline:
                        raise RuntimeError(f"the demo server did not start in {timeout_s:.0f} s") from None
                    time.sleep(0.5)
            yield url, proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
