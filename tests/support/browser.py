"""A real headless Chromium for the tests of the status page (Debian's ``chromium``).

Started as ``shared/SERVICES.md`` describes: headless, no sandbox (root), no network chatter
beyond loopback, and a fresh empty profile each time. Tests that need it call
:func:`chromium_or_fail`, which skips on a developer's machine without Chromium and fails in CI.
"""

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from typing import Any, Dict, List, Optional

from support.services import service_missing

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def chromium_or_fail() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        service_missing("Chromium (apt-get install chromium)")
    assert path is not None
    return path


def _run(args: List[str], timeout: float = 60) -> str:
    binary = chromium_or_fail()
    with tempfile.TemporaryDirectory(prefix="doge-chromium-") as profile:
        done = subprocess.run(
            [binary, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    if done.returncode != 0:
        raise AssertionError(f"chromium exited with {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


def dump_dom(url: str) -> str:
    """The page's DOM after it loaded, as Chromium serialises it."""
    return _run(["--dump-dom", url])


def screenshot(url: str, path: str, width: int = 1000, height: int = 1200) -> None:
    _run([f"--screenshot={os.path.abspath(path)}", f"--window-size={width},{height}", url])
    if not os.path.getsize(path):
        raise AssertionError(f"chromium wrote an empty screenshot to {path}")


class LiveBrowser:
    """Chromium kept open on one page, watched through its DevTools HTTP endpoint
    (``/json/list`` gives each open page's current title and URL)."""

    def __init__(self, url: str) -> None:
        binary = chromium_or_fail()
        self.profile = tempfile.mkdtemp(prefix="doge-chromium-")
        self.process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-port=0", url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.port = self._devtools_port()

    def _devtools_port(self, timeout: float = 60) -> int:
        marker = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"chromium exited with {self.process.returncode}")
            try:
                with open(marker) as f:
                    first = f.readline().strip()
                if first:
                    return int(first)
            except (FileNotFoundError, ValueError):
                pass
            time.sleep(0.1)
        raise AssertionError("chromium did not open its DevTools port")

    def pages(self) -> List[Dict[str, Any]]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=10) as r:
            return [p for p in json.load(r) if p.get("type") == "page"]

    def title(self) -> Optional[str]:
        pages = self.pages()
        return pages[0].get("title") if pages else None

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> "LiveBrowser":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
