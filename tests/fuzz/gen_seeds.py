#!/usr/bin/env python3
"""Writes the seed inputs of tests/fuzz/corpus/*/seed-* (run from anywhere).

Each harness's input format is described at the top of its fuzz_NAME.c.
Seeds are realistic inputs plus every hostile input of the "Fail closed"
issue. Inputs libFuzzer finds later are added under other names."""
import base64, json, os, struct, glob

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))


def put(name, fname, data):
    d = os.path.join(here, 'corpus', name)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, 'seed-' + fname), 'wb') as f:
        f.write(data)


def read(p):
    with open(os.path.join(root, p), 'rb') as f:
        return f.read()


# ---- config: byte 0 even = main file, odd = mapping file --------------------
HEAD = """directory:
  uri: ldaps://127.0.0.1:636
  base: ou=people,dc=example,dc=org
mappings: [openldap]
connectors:
  apps:
    type: http
    base_url: https://apps.example.org/api
"""
for p in [os.path.join(root, 'tests/fixtures/plan.yaml'), os.path.join(root, 'tests/fuzz/plan.yaml')] + sorted(glob.glob(os.path.join(root, 'tests/fixtures/config/*.yaml'))):
    p = os.path.relpath(p, root)
    put('config', 'main-' + os.path.basename(os.path.dirname(p)) + '-' + os.path.basename(p), b'\0' + read(p))
for p in sorted(glob.glob(os.path.join(root, 'mappings/*.yaml'))):
    put('config', 'mapping-' + os.path.basename(p), b'\1' + read(p))
put('config', 'transition-actions-mapping', '\0' + HEAD + "actions:\n  a:\n    connector: apps\n    url: /x\ntransitions: {t: {to: locked, actions: {a: b}}}\n")
nots = "when:" + "".join("\n" + "  " * (i + 1) + "not:" for i in range(200)) + "\n" + "  " * 201 + "attribute: employeeType\n" + "  " * 201 + "present: true\n"
put('config', 'nested-not-200-mapping', '\1rules:\n  - name: deep\n    status: locked\n    ' + nots.replace('\n', '\n    ') + '\n')
put('config', 'nested-not-200-action', '\0' + HEAD + "actions:\n  a:\n    connector: apps\n    url: /x\n    " + nots.replace('\n', '\n    ') + "\ntransitions:\n  t:\n    to: locked\n    actions: [a]\n")
flow = "{not: " * 200 + "{attribute: employeeType, present: true}" + "}" * 200
put('config', 'nested-not-200-flow-mapping', '\1rules:\n  - name: deep\n    status: locked\n    when: ' + flow + '\n')
put('config', 'nested-not-200-flow-action', '\0' + HEAD + "actions:\n  a:\n    connector: apps\n    url: /x\n    when: " + flow +
    "\ntransitions:\n  t:\n    to: locked\n    actions: [a]\n")
put('config', 'alias-cycle', '\0' + HEAD + "actions: &a\n  x: *a\n")
put('config', 'alias-self-list', '\0a: &x [*x, *x]\n')
laughs = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
prev = 'a'
for n in 'bcdefghi':
    laughs += "%s: &%s [%s]\n" % (n, n, ",".join(["*" + prev] * 9))
    prev = n
put('config', 'billion-laughs', '\0' + laughs + "directory: *i\n")
put('config', 'billion-laughs-in-json', '\0' + HEAD + laughs.replace('\n', '\n').replace('a: &a', 'x-a: &a') + "actions:\n  a:\n    connector: apps\n    url: /x\n    json: *i\n")
put('config', 'duplicate-keys', '\0' + HEAD + "actions:\n  a:\n    connector: apps\n    url: /x\n    url: /y\n  a:\n    connector: apps\n    url: /z\n")
put('config', 'duplicate-sections', '\0' + HEAD + HEAD.replace('directory', 'directory', 1))
chain = '\0' + HEAD + "actions:\n"
for i in range(28):
    chain += "  a%d:\n    connector: apps\n    url: /a/%d/{{ account.uid }}\n" % (i, i)
    if i:
        chain += "    after: [a%d]\n" % (i - 1)
