#!/usr/bin/env python3
"""recorder.py: an HTTP(S) server for tests that records every request it gets.

    recorder.py --log FILE --portfile FILE [--rules FILE] [--tls-cert C --tls-key K]

Binds 127.0.0.1 on a free port, writes the port number to --portfile once it
listens (atomically: the file appears complete), and appends one JSON line per
request to --log, flushed per line:

    {"seq": 1, "method": "POST", "path": "/a%2Fb?x=1", "headers": {...},
     "body": "...", "inflight": 1, "time": 1700000000.123}

"path" is the request target exactly as received. "headers" keeps the
original case; a repeated header is joined with ", ". "body" is text, or
base64 with "body_b64": true when it is not UTF-8. "inflight" counts the
requests being handled when this one arrived, itself included. A line is
written as soon as the request is read, before any delay and before the
answer, so a client that got an answer always finds its line in the log.

The answer is 200 {"ok":true} unless a rule matches. --rules is a JSON list:

    [{"match": "regex searched in the raw path", "method": "POST",
      "status": 500, "body": "...", "times": 2, "delay_ms": 300,
      "content_type": "text/plain"}]

"method", "times" (only the first K matching requests), "delay_ms" (sleep
before answering), "body" (default "") and "content_type" (default
application/json) are optional. The first matching rule wins. "headers" (an
object) adds response headers (for example {"Retry-After": "2"}), and
"reset": true closes the connection without any answer.

The rules file is read again when it is replaced (renamed over: see
ob_test_recorder_set_rules), so a test can change the answers of a running
server; the "times" counts then start over.

A rule with "echo_header" plays a server that echoes a request header back
(to test that a client scrubs secrets from what it reports). Its "body" is
then a template in which

    {echo}     is the header's value, encoded as "echo_encode" says,
    {echo:K}   is the first K characters of that (a cut-off echo),
    {pad:N}    is N filler characters ("abc...z" repeated),

with the optional "echo_strip" prefix (e.g. "Bearer ") removed from the
value first. "echo_encode" is one of "raw" (default), "json" (a JSON string's
contents with "/" escaped as "\/"), "base64", "base64url" (no padding) or
"percent" (everything but A-Z a-z 0-9 - . _ ~ as %XX). A missing header
echoes as "".

Stops cleanly on SIGTERM or SIGINT. Python 3 standard library only.
"""

import argparse
import base64
import json
import os
import re
import signal
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def load_rules(path):
    with open(path, encoding="utf-8") as f:
        rules = json.load(f)
    if not isinstance(rules, list):
        sys.exit("recorder: the rules file must hold a JSON list")
    for r in rules:
        re.compile(r.get("match", ""))
        if r.get("echo_header"):
            encode_echo("", r.get("echo_encode"))
    return rules


def stamp(path):
    st = os.stat(path)
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class Recorder:
    def __init__(self, log_path, rules, rules_path=None):
        self.lock = threading.Lock()
        self.log = open(log_path, "a", encoding="utf-8")
        self.rules = rules
        self.matched = [0] * len(rules)
        self.seq = 0
        self.inflight = 0
        self.rules_path = rules_path
        self.rules_stamp = stamp(rules_path) if rules_path else None

    def reload(self):
        """Takes the rules file again when it was replaced (a test changes
        what the server answers); the "times" counts start over."""
        if not self.rules_path:
            return
        try:
            now = stamp(self.rules_path)
        except OSError:
            return
        if now != self.rules_stamp:
            self.rules = load_rules(self.rules_path)
            self.matched = [0] * len(self.rules)
            self.rules_stamp = now

    def arrive(self):
        with self.lock:
            self.inflight += 1
            self.seq += 1
            return self.seq, self.inflight

    def leave(self):
        with self.lock:
            self.inflight -= 1

    def record(self, entry):
        line = json.dumps(entry, ensure_ascii=True, sort_keys=True)
        with self.lock:
            self.log.write(line + "\n")
            self.log.flush()

    def rule_for(self, method, path):
        with self.lock:
            self.reload()
            for i, rule in enumerate(self.rules):
                m = rule.get("method")
                if m is not None and m.upper() != method:
                    continue
                if not re.search(rule.get("match", ""), path):
                    continue
                times = rule.get("times")
                if times is not None and self.matched[i] >= times:
                    continue
                self.matched[i] += 1
                return rule
        return None


