#!/usr/bin/env python3
"""`cudapkgs serve --cache` against nginx serving the same cache folder.

Throughput: CLIENTS curl processes at once each fetch every NAR file of the cache (the
same client for both servers), several rounds; bytes per second of wall time.
narinfo latency: wrk (`wrk -t2 -c64 --latency`) asks for one narinfo over 64 keep-alive
connections for SECONDS; its latency percentiles are printed (the goal: p99 under 1 ms).

CACHE is a folder `cudapkgs push --to file://CACHE` filled (nar/*.nar.zst and narinfos).
nginx runs with its usual file-serving setup (sendfile, keep-alive, one worker per core,
no access log); cudapkgs with -q (no request log).

    python3 bench/cache_serve_vs_nginx.py --cudapkgs target/release/cudapkgs CACHE
"""

import os
import re
import socket
import subprocess
import tempfile
import time

import bench_args

NGINX_CONF = """
worker_processes auto;
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    types {{ text/x-nix-narinfo narinfo; }}
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def throughput(base, files, clients, rounds):
    urls = [f"{base}/nar/{f}" for f in files]
    total = sum(os.path.getsize(p) for p in files.values()) * clients * rounds
    start = time.perf_counter()
    procs = []
    for _ in range(clients):
        command = ["curl", "-s", "-f"]
        for _ in range(rounds):
            for url in urls:
                command += ["-o", "/dev/null", url]
        procs.append(subprocess.Popen(command))
    for p in procs:
        if p.wait() != 0:
            raise SystemExit("a download failed")
    return total / (time.perf_counter() - start)


def latency(base, narinfo, seconds):
    out = subprocess.run(["wrk", "-t2", "-c64", f"-d{seconds}s", "--latency", f"{base}/{narinfo}"],
                         check=True, capture_output=True, text=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(out)
    percentiles = dict(re.findall(r"^\s+(\d+)%\s+(\S+)", out, re.M))
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)
    return percentiles, float(rate)


def main():
    parser = bench_args.parser(__doc__)
    parser.add_argument("cache")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    cache = os.path.abspath(args.cache)
    files = {f: os.path.join(cache, "nar", f) for f in sorted(os.listdir(os.path.join(cache, "nar")))}
    narinfo = next(f for f in sorted(os.listdir(cache)) if f.endswith(".narinfo"))
    with tempfile.TemporaryDirectory() as work:
        nginx_port, ours_port = free_port(), free_port()
        conf = os.path.join(work, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(work=work, port=nginx_port, root=cache))
        nginx = subprocess.Popen(["nginx", "-c", conf, "-p", work])
        ours = subprocess.Popen([os.path.abspath(args.cudapkgs), "-q", "serve", "--cache", f"file://{cache}",
                                 "--listen", f"127.0.0.1:{ours_port}"], stdout=subprocess.DEVNULL)
        try:
            wait_for(nginx_port)
            wait_for(ours_port)
            servers = {"nginx": f"http://127.0.0.1:{nginx_port}", "cudapkgs": f"http://127.0.0.1:{ours_port}"}
            size = sum(os.path.getsize(p) for p in files.values())
            print(f"{len(files)} NAR files, {size / 2**20:.1f} MiB; {args.clients} clients x {args.rounds} rounds")
            rates = {}
            for name in ["nginx", "cudapkgs", "nginx", "cudapkgs"]:
                rate = throughput(servers[name], files, args.clients, args.rounds)
                rates[name] = max(rates.get(name, 0), rate)
            for name, rate in rates.items():
                print(f"throughput {name:9} {rate / 2**30:.2f} GiB/s (best of 2)")
            print(f"ratio (cudapkgs / nginx): {rates['cudapkgs'] / rates['nginx']:.2f} (goal: at least 0.80)")
            for name in ["nginx", "cudapkgs"]:
                percentiles, rate = latency(servers[name], narinfo, args.seconds)
                print(f"narinfo {name:9} 64 clients: p50 {percentiles['50']}, p90 {percentiles['90']}, "
                      f"p99 {percentiles['99']}, {rate:.0f} requests/s")
        finally:
            nginx.terminate()
            ours.terminate()
            nginx.wait()
            ours.wait()


if __name__ == "__main__":
    main()
