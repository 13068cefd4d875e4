"""Headless Chromium for tests, behind a recording proxy so any network request is seen."""

from __future__ import annotations

import http.server
import shutil
import socketserver
import subprocess
import threading
from pathlib import Path

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[str] = []

    def _record(self):
        _Recorder.seen.append(f"{self.command} {self.path}")
        self.send_response(502)
        self.end_headers()

    do_GET = do_POST = do_HEAD = do_CONNECT = _record

    def log_message(self, *args):
        pass


def _host(request: str) -> str:
    target = request.split(" ", 1)[1]
    return target.split("://")[-1].split("/")[0].split(":")[0]


_OWN_HOSTS: set[str] | None = None


def chromium_own_hosts(tmp: Path) -> set[str]:
    """Hosts Chromium itself contacts on a blank page (time sync, accounts): not the page's doing."""
    global _OWN_HOSTS
    if _OWN_HOSTS is None:
        blank = tmp / "blank.html"
        blank.write_text("<!DOCTYPE html><html><body>blank</body></html>")
        _OWN_HOSTS = {_host(r) for r in _render(blank, 2000)[1]}
    return _OWN_HOSTS


def render(path: Path, budget_ms: int = 5000) -> tuple[str, list[str]]:
    """Open ``path`` in headless Chromium; return (DOM after scripts ran, requests the PAGE made).

    Requests to hosts that Chromium also contacts on a blank page are its own background
    services and are left out; every other request the proxy saw is returned.
    """
    own = chromium_own_hosts(path.parent)
    dom, seen = _render(path, budget_ms)
    return dom, [r for r in seen if _host(r) not in own and not _host(r).endswith(_CHROMIUM_SERVICE_DOMAINS)]


# Chromium's own background services (time sync, accounts, updates) vary from start to start, so
# a blank page does not always show them all; no page of ours names these domains.
_CHROMIUM_SERVICE_DOMAINS = ("google.com", "googleapis.com", "gvt1.com", "gvt2.com")


def _render(path: Path, budget_ms: int) -> tuple[str, list[str]]:
    _Recorder.seen = []
    with socketserver.TCPServer(("127.0.0.1", 0), _Recorder) as server:
        port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            out = subprocess.run(
                [
                    chromium(),
                    *FLAGS,
                    f"--proxy-server=http://127.0.0.1:{port}",
                    "--proxy-bypass-list=<-loopback>",
                    f"--virtual-time-budget={budget_ms}",
                    "--dump-dom",
                    path.resolve().as_uri(),
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
        finally:
            server.shutdown()
    return out.stdout, list(_Recorder.seen)


def click_and_read(path: Path, ready: str, where: str, read: str, timeout_s: float = 60) -> tuple:
    """Open ``path`` in headless Chromium (driven over the DevTools protocol by choreographer),
    wait until the JavaScript ``ready`` is true, click with the mouse at the page point that
    ``where`` evaluates to (``[x, y]``), and return ``read`` evaluated before and after the click."""
    import asyncio

    import choreographer

    async def evaluate(tab, expression):
        reply = await tab.send_command(
            "Runtime.evaluate", params={"expression": expression, "returnByValue": True, "awaitPromise": True}
        )
        return reply["result"]["result"].get("value")

    async def session():
        async with choreographer.Browser(path=chromium(), headless=True) as browser:
            tab = await browser.create_tab("about:blank")
            await tab.send_command(
                "Emulation.setDeviceMetricsOverride",
                params={"width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": False},
            )
            await tab.send_command("Page.navigate", params={"url": path.resolve().as_uri()})
            for _ in range(int(timeout_s * 10)):
                if await evaluate(tab, f"!!({ready})"):
                    break
                await asyncio.sleep(0.1)
            else:
                raise TimeoutError(f"{path.name}: {ready!r} never became true")
            before = await evaluate(tab, read)
            x, y = await evaluate(tab, where)
            for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
                await tab.send_command(
                    "Input.dispatchMouseEvent",
                    params={"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1},
                )
            await asyncio.sleep(0.5)
            return before, await evaluate(tab, read)

    return asyncio.run(asyncio.wait_for(session(), timeout_s * 2))