def encode_echo(value, how):
    if how in (None, "raw"):
        return value
    if how == "json":
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("/", "\\/")
    if how == "base64":
        return base64.b64encode(value.encode("utf-8")).decode("ascii")
    if how == "base64url":
        return base64.urlsafe_b64encode(value.encode("utf-8")).decode("ascii").rstrip("=")
    if how == "percent":
        safe = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
        return "".join(c if c in safe else "".join("%%%02X" % b for b in c.encode("utf-8")) for c in value)
    raise ValueError(f"unknown echo_encode {how!r}")


ECHO_FIELD = re.compile(r"\{(echo|pad)(?::(\d+))?\}")


def echo_body(rule, headers):
    """The body of an echo_header rule for a request with these headers."""
    value = headers.get(rule["echo_header"], "")
    strip = rule.get("echo_strip", "")
    if strip and value.startswith(strip):
        value = value[len(strip):]
    echo = encode_echo(value, rule.get("echo_encode"))

    def field(m):
        if m.group(1) == "echo":
            return echo if m.group(2) is None else echo[:int(m.group(2))]
        n = int(m.group(2) or 0)
        return "".join(chr(ord("a") + i % 26) for i in range(n))

    return ECHO_FIELD.sub(field, str(rule.get("body", "")))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The headers and the body leave in two writes: with Nagle's algorithm
    # the body waits for the client's delayed ACK, 40 ms per request on a
    # kept-alive connection, which no real server (nginx writes both at
    # once) costs.
    disable_nagle_algorithm = True
    server_version = "offboard-recorder"
    sys_version = ""
    timeout = 30  # idle keep-alive connections are closed after this

    def setup(self):
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            # The handshake runs here, in the connection's thread, so a
            # client that never completes it cannot block accept().
            self.connection.do_handshake()

    def log_message(self, format, *args):  # noqa: A002 (quiet)
        pass

    def _read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            chunks = []
            while True:
                size_line = self.rfile.readline(65537)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self):
        rec = self.server.recorder
        seq, inflight = rec.arrive()
        try:
            body = self._read_body()
            words = self.requestline.split()
            path = words[1] if len(words) >= 2 else self.path
            headers = {}
            for name, value in self.headers.items():
                headers[name] = headers[name] + ", " + value if name in headers else value
            entry = {
                "seq": seq,
                "method": self.command,
                "path": path,
                "headers": headers,
                "inflight": inflight,
                "time": time.time(),
            }
            try:
                entry["body"] = body.decode("utf-8")
            except UnicodeDecodeError:
                entry["body"] = base64.b64encode(body).decode("ascii")
                entry["body_b64"] = True
            rec.record(entry)

            rule = rec.rule_for(self.command, path)
            status, payload, ctype = 200, b'{"ok":true}', "application/json"
            if rule is not None:
                delay = rule.get("delay_ms")
                if delay:
                    time.sleep(delay / 1000.0)
                if rule.get("reset"):
                    self.close_connection = True
                    try:
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                                   b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    except OSError:
                        pass
                    self.connection.close()
                    return
                status = int(rule.get("status", 200))
                if rule.get("echo_header"):
                    payload = echo_body(rule, self.headers).encode("utf-8")
                else:
                    payload = str(rule.get("body", "")).encode("utf-8")
                ctype = rule.get("content_type", "application/json")
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (rule or {}).get("headers", {}).items():
                self.send_header(name, str(value))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout):
            self.close_connection = True
        finally:
            rec.leave()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # A client that gives up (timeout tests, refused certificates) is
        # expected: one line on stderr, no traceback.
        exc = sys.exc_info()[1]
        print(f"recorder: {client_address[0]}:{client_address[1]}: {type(exc).__name__}: {exc}",
              file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description="records HTTP requests as JSON lines")
    ap.add_argument("--log", required=True)
    ap.add_argument("--portfile", required=True)
    ap.add_argument("--rules")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    args = ap.parse_args()

    rules = load_rules(args.rules) if args.rules else []

    server = Server(("127.0.0.1", 0), Handler)
    server.recorder = Recorder(args.log, rules, args.rules)
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True,
                                        do_handshake_on_connect=False)

    def stop(signo, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    port = server.server_address[1]
    tmp = args.portfile + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(f"{port}\n")
    os.rename(tmp, args.portfile)

    try:
        server.serve_forever(poll_interval=0.2)
    except SystemExit:
        pass
    finally:
        server.server_close()
        server.recorder.log.close()


if __name__ == "__main__":
    main()