chain += "transitions:\n  t:\n    to: inactive\n    actions: [%s]\n" % ", ".join("a%d" % i for i in range(28))
put('config', 'after-chain-28', chain)
for lit in ['+5', '007', '-0', '1e999', '0x10', '.5', 'NaN', '-']:
    put('config', 'json-number-' + lit.replace('+', 'plus').replace('.', 'dot'),
        '\0' + HEAD + "actions:\n  a:\n    connector: apps\n    url: /x\n    json:\n      n: %s\n      m: [%s, {k: %s}]\n" % (lit, lit, lit))
put('config', 'mapping-dup-rule', '\1rules:\n  - name: a\n    status: locked\n    name: b\n')

# ---- escape: byte 0 even = value for every escaper, odd = template ---------
values = [b'', b'.', b'..', b'a/b', b'../../admin', b'\x1b[2J\x1b]0;pwned\x07', b'alice\r\nX-Injected: 1',
          b'\xff\xfe', b'\xc0\xaf', b'\xed\xa0\x80', b'\xf4\x90\x80\x80', b'%2e%2e', b'\xe2\x80\xa8',
          b'*)(uid=*', b'cn=x,dc=y', b' #lead', b'trail ', b'caf\xc3\xa9 \xf0\x9f\x98\x80', b'a\0b',
          b'"},"admin":true,"x":{"', b'\\u0000', b'alice']
for i, v in enumerate(values):
    put('escape', 'value-%02d' % i, b'\0' + v)
tpls = [b'/users/{{ account.uid }}/sessions?x={{ account.mail }}&y=1',
        b'/a/{{account.attr.employeeNumber}}/{{ account.id }}#frag', b'{{ account.uid', b'{{}}', b'{{ nope }}',
        b'Bearer {{ account.uid }}', b'{{ account.name }} <{{ account.mail }}>',
        b'/x/{{ account.uid }}\0../../admin', b'/x/{{ account.uid }}?q={{ status.reason }}\0a&b=c#d',
        b'{{ account.attr.' + b'x' * 130 + b' }}', b'{{' * 50, b'"{{ account.uid }}\\"\0\xff']
for i, t in enumerate(tpls):
    put('escape', 'template-%02d' % i, b'\1' + t)

# ---- timeparse ---------------------------------------------------------------
for i, t in enumerate(['20240101120000Z', '000001010000Z', '19700101000000.5+0130', '2024022912Z',
                       '20240229120000,999999999999999999999Z', '20241301000000Z', '99991231235959Z',
                       '00010101000000Z', '20240101120000-2359', '20240101120000+2400', '2024010112',
                       '133497216000000000', '9223372036854775807', '9223372036854775808', '0', '-1',
                       '19700', '106751991167300', '']):
    put('timeparse', '%02d' % i, t)
put('timeparse', 'int64-min', b'\x80' + b'\0' * 7)
put('timeparse', 'int64-max', b'\x7f' + b'\xff' * 7)


# ---- snapshot ------------------------------------------------------------------
def snap(id_, dn, attrs):
    def b(x):
        return struct.pack('<I', 0xffffffff) if x is None else struct.pack('<I', len(x)) + x
    out = b'OBS1' + b(id_) + b(dn) + struct.pack('<I', len(attrs))
    for name, vals in attrs:
        out += b(name) + struct.pack('<I', len(vals)) + b''.join(b(v) for v in vals)
    h = 2166136261
    for c in out:
        h = ((h ^ c) * 16777619) & 0xffffffff
    return out + struct.pack('<I', h)


put('snapshot', 'alice', snap(b'0f6a3a7e-1', b'uid=alice,ou=people,dc=example,dc=org',
                              [(b'uid', [b'alice']), (b'mail', [b'alice@example.org']),
                               (b'objectClass', [b'top', b'person', b'inetOrgPerson'])]))
