#!/usr/bin/env python3
"""fake_ldap.py: an LDAP server that lacks what offboard needs, for fault tests.

Speaks real LDAPv3 (BER over TCP on 127.0.0.1) but only as much as a client
needs to meet the fault:

  --mode starttls-refused   answers StartTLS with unavailable (52), as a
                            server without a certificate does
  --mode no-paging          takes any simple or anonymous bind and lists, in
                            its root DSE, the assertion control but not the
                            paged results control

Every search other than the root DSE's ends with success and no entries.
Prints "PORT <n>" on stdout once it listens; exits when stdin closes (the
test that started it is gone) or after --lifetime seconds.
"""
import argparse
import os
import select
import socket
import sys
import threading
import time

STARTTLS_OID = b"1.3.6.1.4.1.1466.20037"
ASSERTION_OID = b"1.3.6.1.1.12"


def tlv(tag, body):
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    ln = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(ln)]) + ln + body


def integer(tag, v):
    return tlv(tag, v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big", signed=True))


def result(app_tag, msgid, code, diag=b""):
    body = integer(0x0A, code) + tlv(0x04, b"") + tlv(0x04, diag)
    return tlv(0x30, integer(0x02, msgid) + tlv(app_tag, body))


def read_tlv(buf, i):
    """(tag, content, next index) of the element at buf[i], or None if short."""
    if i + 2 > len(buf):
        return None
    tag = buf[i]
    n = buf[i + 1]
    j = i + 2
    if n & 0x80:
        k = n & 0x7F
        if j + k > len(buf):
            return None
        n = int.from_bytes(buf[j:j + k], "big")
        j += k
    if j + n > len(buf):
        return None
    return tag, buf[j:j + n], j + n


def serve(conn, mode):
    buf = b""
    while True:
        data = conn.recv(65536)
        if not data:
            return
        buf += data
        while True:
            el = read_tlv(buf, 0)
            if el is None:
                break
            _, msg, used = el
            buf = buf[used:]
            mid_el = read_tlv(msg, 0)
            op = read_tlv(msg, mid_el[2])
            msgid = int.from_bytes(mid_el[1], "big", signed=True)
            tag, body = op[0], op[1]
            if tag == 0x60:  # BindRequest
                conn.sendall(result(0x61, msgid, 0))
            elif tag == 0x77:  # ExtendedRequest
                name = read_tlv(body, 0)[1]
                if name == STARTTLS_OID and mode == "starttls-refused":
                    conn.sendall(result(0x78, msgid, 52, b"TLS is not configured on this server"))
                else:
                    conn.sendall(result(0x78, msgid, 2, b"unsupported extended operation"))
            elif tag == 0x63:  # SearchRequest
                base = read_tlv(body, 0)[1]
                if base == b"":
                    attrs = tlv(0x30, tlv(0x04, b"supportedControl") + tlv(0x31, tlv(0x04, ASSERTION_OID)))
                    attrs += tlv(0x30, tlv(0x04, b"vendorName") + tlv(0x31, tlv(0x04, b"fake_ldap.py")))
                    entry = tlv(0x64, tlv(0x04, b"") + tlv(0x30, attrs))
                    conn.sendall(tlv(0x30, integer(0x02, msgid) + entry))
                conn.sendall(result(0x65, msgid, 0))
            elif tag == 0x42:  # UnbindRequest
                return
            # AbandonRequest and anything else: no answer


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", required=True, choices=["starttls-refused", "no-paging"])
    ap.add_argument("--lifetime", type=float, default=120)
    args = ap.parse_args()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    print("PORT %d" % s.getsockname()[1], flush=True)
    end = time.monotonic() + args.lifetime
    while time.monotonic() < end:
        r, _, _ = select.select([s, sys.stdin], [], [], 0.2)
        if sys.stdin in r and not os.read(sys.stdin.fileno(), 1):
            return
        if s in r:
            conn, _ = s.accept()
            threading.Thread(target=serve, args=(conn, args.mode), daemon=True).start()


if __name__ == "__main__":
    main()
