#!/usr/bin/env python3
"""A stand-in for the EC2 instance metadata service (IMDSv2) for tests.

Behaves like the real service where our rc.local and boot-test depend on it:

  PUT /latest/api/token  with X-aws-ec2-metadata-token-ttl-seconds: 1..21600
                         -> 200, a token (and the TTL echoed in that header);
                         missing or bad TTL -> 400; GET/other methods -> 405.
  GET /latest/meta-data/...  with X-aws-ec2-metadata-token: <valid token>
                         -> data; missing, unknown or expired token -> 401.
  /latest/meta-data/public-keys/0/openssh-key -> the --key file, 404 if none.

Fault modes (flags at start, or later through the control listener):
  --refuse-first N    reset (RST) the first N TCP connections without reading them
  --fail-first N      answer 503 to the first N requests (token PUTs included)
  --delay S           sleep S seconds before every answer
  --max-ttl S         cap every token's lifetime at S seconds
  --expire-tokens N   the first N tokens issued are already expired when used
                      (a token "expires between PUT and GET": 401, then a new PUT works)

Every connection and request is recorded in the JSON log (--log FILE, a JSON
array rewritten atomically after each event) with the method, the path,
whether a token was sent and whether it was valid, and the status answered,
so tests can assert, for example, that no tokenless GET was made.

--port 0 picks a free port; --port-file F publishes it (written atomically
once listening). Listens on 127.0.0.1 unless --bind says otherwise (e.g.
--bind 169.254.169.254 --port 80 inside a network namespace a test created).

Control listener (optional, --control-port/--control-port-file, always on
127.0.0.1 of the stub's own network namespace, never reachable by a guest):
  POST /control   JSON body with any of refuse_first, fail_first, delay,
                  max_ttl, expire_tokens, key (string or null): replaces those settings
  GET  /log       the request log as JSON
  POST /reset-log empties the log

Python 3 standard library only. Stops cleanly on SIGTERM/SIGINT.
"""

import argparse
import json
import os
import secrets
import signal
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN_PATH = "/latest/api/token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"


class State:
    """Settings, counters, tokens and the log, shared by all handler threads."""

    def __init__(self, args):
        self.lock = threading.Lock()
        self.refuse_first = args.refuse_first
        self.fail_first = args.fail_first
        self.delay = args.delay
        self.max_ttl = args.max_ttl
        self.expire_tokens = args.expire_tokens
        self.key = None
        if args.key:
            with open(args.key, "r", encoding="utf-8") as f:
                self.key = f.read()
        self.instance_id = args.instance_id
        self.tokens = {}  # token -> expiry (monotonic seconds)
        self.log_path = args.log
        self.events = []
        self.connections = 0
        self.requests = 0
        self.write_log()

    def record(self, event):
        with self.lock:
            event["time"] = round(time.time(), 3)
            self.events.append(event)
            self.write_log_locked()

    def write_log(self):
        with self.lock:
            self.write_log_locked()

    def write_log_locked(self):
        if not self.log_path:
            return
        tmp = self.log_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.events, f, indent=1)
        os.replace(tmp, self.log_path)

    def issue_token(self, ttl):
        token = secrets.token_urlsafe(42)
        with self.lock:
            life = ttl if self.max_ttl is None else min(ttl, self.max_ttl)
            if self.expire_tokens > 0:
                self.expire_tokens -= 1
                life = -1
            self.tokens[token] = time.monotonic() + life
        return token

    def token_valid(self, token):
        with self.lock:
            expiry = self.tokens.get(token)
            return expiry is not None and time.monotonic() < expiry

    def take(self, name):
        """Decrements counter `name` if positive; True when a fault should fire."""
        with self.lock:
            value = getattr(self, name)
            if value > 0:
                setattr(self, name, value - 1)
                return True
            return False

    def metadata(self, path):
        """The body for a metadata path, or None (404)."""
        base = {
            "/latest/meta-data/instance-id": self.instance_id,
            "/latest/meta-data/ami-id": "ami-0123456789abcdef0",
            "/latest/meta-data/instance-type": "t3.micro",
            "/latest/meta-data/hostname": "ip-10-0-0-10.ec2.internal",
            "/latest/meta-data/local-hostname": "ip-10-0-0-10.ec2.internal",
            "/latest/meta-data/local-ipv4": "10.0.0.10",
            "/latest/meta-data/placement/availability-zone": "us-east-1a",
            "/latest/meta-data/placement/region": "us-east-1",
        }
        with self.lock:
            key = self.key
        if key is not None:
            base["/latest/meta-data/public-keys/"] = "0=test-key"
            base["/latest/meta-data/public-keys/0/"] = "openssh-key"
            base["/latest/meta-data/public-keys/0/openssh-key"] = key
        listing = ["ami-id", "hostname", "instance-id", "instance-type", "local-hostname",
                   "local-ipv4", "placement/"] + (["public-keys/"] if key is not None else [])
        base["/latest/meta-data/"] = "\n".join(listing)
        base["/latest/meta-data"] = base["/latest/meta-data/"]
        base["/latest/meta-data/placement/"] = "availability-zone\nregion"
        base["/latest/"] = "api/\nmeta-data/\ndynamic/"
        return base.get(path)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler, state):
        self.state = state
        super().__init__(address, handler)

    def verify_request(self, request, client_address):
        state = self.state
        with state.lock:
            state.connections += 1
        if state.take("refuse_first"):
            # RST instead of FIN: the client sees "connection reset", as close to a refusal as a listening socket gets.
            try:
                request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                request.close()  # before socketserver's shutdown(SHUT_WR), which would send a FIN first
            except OSError:
                pass
            state.record({"event": "refused", "client": client_address[0]})
            return False
        return True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    server_version = "EC2ws"
    sys_version = ""

    def log_message(self, fmt, *args):  # quiet: the JSON log is the record
        pass

    def answer(self, status, body=b"", headers=None):
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        state = self.server.state
        with state.lock:
            state.requests += 1
            delay = state.delay
        path = self.path.split("?", 1)[0]
        token = self.headers.get(TOKEN_HEADER)
        event = {"event": "request", "method": self.command, "path": path,
                 "token": token is not None, "token_valid": bool(token) and state.token_valid(token),
                 "ttl": self.headers.get(TTL_HEADER), "client": self.client_address[0]}
        # Drain a request body so the client is not reset while sending it.
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if delay:
            time.sleep(delay)
        status, body, headers = self.route(state, path, token, event)
        event["status"] = status
        state.record(event)
        self.answer(status, body, headers)

    def route(self, state, path, token, event):
        if state.take("fail_first"):
            return 503, "Service Unavailable", {}
        if path == TOKEN_PATH:
            if self.command != "PUT":
                return 405, "Method Not Allowed", {"Allow": "PUT"}
            if self.headers.get("X-Forwarded-For") is not None:
                return 403, "Forbidden", {}
            ttl = self.headers.get(TTL_HEADER)
            try:
                seconds = int(ttl) if ttl is not None and ttl.strip().isdigit() else None
            except ValueError:
                seconds = None
            if seconds is None or not 1 <= seconds <= 21600:
                return 400, "Bad Request", {}
            new = state.issue_token(seconds)
            return 200, new, {TTL_HEADER: str(seconds)}
        if self.command not in ("GET", "HEAD"):
            return 405, "Method Not Allowed", {"Allow": "GET, HEAD"}
        if not event["token_valid"]:
            return 401, "Unauthorized", {}
        body = state.metadata(path)
        if body is None:
            return 404, "Not Found", {}
        return 200, body, {}

    do_GET = handle_any
    do_HEAD = handle_any
    do_PUT = handle_any
    do_POST = handle_any
    do_DELETE = handle_any


class ControlHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, obj):
        body = json.dumps(obj).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        state = self.server.state
        if self.path == "/log":
            with state.lock:
                events = list(state.events)
            return self.reply(200, events)
        return self.reply(404, {"error": "unknown path"})

    def do_POST(self):
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        if self.path == "/reset-log":
            with state.lock:
                state.events = []
                state.write_log_locked()
            return self.reply(200, {"ok": True})
        if self.path != "/control":
            return self.reply(404, {"error": "unknown path"})
        try:
            settings = json.loads(raw or b"{}")
        except ValueError as e:
            return self.reply(400, {"error": str(e)})
        allowed = {"refuse_first", "fail_first", "delay", "max_ttl", "expire_tokens", "key"}
        unknown = set(settings) - allowed
        if unknown:
            return self.reply(400, {"error": "unknown settings: " + ", ".join(sorted(unknown))})
        with state.lock:
            for name, value in settings.items():
                setattr(state, name, value)
        return self.reply(200, {"ok": True})


class ControlServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, state):
        self.state = state
        super().__init__(address, ControlHandler)


def publish(path, port):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("%d\n" % port)
    os.replace(tmp, path)


def main(argv):
    p = argparse.ArgumentParser(description="IMDSv2 stand-in for tests")
    p.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default)")
    p.add_argument("--port-file", help="write the chosen port here once listening")
    p.add_argument("--key", help="file holding the public key served as public-keys/0/openssh-key")
    p.add_argument("--instance-id", default="i-0123456789abcdef0")
    p.add_argument("--log", help="JSON request log, rewritten after each event")
    p.add_argument("--refuse-first", type=int, default=0, metavar="N")
    p.add_argument("--fail-first", type=int, default=0, metavar="N")
    p.add_argument("--delay", type=float, default=0.0, metavar="S")
    p.add_argument("--max-ttl", type=int, default=None, metavar="S")
    p.add_argument("--expire-tokens", type=int, default=0, metavar="N")
    p.add_argument("--control-port", type=int, default=None, help="enable the control listener on 127.0.0.1")
    p.add_argument("--control-port-file")
    args = p.parse_args(argv)

    state = State(args)
    server = Server((args.bind, args.port), Handler, state)
    servers = [server]
    if args.control_port is not None or args.control_port_file:
        control = ControlServer(("127.0.0.1", args.control_port or 0), state)
        servers.append(control)
        threading.Thread(target=control.serve_forever, daemon=True).start()
        if args.control_port_file:
            publish(args.control_port_file, control.server_address[1])

    def stop(signum, frame):
        # shutdown() waits for serve_forever, so call it from another thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # A parent spawning from a worker thread may hand us SIGTERM blocked (seen
    # with Foundation's Process under swift-testing): unblock, or we cannot be stopped.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
    if args.port_file:
        publish(args.port_file, server.server_address[1])
    sys.stderr.write("imds-stub: listening on %s:%d\n" % (args.bind, server.server_address[1]))
    sys.stderr.flush()
    server.serve_forever(poll_interval=0.2)
    for s in servers:
        s.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
