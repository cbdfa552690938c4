#!/usr/bin/env python3
"""The testbed's HTTP helper: the body framings nginx does not serve as-is.

Runs inside the server namespace (started by scripts/testbed.sh). Every body is
deterministic: byte i of a body of any length is byte i of one endless stream made of
64 KiB blocks, block k = P xor (sha256(seed || "block" || k) repeated), where P is 64 KiB
of sha256(seed || n) for n = 0, 1, ... (counters as 8 bytes big-endian); no two blocks
are alike, so a block written at the wrong offset shows. Each response carries
X-Body-SHA256 with the digest of the full body it means to send.

  GET /chunked/<size>[?chunk=<n>]  200, Transfer-Encoding: chunked, chunks of n bytes (4096)
  GET /close/<size>                200, no Content-Length: body ends when the server closes
  GET /early-close/<size>          200, Content-Length: size, but closes after size/2 bytes
  GET /status/<code>               that status code with a short text body
  GET /bytes/<size>                200 with Content-Length (the helper's own plain case)

<size> takes a K/M/G suffix (1024-based).
"""
import argparse
import hashlib
import http.server
import re
import socketserver
import sys
from urllib.parse import parse_qs, urlparse

SEED = b"xdpget"


def parse_size(text):
    m = re.fullmatch(r"(\d+)([KMG]?)", text)
    if not m:
        return None
    return int(m.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m.group(2)]


BLOCK = 1 << 16
_pattern = None


def block(k):
    """Block k of the endless body stream (see the module docstring)."""
    global _pattern
    if _pattern is None:
        raw = b"".join(hashlib.sha256(SEED + n.to_bytes(8, "big")).digest() for n in range(BLOCK // 32))
        _pattern = int.from_bytes(raw, "big")
    key = hashlib.sha256(SEED + b"block" + k.to_bytes(8, "big")).digest() * (BLOCK // 32)
    return (_pattern ^ int.from_bytes(key, "big")).to_bytes(BLOCK, "big")


def body_chunks(size, chunk=BLOCK):
    """Yields the first `size` bytes of the stream in pieces of at most `chunk` bytes."""
    pending = bytearray()
    k = 0
    sent = 0
    while sent < size:
        want = min(chunk, size - sent)
        while len(pending) < want:
            pending += block(k)
            k += 1
        piece = bytes(pending[:want])
        del pending[:want]
        sent += want
        yield piece


_digests = {}


def body_digest(size):
    if size not in _digests:
        h = hashlib.sha256()
        for piece in body_chunks(size):
            h.update(piece)
        _digests[size] = h.hexdigest()
    return _digests[size]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "xdpget-testbed-helper"

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    def head(self, status, headers):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()

    def do_GET(self):
        url = urlparse(self.path)
        parts = url.path.strip("/").split("/")
        query = parse_qs(url.query)
        if len(parts) != 2:
            return self.text(404, "not found\n")
        kind, arg = parts
        if kind == "status":
            code = int(arg) if arg.isdigit() and 200 <= int(arg) <= 599 else None
            if code is None:
                return self.text(400, "bad status code\n")
            return self.text(code, "status %d\n" % code)
        size = parse_size(arg)
        if size is None:
            return self.text(400, "bad size\n")
        digest = ("X-Body-SHA256", body_digest(size))
        if kind == "bytes":
            self.head(200, [("Content-Length", str(size)), digest])
            for piece in body_chunks(size):
                self.wfile.write(piece)
        elif kind == "chunked":
            chunk = int(query.get("chunk", ["4096"])[0])
            chunk = max(1, min(chunk, 1 << 20))
            self.head(200, [("Transfer-Encoding", "chunked"), digest])
            for piece in body_chunks(size, chunk):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        elif kind == "close":
            self.head(200, [("Connection", "close"), digest])
            for piece in body_chunks(size):
                self.wfile.write(piece)
            self.close_connection = True
        elif kind == "early-close":
            self.head(200, [("Content-Length", str(size)), ("Connection", "close"), digest])
            remaining = size // 2
            for piece in body_chunks(remaining):
                self.wfile.write(piece)
            self.close_connection = True
        else:
            self.text(404, "not found\n")

    def text(self, status, text):
        data = text.encode()
        self.head(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))])
        self.wfile.write(data)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global SEED
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--seed", default="xdpget")
    args = parser.parse_args()
    SEED = args.seed.encode()
    Server(("0.0.0.0", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
