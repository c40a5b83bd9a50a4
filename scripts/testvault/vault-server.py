#!/usr/bin/env python3
"""Loopback HTTP/1.1 server for the test vault, with faults injected at runtime.

Serves the files under --root (GET and HEAD, keep-alive, Range requests) on
127.0.0.1 only, threaded. Faults (a delay per request, chosen status codes,
connections cut after N bytes, a body that never ends, a flipped byte) are
switched on and off while it runs through POST /__control__, and GET /__stats__
reports what was requested and how many body bytes were sent (benchmarks use
it to measure bytes fetched). The exact API is in scripts/testvault/README.md.

Python 3 standard library only. Stop it with SIGTERM or SIGINT (by its PID).
"""

import argparse
import fnmatch
import http.server
import json
import os
import posixpath
import signal
import socket
import socketserver
import sys
import threading
import time
import urllib.parse

CONTROL = "/__control__"
STATS = "/__stats__"
CHUNK = 64 * 1024


class State:
    """Faults and counters shared by every request thread (guarded by one lock)."""

    def __init__(self, delay_ms=0):
        self.lock = threading.Lock()
        self.default_delay_ms = delay_ms
        self.reset_faults()
        self.reset_stats()

    def reset_faults(self):
        self.delay_ms = self.default_delay_ms
        self.range_enabled = True
        self.faults = []

    def reset_stats(self):
        self.requests = 0
        self.connections = 0
        self.bytes_sent = 0
        self.paths = {}

    def config(self):
        return {"delay_ms": self.delay_ms, "range": self.range_enabled, "faults": [dict(f) for f in self.faults]}

    def stats(self):
        return {
            "requests": self.requests,
            "connections": self.connections,
            "bytes_sent": self.bytes_sent,
            "paths": {p: dict(v, statuses=dict(v["statuses"])) for p, v in self.paths.items()},
        }

    def take_fault(self, path):
        """The first live fault whose pattern matches path; consumes one of its `times`."""
        with self.lock:
            for fault in self.faults:
                if not fnmatch.fnmatchcase(path, fault["path"]):
                    continue
                times = fault.get("times")
                if times is not None:
                    if times <= 0:
                        continue
                    fault["times"] = times - 1
                fault["hits"] = fault.get("hits", 0) + 1
                return dict(fault)
        return None

    def count_request(self, path, status):
        with self.lock:
            self.requests += 1
            entry = self.paths.setdefault(path, {"requests": 0, "bytes": 0, "statuses": {}})
            entry["requests"] += 1
            key = str(status)
            entry["statuses"][key] = entry["statuses"].get(key, 0) + 1

    def count_bytes(self, path, n):
        with self.lock:
            self.bytes_sent += n
            self.paths.setdefault(path, {"requests": 0, "bytes": 0, "statuses": {}})["bytes"] += n


FAULT_KINDS = ("status", "cut_after", "endless", "corrupt_at", "delay_ms", "redirect", "throttle_bps")