put('snapshot', 'absent-id-dn', snap(None, None, []))
put('snapshot', 'binary-guid', snap(b'{guid}', b'cn=x', [(b'objectGUID', [bytes(range(16))]), (b'cn', [b''])]))
put('snapshot', 'case-merge', snap(b'i', b'd', [(b'cn', [b'a']), (b'CN', [b'b'])]))
put('snapshot', 'hostile-values', snap(b'.', b'..', [(b'uid', [b'a/b', b'\x1b[2J\x1b]0;pwned\x07', b'\r\n', b'\xff\xfe'])]))
put('snapshot', 'bad-checksum', snap(b'i', b'd', [])[:-1] + b'\0')
put('snapshot', 'huge-count', b'OBS1' + struct.pack('<III', 1, 0xfffffffe, 0xfffffff0) + b'\0\0\0\0')

# ---- plan: byte 0 flags, then (type, len, bytes) records ----------------------
def rec(t, v):
    if isinstance(v, str):
        v = v.encode()
    return bytes([t, len(v)]) + v


def acct(flags, *recs):
    return bytes([flags]) + b''.join(recs)


UID, MAIL, CN, DESC, MGR, ETYPE, MAPPED, SHADOW, PWDLOCK, ID, DN, TITLE, ENUM, ANY, TUID, TMAIL = range(16)
base = [rec(MAIL, 'bob@example.org'), rec(CN, 'Bob Example'), rec(ENUM, '4711'), rec(TITLE, 'Engineer')]
put('plan', 'inactive', acct(0x11, rec(UID, 'bob'), *base, rec(MAPPED, b'\0'), rec(DESC, 'Left the company'),
                             rec(TUID, 'trent'), rec(TMAIL, 'trent@example.org')))
put('plan', 'locked', acct(0x01, rec(UID, 'bob'), *base, rec(MAPPED, b'\2')))
put('plan', 'admin-locked', acct(0x01, rec(UID, 'bob'), *base, rec(MAPPED, b'\4')))
put('plan', 'reactivate', acct(0x02, rec(UID, 'bob'), *base))
put('plan', 'ended', acct(0x31, rec(UID, 'bob'), *base, rec(SHADOW, '19000')))
put('plan', 'deleted', acct(0x19, rec(UID, 'bob'), *base))
for i, uid in enumerate([b'.', b'..', b'a/b', b'\x1b[2J\x1b]0;pwned\x07', b'bob\r\nX-Injected: 1', b'\xff\xfe\xc0\xaf',
                         b'', b'../../admin?x=1#f', b'\xe2\x80\xa8', b'"},"admin":true,"x":{"']):
    put('plan', 'uid-%02d' % i, acct(0x11, rec(UID, uid), rec(MAIL, uid), rec(CN, uid), rec(ENUM, uid), rec(TITLE, uid),
                                     rec(MAPPED, b'\0'), rec(DESC, uid), rec(MGR, uid), rec(TUID, uid), rec(TMAIL, uid),
                                     rec(ID, uid), rec(DN, uid), rec(ANY, b'x-attr:' + uid)))
put('plan', 'reason-escape', acct(0x01, rec(UID, 'bob'), rec(MAPPED, b'\0'), rec(DESC, '\x1b[2J\x1b]0;pwned\x07\r\nforged line')))

# ---- scrub: len byte, bound byte, secret, ops ----------------------------------
def scrub(secret_idx, bound, ops):
    return bytes([secret_idx[0], bound]) + bytes(secret_idx[1]) + bytes(ops)


def secret_bytes(s):
    pr = " !\"#$%&'()+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~"
    return [pr.index(c) for c in s]


