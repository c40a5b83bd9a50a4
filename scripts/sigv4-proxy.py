#!/usr/bin/env python3
"""A checking proxy in front of moto_server for the register tests.

    SIGV4_PROXY_SECRET=... scripts/sigv4-proxy.py --upstream http://127.0.0.1:PORT
        [--port-file F] [--log F] [--fail-block N] [--throttle-first N]
        [--fail-first N] [--reset-first N]

Listens on 127.0.0.1 only (HTTP/1.1, keep-alive). Every request's SigV4
signature is recomputed with botocore's own SigV4Auth, from the request's own
X-Amz-Date, SignedHeaders and credential scope and the test's known secret
(SIGV4_PROXY_SECRET, from the environment: a secret on this command line would
be in /proc/PID/cmdline). A mismatch is answered 403 (SignatureDoesNotMatch)
and not forwarded; a match is forwarded to --upstream and its answer returned.
Why: moto_server's own signature check is unusable (it rejects even the aws
CLI's CompleteSnapshot), and the tool signs PutSnapshotBlock itself.

--log appends one JSON object a request: method, path, status, signature
(ok / mismatch / missing), and for PutSnapshotBlock the block index, the
x-amz-Checksum, -Checksum-Algorithm and -Data-Length headers, the body's
length and whether the body's SHA-256 equals the checksum.

Faults, for PutSnapshotBlock only (counted over all blocks, after the check):
--fail-block N answers 500 InternalServerException for block N, every time;
--throttle-first N answers the first N with 400 ThrottlingException;
--fail-first N answers the first N with 503; --reset-first N closes the
connection of the first N without an answer (a TCP reset).
"""
import argparse
import base64
import hashlib
import http.client
import http.server
import json
import os
import re
import signal
import socket
import struct
import sys
import threading
import urllib.parse

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, ?"
                  r"SignedHeaders=([^, ]+), ?Signature=([0-9a-f]+)")
BLOCK = re.compile(r"^/snapshots/([^/]+)/blocks/(\d+)$")
HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer", "expect"}


def check_signature(method, path, headers, body, secret):
    """'ok', 'missing' or 'mismatch: ...': botocore's signature of this request against its own."""
    auth = headers.get("Authorization")
    if not auth:
        return "missing"
    m = AUTH.match(auth)
    if not m:
        return "mismatch: unparsable Authorization"
    access_key, _date, region, service, signed, signature = m.groups()
    names = signed.split(";")
    signed_headers = {}
    for name in names:
        values = headers.get_all(name) or []
        if not values:
            return f"mismatch: signed header {name} not sent"
        signed_headers[name] = ",".join(values)
    host = headers.get("Host", "")
    request = AWSRequest(method=method, url=f"http://{host}{path}", headers=signed_headers, data=body)
    request.context["timestamp"] = headers.get("X-Amz-Date", "")
    token = headers.get("X-Amz-Security-Token")
    signer = SigV4Auth(Credentials(access_key, secret, token), service, region)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    return "ok" if expected == signature else f"mismatch: botocore computes {expected}"