def validate_fault(fault):
    if not isinstance(fault, dict) or not isinstance(fault.get("path"), str) or not fault["path"].startswith("/"):
        raise ValueError(f"a fault needs \"path\": an absolute URL path or fnmatch pattern, got {fault!r}")
    kinds = [k for k in FAULT_KINDS if k in fault]
    if len(kinds) != 1:
        raise ValueError("a fault needs exactly one of {}, got {!r}".format(", ".join(FAULT_KINDS), fault))
    if "status" in fault and not (isinstance(fault["status"], int) and 100 <= fault["status"] <= 599):
        raise ValueError("\"status\" must be an HTTP status code, got {!r}".format(fault["status"]))
    if "throttle_bps" in fault and not (isinstance(fault["throttle_bps"], int) and fault["throttle_bps"] > 0):
        raise ValueError("\"throttle_bps\" must be a positive integer")
    for key in ("cut_after", "corrupt_at", "delay_ms"):
        if key in fault and not (isinstance(fault[key], int) and fault[key] >= 0):
            raise ValueError(f"{key!r} must be a non-negative integer, got {fault[key]!r}")
    if "redirect" in fault and not (isinstance(fault["redirect"], str) and fault["redirect"]):
        raise ValueError("\"redirect\" must be a URL or path for the Location header")
    if "endless" in fault and fault["endless"] is not True:
        raise ValueError("\"endless\" must be true")
    times = fault.get("times")
    if times is not None and not (isinstance(times, int) and times >= 0):
        raise ValueError(f"\"times\" must be a non-negative integer or null, got {times!r}")
    clean = {k: fault[k] for k in ("path", "times") + FAULT_KINDS if k in fault}
    clean.setdefault("times", None)
    clean["hits"] = 0
    return clean


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "vault-server/1"
    # An idle keep-alive connection is dropped after this many seconds.
    timeout = 60

    def setup(self):
        super().setup()
        with self.server.state.lock:
            self.server.state.connections += 1

    def log_message(self, fmt, *args):
        log = self.server.log
        if log is not None:
            log.write(f"{self.log_date_time_string()} {fmt % args}\n")
            log.flush()

    # --- helpers -----------------------------------------------------------------

    def url_path(self):
        return urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > 1 << 20:
            raise ValueError("control body too large")
        return self.rfile.read(length) if length else b""

    def send_json(self, status, obj):
        body = (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_text(self, status, text, path=None, head=False):
        body = (text + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)
            if path is not None:
                self.server.state.count_bytes(path, len(body))

    def file_for(self, path):
        """The file under root for a URL path, or None (never escapes root)."""
        parts = [p for p in posixpath.normpath(path).split("/") if p not in ("", ".")]
        if any(p == ".." for p in parts):
            return None
        full = os.path.join(self.server.root, *parts)
        return full if os.path.isfile(full) else None

    # --- control and stats -------------------------------------------------------

    def do_POST(self):
        path = self.url_path()
        try:
            body = self.read_body()
        except ValueError as e:
            self.send_json(400, {"error": str(e)})
            return
        state = self.server.state
        if path == STATS:
            with state.lock:
                state.reset_stats()
            self.send_json(200, {"ok": True})
            return
        if path != CONTROL:
            self.send_text(405, "method not allowed")
            return
        try:
            command = json.loads(body.decode() or "{}")
            if not isinstance(command, dict):
                # ValueError, not TypeError: the handler below answers every ValueError with 400.
                raise ValueError("the control body must be a JSON object")  # noqa: TRY004
            unknown = set(command) - {"reset", "reset_stats", "delay_ms", "range", "faults", "add_faults"}
            if unknown:
                raise ValueError("unknown control keys: {}".format(", ".join(sorted(unknown))))
            replace = [validate_fault(f) for f in command["faults"]] if "faults" in command else None
            add = [validate_fault(f) for f in command.get("add_faults", [])]
            if "delay_ms" in command and not (isinstance(command["delay_ms"], int) and command["delay_ms"] >= 0):
                raise ValueError("\"delay_ms\" must be a non-negative integer")
            if "range" in command and not isinstance(command["range"], bool):
                raise ValueError("\"range\" must be true or false")
        except ValueError as e:
            self.send_json(400, {"error": str(e)})
            return
        with state.lock:
            if command.get("reset"):
                state.reset_faults()
            if command.get("reset_stats"):
                state.reset_stats()
            if "delay_ms" in command:
                state.delay_ms = command["delay_ms"]
            if "range" in command:
                state.range_enabled = command["range"]
            if replace is not None:
                state.faults = replace
            state.faults.extend(add)
            config = state.config()
        self.send_json(200, config)

    # --- files -------------------------------------------------------------------

    def do_HEAD(self):
        self.serve(head=True)

    def do_GET(self):
        self.serve(head=False)

    def serve(self, head):
        path = self.url_path()
        state = self.server.state
        if path == CONTROL:
            with state.lock:
                config = state.config()
            self.send_json(200, config)
            return
        if path == STATS:
            with state.lock:
                stats = state.stats()
            self.send_json(200, stats)
            return

        fault = state.take_fault(path)
        with state.lock:
            delay = state.delay_ms
            range_enabled = state.range_enabled
        if fault is not None and "delay_ms" in fault:
            delay += fault["delay_ms"]
        if delay:
            time.sleep(delay / 1000.0)

        if fault is not None and "status" in fault:
            state.count_request(path, fault["status"])
            self.send_text(fault["status"], f"injected fault: {fault['status']} for {path}", path, head)
            return

        if fault is not None and "redirect" in fault:
            state.count_request(path, 302)
            self.send_response(302)
            self.send_header("Location", fault["redirect"])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return

        full = self.file_for(path)
        if full is None:
            state.count_request(path, 404)
            self.send_text(404, f"not found: {path}", path, head)
            return

        if fault is not None and "endless" in fault:
            state.count_request(path, 200)
            self.send_endless(path, head)
            return

        size = os.path.getsize(full)
        start, end, status = 0, size, 200
        wanted = self.headers.get("Range")
        if wanted and range_enabled:
            parsed = parse_range(wanted, size)
            if parsed == "unsatisfiable":
                state.count_request(path, 416)
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if parsed is not None:
                start, end = parsed
                status = 206

        state.count_request(path, status)
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start))
        if range_enabled:
            self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        self.send_header("Last-Modified", self.date_time_string(int(os.path.getmtime(full))))
        self.end_headers()
        if head:
            return

        cut = fault.get("cut_after") if fault is not None else None
        corrupt = fault.get("corrupt_at") if fault is not None else None
        throttle = fault.get("throttle_bps") if fault is not None else None
        chunk_size = max(1, min(CHUNK, throttle // 10)) if throttle else CHUNK
        sent = 0
        with open(full, "rb") as f:
            if cut is None and corrupt is None and throttle is None:
                # The common case: let the kernel copy (sendfile), so the server
                # is not what limits a benchmark.
                offset = start
                while offset < end:
                    n = self.connection.sendfile(f, offset, end - offset)
                    if not n:
                        break
                    self.server.state.count_bytes(path, n)
                    offset += n
                return
            f.seek(start)
            offset = start
            while offset < end:
                if throttle:
                    time.sleep(chunk_size / throttle)
                chunk = f.read(min(chunk_size, end - offset))
                if not chunk:
                    break
                if corrupt is not None and offset <= corrupt < offset + len(chunk):
                    i = corrupt - offset
                    chunk = chunk[:i] + bytes([chunk[i] ^ 0xFF]) + chunk[i + 1:]
                if cut is not None and sent + len(chunk) >= cut:
                    chunk = chunk[: cut - sent]
                    self.write_counted(path, chunk)
                    self.cut_connection()
                    return
                self.write_counted(path, chunk)
                sent += len(chunk)
                offset += len(chunk)

    def write_counted(self, path, data):
        if data:
            self.wfile.write(data)
            self.server.state.count_bytes(path, len(data))

    def cut_connection(self):
        """Drops the connection mid-body (the client sees fewer bytes than Content-Length)."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def send_endless(self, path, head):
        """200 with no Content-Length, then bytes until the client gives up (or 4 GiB)."""
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        if head:
            return
        block = b"\0" * CHUNK
        try:
            for _ in range((4 << 30) // CHUNK):
                self.write_counted(path, block)
        except OSError:
            pass


def parse_range(header, size):
    """(start, end_exclusive) for one `bytes=` range, "unsatisfiable", or None to ignore it."""
    if not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[len("bytes="):].strip().partition("-")
    try:
        if first == "":
            n = int(last)
            if n <= 0:
                return "unsatisfiable"
            return (max(0, size - n), size)
        start = int(first)
        end = int(last) + 1 if last else size
    except ValueError:
        return None
    if start >= size:
        return "unsatisfiable"
    return (start, min(end, size)) if end > start else None


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def write_atomically(path, text):
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv):
    parser = argparse.ArgumentParser(description="Fault-injecting loopback HTTP server for the test vault.")
    parser.add_argument("--root", required=True, help="directory served at /")
    parser.add_argument("--bind", default="127.0.0.1", help="loopback address to listen on (127.0.0.0/8 only)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one")
    parser.add_argument("--port-file", help="write the chosen port here once listening")
    parser.add_argument("--pid-file", help="write this process's PID here")
    parser.add_argument("--delay-ms", type=int, default=0, help="initial (and reset) delay per request")
    parser.add_argument("--log", help="append an access log to this file")
    parser.add_argument("--tls-cert", help="serve https with this PEM certificate (needs --tls-key)")
    parser.add_argument("--tls-key", help="the PEM private key of --tls-cert")
    args = parser.parse_args(argv)

    if not args.bind.startswith("127."):
        parser.error(f"refusing to listen on {args.bind}: loopback (127.0.0.0/8) only")
    if not os.path.isdir(args.root):
        parser.error(f"--root {args.root} is not a directory")

    server = Server((args.bind, args.port), Handler)
    server.root = os.path.abspath(args.root)
    server.state = State(delay_ms=args.delay_ms)
    # Open for the server's whole life (handler threads append to it); closed at exit.
    server.log = open(args.log, "a") if args.log else None  # noqa: SIM115
    if args.tls_cert:
        import ssl
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)

    def stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # A parent may spawn us with signals blocked (Foundation's Process does,
    # from a dispatch thread): without this, SIGTERM would stay pending forever.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])

    if args.pid_file:
        write_atomically(args.pid_file, f"{os.getpid()}\n")
    port = server.server_address[1]
    if args.port_file:
        write_atomically(args.port_file, f"{port}\n")
    scheme = "https" if args.tls_cert else "http"
    print(f"vault-server: serving {server.root} on {scheme}://{args.bind}:{port}/ (pid {os.getpid()})", file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
