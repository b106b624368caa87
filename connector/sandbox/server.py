"""A real HTTP server on loopback, for the tests and the sandbox: routes are registered, requests recorded.

Vendor fakes are built from this: each module installs its routes on a FakeServer, e.g.
``install_auth_routes(server)``; state lives in ``server.state`` so several modules can share it.
``port=0`` picks a free port (tests); the sandbox passes fixed ones. ``after_change``, when set, is called
after every answered request that is not a GET (the sandbox saves its state there).
"""

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, parse_qsl, urlsplit

# Where fakes listen unless told: loopback. The multi-host run (tests/bench/hosts.py) serves them on an address of
# its vendor host's own.
BIND_HOST = "127.0.0.1"


@dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes
    match: dict = field(default_factory=dict)
    client: str = ""  # the sender's address

    def json(self):
        return json.loads(self.body or b"null")

    def form(self):
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))

    def arg(self, name, default=None):
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class Response:
    status: int = 200
    body: object = None  # dict/list → JSON, str → text/html, bytes as is
    headers: dict = field(default_factory=dict)


class FakeServer:
    def __init__(self, name="fake", port=0):
        self.name = name
        self.routes = []
        self.requests = []
        self.state = {}
        self.lock = threading.RLock()
        self.after_change = None
        self.keep_requests = True  # the sandbox runs for days: it does not record requests
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Answer a reused connection at once: no Nagle delay, headers and body in one write
            # (a buffered wfile, flushed by the base class after each request).
            disable_nagle_algorithm = True
            wbufsize = 64 * 1024

            def log_message(self, *args):  # keep test output quiet
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                    client=self.client_address[0],
                )
                response = outer.dispatch(request)
                if outer.after_change and request.method != "GET":
                    outer.after_change()
                payload = response.body
                headers = dict(response.headers)
                if isinstance(payload, (dict, list)):
                    payload = json.dumps(payload).encode()
                    headers.setdefault("Content-Type", "application/json")
                elif isinstance(payload, str):
                    payload = payload.encode()
                    headers.setdefault("Content-Type", "text/html; charset=utf-8")
                elif payload is None:
                    payload = b""
                self.send_response(response.status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        self.httpd = ThreadingHTTPServer((BIND_HOST, port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name=name, daemon=True)
        self.thread.start()

    @property
    def url(self):
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, method, pattern, first=False):
        """Register a handler for METHOD and a path regex (named groups land in request.match).

        The first matching route answers; `first=True` puts this one before those already installed."""

        def decorator(func):
            entry = (method.upper(), re.compile(pattern + r"\Z"), func)
            self.routes.insert(0 if first else len(self.routes), entry)
            return func

        return decorator

    def dispatch(self, request):
        for method, regex, func in self.routes:
            found = regex.match(request.path)
            if method == request.method and found:
                request.match = found.groupdict()
                self.record(request)
                result = func(request)
                return result if isinstance(result, Response) else Response(body=result)
        self.record(request)
        return Response(404, {"error": f"{self.name}: no route for {request.method} {request.path}"})

    def record(self, request):
        if self.keep_requests:
            with self.lock:
                self.requests.append(request)

    def calls(self, method=None, path_regex=None):
        """Recorded requests, filtered by method and path regex."""
        with self.lock:
            found = list(self.requests)
        return [
            r
            for r in found
            if (method is None or r.method == method)
            and (path_regex is None or re.search(path_regex, r.path))
        ]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
