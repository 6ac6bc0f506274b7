"""What the fake platform servers share: a threaded HTTP server on loopback
that hands every request to the fake's ``handle`` and writes its JSON answer."""
from __future__ import annotations

import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple


class FakeServer:
    """Base class: subclasses set ``name`` and implement ``handle``."""

    name = "fake"
    host: str
    port: int

    _server: Optional[ThreadingHTTPServer] = None
    _thread: Optional[threading.Thread] = None

    def __init__(self) -> None:
        # Requests arrive on server threads while tests and the demo read what was recorded.
        self._lock = threading.RLock()
        self._posted: List[Dict[str, Any]] = []
        self._requests: List[Dict[str, Any]] = []

    def reset(self) -> None:
        """Forget what was recorded; subclasses also forget their injected failures and limits."""
        with self._lock:
            self._posted.clear()
            self._requests.clear()

    @property
    def posted(self) -> List[Dict[str, Any]]:
        """Replies and messages sent through the API, oldest first."""
        with self._lock:
            return [dict(item) for item in self._posted]

    @property
    def requests(self) -> List[Dict[str, Any]]:
        with self._lock:
            return [dict(item) for item in self._requests]

    def handle(self, method: str, raw_path: str, headers: Any, body: bytes) -> Tuple[int, Dict[str, str], Any]:
        raise NotImplementedError

    def encode(self, path: str, payload: Any) -> bytes:
        """How the platform serializes JSON (Graph escapes more than X does)."""
        return json.dumps(payload, ensure_ascii=False).encode("utf-8")

    def start(self):
        server = ThreadingHTTPServer((self.host, self.port), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        self.port = server.server_address[1]
        # A short poll interval keeps stop() fast for tests that start a fake each.
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fake: FakeServer = self.server.fake  # type: ignore[attr-defined]
        status, headers, payload = fake.handle(self.command, self.path, self.headers, body)
        data = fake.encode(self.path, payload)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests and the demo print what matters themselves


class FakeControl:
    """Drives a fake running in another process through its /_fake endpoints."""

    def __init__(self, url: str, timeout: float = 5.0):
        self.url = url.rstrip("/")
        self.timeout = timeout

    @property
    def posted(self) -> List[Dict[str, Any]]:
        return self._call("GET", "/_fake/posted")["posted"]

    @property
    def requests(self) -> List[Dict[str, Any]]:
        return self._call("GET", "/_fake/requests")["requests"]

    def state(self) -> Dict[str, Any]:
        return self._call("GET", "/_fake/state")

    def _call(self, method: str, path: str, payload: Optional[Dict[str, Any]] = None) -> Any:
        data = json.dumps(payload).encode("utf-8") if payload is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return json.loads(response.read().decode("utf-8"))