class Faults:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.fail_block = args.fail_block
        self.throttle = args.throttle_first
        self.fail = args.fail_first
        self.reset = args.reset_first

    def take(self, index):
        """What to do with PutSnapshotBlock of block `index`: None (forward), 'reset' or (status, code)."""
        with self.lock:
            if self.fail_block is not None and index == self.fail_block:
                return (500, "InternalServerException")
            if self.reset > 0:
                self.reset -= 1
                return "reset"
            if self.throttle > 0:
                self.throttle -= 1
                return (400, "ThrottlingException")
            if self.fail > 0:
                self.fail -= 1
                return (503, "ServiceUnavailable")
        return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sigv4-proxy"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.handle_any()

    def do_PUT(self):
        self.handle_any()

    def do_POST(self):
        self.handle_any()

    def do_DELETE(self):
        self.handle_any()

    def do_HEAD(self):
        self.handle_any()

    def record(self, entry):
        if self.server.log_path:
            with self.server.log_lock, open(self.server.log_path, "a") as f:
                f.write(json.dumps(entry, sort_keys=True) + "\n")

    def answer(self, status, headers, body):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def refuse(self, path):
        """403 SignatureDoesNotMatch in the protocol of the call: rest-json for EBS, EC2's query XML otherwise."""
        message = "The request signature we calculated does not match the signature you provided (checked by scripts/sigv4-proxy.py)"
        if path.startswith("/snapshots"):
            body = json.dumps({"message": message}).encode()
            self.answer(403, [("x-amzn-ErrorType", "SignatureDoesNotMatch"), ("Content-Type", "application/json")], body)
        else:
            body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>SignatureDoesNotMatch</Code>"
                    f"<Message>{message}</Message></Error></Errors><RequestID>sigv4-proxy</RequestID></Response>").encode()
            self.answer(403, [("Content-Type", "text/xml")], body)

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path
        verdict = check_signature(self.command, path, self.headers, body, self.server.secret)
        entry = {"method": self.command, "path": urllib.parse.urlsplit(path).path, "signature": verdict.split(":")[0]}
        block = BLOCK.match(urllib.parse.urlsplit(path).path) if self.command == "PUT" else None
        if block:
            checksum = self.headers.get("x-amz-Checksum", "")
            entry.update({"block": int(block.group(2)), "snapshot": block.group(1), "checksum": checksum,
                          "algorithm": self.headers.get("x-amz-Checksum-Algorithm"),
                          "data_length": self.headers.get("x-amz-Data-Length"), "body_length": len(body),
                          "checksum_ok": base64.b64encode(hashlib.sha256(body).digest()).decode() == checksum})
        if verdict != "ok":
            entry["status"] = 403
            entry["detail"] = verdict
            self.record(entry)
            self.refuse(urllib.parse.urlsplit(path).path)
            return
        fault = self.server.faults.take(int(block.group(2))) if block else None
        if fault == "reset":
            entry["status"] = "reset"
            self.record(entry)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return
        if fault:
            status, code = fault
            entry["status"] = status
            entry["injected"] = code
            self.record(entry)
            message = json.dumps({"message": f"{code} injected by scripts/sigv4-proxy.py"}).encode()
            self.answer(status, [("x-amzn-ErrorType", code), ("Content-Type", "application/json")], message)
            return
        upstream = http.client.HTTPConnection(self.server.upstream_host, self.server.upstream_port, timeout=120)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
            upstream.request(self.command, path, body=body, headers=headers)
            response = upstream.getresponse()
            data = response.read()
            out = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP and k.lower() != "content-length"]
        finally:
            upstream.close()
        entry["status"] = response.status
        self.record(entry)
        self.answer(response.status, out, data)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file")
    parser.add_argument("--log")
    parser.add_argument("--fail-block", type=int)
    parser.add_argument("--throttle-first", type=int, default=0)
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--reset-first", type=int, default=0)
    args = parser.parse_args()
    # A parent spawning from a worker thread may hand us TERM, INT and HUP blocked: unblock them, or we cannot be stopped.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
    secret = os.environ.get("SIGV4_PROXY_SECRET")
    if not secret:
        sys.exit("sigv4-proxy: set SIGV4_PROXY_SECRET to the secret key the clients sign with")
    upstream = urllib.parse.urlsplit(args.upstream)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.secret = secret
    server.upstream_host = upstream.hostname
    server.upstream_port = upstream.port or 80
    server.log_path = args.log
    server.log_lock = threading.Lock()
    server.faults = Faults(args)
    port = server.server_address[1]
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(f"{port}\n")
        os.rename(args.port_file + ".tmp", args.port_file)
    print(f"sigv4-proxy: listening on 127.0.0.1:{port}, forwarding to {args.upstream}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
