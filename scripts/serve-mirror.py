#!/usr/bin/env python3
"""Serve a folder over HTTP on 127.0.0.1 with `Range` support, for download tests.

Prints the port on its first line, then serves until killed. A path ending in `/` serves
that folder's `index.json` (a simple index's project page in its JSON form), or an HTML
listing of the folder when it has none (as NVIDIA's server lists its manifests). Every request is appended to
LOG as `GET <path> <range header or ->`. With `--break-first N`, the first request for each
file sends only N bytes of the body and drops the connection (a download interrupted).

    python3 scripts/serve-mirror.py --root MIRROR --log LOG [--break-first N]
"""

import argparse
import http.server
import os
import re
import threading


def handler(root, log_path, break_first):
    broken = set()
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def listing(self, names):
            links = "".join(f'<a href="{name}">{name}</a><br/>\n' for name in names)
            body = f"<html><body>\n{links}</body></html>\n".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            wanted = self.headers.get("Range")
            with lock, open(log_path, "a") as log:
                log.write(f"GET {self.path} {wanted or '-'}\n")
            path = os.path.realpath(os.path.join(root, self.path.lstrip("/")))
            inside = (path + os.sep).startswith(os.path.realpath(root) + os.sep)
            if self.path.endswith("/") and inside and os.path.isdir(path):
                page = os.path.join(path, "index.json")
                if not os.path.isfile(page):
                    # A folder without one is listed as web servers list folders.
                    self.listing(sorted(os.listdir(path)))
                    return
                path = page
            if not inside or not os.path.isfile(path):
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            size = os.path.getsize(path)
            start, status = 0, 200
            match = re.fullmatch(r"bytes=(\d+)-", wanted or "")
            if match:
                start = int(match.group(1))
                if start >= size:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
            self.send_response(status)
            self.send_header("Content-Length", str(size - start))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
            self.end_headers()
            limit = size - start
            with lock:
                cut = break_first is not None and path not in broken
                broken.add(path)
            if cut:
                limit = min(limit, break_first)
            with open(path, "rb") as f:
                f.seek(start)
                while limit > 0:
                    chunk = f.read(min(limit, 1 << 20))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    limit -= len(chunk)
            if cut:
                self.close_connection = True
                self.wfile.flush()
                self.connection.shutdown(2)

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--break-first", type=int)
    args = parser.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler(args.root, args.log, args.break_first))
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