sec = 'sk_live_0123456789abcdef/+="\\x'
sb = secret_bytes(sec)
L = len(sb)
lenb = L - 8
for off in [480, 500, 511, 512, 513, 530, 560]:
    fill = off - 10
    ops = [0, 10] + list(b'{"error":"') + [5 | ((fill % 4) << 3), fill // 4]
    put('scrub', 'echo-raw-at-%d' % off, scrub((lenb, sb), 200, ops + [1] + [0, 2] + list(b'"}')))
put('scrub', 'echo-json-slash', scrub((lenb, sb), 200, [0, 9] + list(b'{"token":') + [5, 125, 3, 7, 2, 7, 0, 1] + list(b'}')))
put('scrub', 'echo-base64', scrub((lenb, sb), 200, [5, 120, 4, 7, 4 | 8, 4 | 16, 7, 4 | 24]))
put('scrub', 'echo-prefix-at-end', scrub((lenb, sb), 200, [5, 126, 6, 7]))
put('scrub', 'echo-prefix-7', scrub((lenb, sb), 200, [5, 10, 6 | (0 << 3), 7, 0, 3] + list(b'xyz')))
put('scrub', 'chunked-every-byte', scrub((lenb, sb), 200, [5, 2] + [7] + sum([[6, k, 7] for k in range(1, 9)], []) + [1, 7]))
put('scrub', 'cut-output', scrub((lenb, sb), 3, [5, 120, 1, 5, 3, 2]))
put('scrub', 'percent', scrub((lenb, sb), 200, [6 | (7 << 3), 255, 7, 6 | (7 << 3), 40]))


# ---- sync: byte 0 even = Sync Info value, odd = Sync State control value ------
# The state controls are what slapd 2.5 sent on a refreshAndPersist search
# (ldapsearch -E sync=rp); the info values are built by hand per RFC 4533.
def tlv(tag, body):
    n = len(body)
    if n < 0x80:
        ln = bytes([n])
    elif n < 0x100:
        ln = bytes([0x81, n])
    else:
        ln = bytes([0x82, n >> 8, n & 0xff])
    return bytes([tag]) + ln + body
COOKIE = b'rid=000,csn=20261202181021.794912Z#000000#000#000000'
UUID = bytes(range(16))
put('sync', 'state-add', b'\x01' + base64.b64decode('MBUKAQEEEGIIjcKCxxBBhGC3I5fHmAY='))
put('sync', 'state-modify-cookie', b'\x01' + tlv(0x30, tlv(0x0a, b'\x02') + tlv(0x04, UUID) + tlv(0x04, COOKIE)))
put('sync', 'state-short-uuid', b'\x01' + tlv(0x30, tlv(0x0a, b'\x01') + tlv(0x04, UUID[:15])))
put('sync', 'state-bad-enum', b'\x01' + tlv(0x30, tlv(0x0a, b'\x07') + tlv(0x04, UUID)))
put('sync', 'info-newcookie', b'\x00' + tlv(0x80, COOKIE))
put('sync', 'info-refresh-delete-done', b'\x00' + tlv(0xa1, tlv(0x04, COOKIE)))
put('sync', 'info-refresh-present-not-done', b'\x00' + tlv(0xa2, tlv(0x04, COOKIE) + tlv(0x01, b'\x00')))
put('sync', 'info-idset-deletes', b'\x00' + tlv(0xa3, tlv(0x04, COOKIE) + tlv(0x01, b'\xff') +
                                               tlv(0x31, tlv(0x04, UUID) + tlv(0x04, UUID[::-1]))))
put('sync', 'info-idset-bad-uuid', b'\x00' + tlv(0xa3, tlv(0x31, tlv(0x04, UUID) + tlv(0x04, b'short'))))
put('sync', 'info-truncated', b'\x00' + tlv(0xa3, tlv(0x04, COOKIE))[:-5])


# ---- metrics: byte 0 bit 0 = the buffer is full, bits 1-7 = a prefix to parse too
def metrics(name, req, full=False, split=64):
    put('metrics', name, bytes([(split << 1) | full]) + (req.encode() if isinstance(req, str) else req))
metrics('curl', 'GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9464\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n')
metrics('prometheus', 'GET /metrics HTTP/1.1\r\nHost: localhost:9464\r\nUser-Agent: Prometheus/2.45.0\r\n'
        'Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,'
        'text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\nAccept-Encoding: gzip\r\n'
        'X-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n', split=100)
metrics('offboard-status', 'GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
metrics('head-healthz-1.0', 'HEAD /healthz HTTP/1.0\r\n\r\n', split=127)
metrics('query', 'GET /metrics?name[]=up HTTP/1.1\r\nHost: x\r\n\r\n')
metrics('lf-only', 'GET /healthz HTTP/1.1\nHost: x\n\n')
metrics('not-found', 'GET /../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n')
metrics('post', 'POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc')
metrics('http2-preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')
metrics('tls-hello', b'\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03' + bytes(32))
metrics('half-line', 'GET /metr', split=32)
metrics('half-headers', 'GET /metrics HTTP/1.1\r\nHost: x\r\n', split=100)
metrics('header-no-colon', 'GET /metrics HTTP/1.1\r\nHost x\r\n\r\n')
metrics('header-obs-fold', 'GET /metrics HTTP/1.1\r\nX-A: 1\r\n  2\r\n\r\n')
metrics('header-nul', b'GET /metrics HTTP/1.1\r\nX-A: a\0b\r\n\r\n')
metrics('header-tab', 'GET /metrics HTTP/1.1\r\nX-A:\tb\r\n\r\n')
metrics('absolute-target', 'GET http://x/metrics HTTP/1.1\r\n\r\n')
metrics('http-0.9', 'GET /metrics\r\n\r\n')
metrics('two-spaces', 'GET  /metrics HTTP/1.1\r\n\r\n')
metrics('pipelined', 'GET /healthz HTTP/1.1\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n', split=127)
metrics('full-line', 'GET /' + 'a' * 8186, full=True)
metrics('full-headers', 'GET /metrics HTTP/1.1\r\n' + ('X-Pad: ' + 'p' * 90 + '\r\n') * 82, full=True, split=127)
metrics('full-exact', 'GET /metrics HTTP/1.1\r\nX: y\r\n\r\n', full=True, split=127)


# ---- dirsync: the DirSync response control's value ------------------------------
# SEQUENCE {moreResults INTEGER, unused INTEGER, cookie OCTET STRING}
# (MS-ADTS 3.1.1.3.4.1.3). The cookie's shape is AD's: "MSDS" and a
# version, then the replication vector (opaque to offboard).
def ber_int(v):
    b = v.to_bytes(max(1, (v.bit_length() + 8) // 8), 'big', signed=True)
    return tlv(0x02, b)
AD_COOKIE = b'MSDS\x03\x00\x00\x00' + bytes(range(0x20, 0x70)) + b'\x00' * 16
put('dirsync', 'more', tlv(0x30, ber_int(1) + ber_int(0) + tlv(0x04, AD_COOKIE)))
put('dirsync', 'last', tlv(0x30, ber_int(0) + ber_int(0) + tlv(0x04, AD_COOKIE)))
put('dirsync', 'empty-cookie', tlv(0x30, ber_int(0) + ber_int(0) + tlv(0x04, b'')))
put('dirsync', 'big-cookie', tlv(0x30, ber_int(1) + ber_int(0) + tlv(0x04, AD_COOKIE * 40)))
put('dirsync', 'no-cookie', tlv(0x30, ber_int(1) + ber_int(0)))
put('dirsync', 'int-too-long', tlv(0x30, tlv(0x02, b'\x01' * 9) + ber_int(0) + tlv(0x04, AD_COOKIE)))
put('dirsync', 'cookie-past-end', tlv(0x30, ber_int(0) + ber_int(0) + tlv(0x04, AD_COOKIE))[:-10])
put('dirsync', 'request-shape', tlv(0x30, ber_int(1) + ber_int(1 << 20) + tlv(0x04, b'')))
put('dirsync', 'set-not-sequence', tlv(0x31, ber_int(0) + ber_int(0) + tlv(0x04, AD_COOKIE)))
