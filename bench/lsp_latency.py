#!/usr/bin/env python3
"""didChange -> publishDiagnostics latency of `froyo lsp` on a generated 2,000-line playbook.

Run by hand: python3 bench/lsp_latency.py [path/to/froyo] [changes]
The time includes the server's debounce (150 ms), evaluation and CUE validation.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

froyo = sys.argv[1] if len(sys.argv) > 1 else "target/release/froyo"
changes = int(sys.argv[2]) if len(sys.argv) > 2 else 10

def playbook(bad):
    lines = ['load("@stdlib//linux.star", "file", "package", "service")', ""]
    i = 0
    while len(lines) < 2000:
        mode = "06x4" if bad and i == 250 else "0644"
        lines += [
            f"# site {i}",
            f'p{i} = package("pkg{i}")',
            f'f{i} = resource("linux.file::file", "/srv/site{i}/index.html", content = "site {i}\\n", mode = "{mode}", owner = "www-data")',
            f"require(f{i}, p{i})",
        ]
        i += 1
    return "\n".join(lines[:2000]) + "\n"

def send(p, msg):
    body = json.dumps(msg).encode()
    p.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    p.stdin.flush()

def recv(p):
    length = None
    while True:
        line = p.stdout.readline()
        if not line:
            raise EOFError
        line = line.strip()
        if not line:
            break
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return json.loads(p.stdout.read(length))

def wait_diagnostics(p, version):
    while True:
        m = recv(p)
        if m.get("method") == "textDocument/publishDiagnostics" and m["params"].get("version") == version:
            return m["params"]["diagnostics"]

with tempfile.TemporaryDirectory() as d:
    open(os.path.join(d, "froyo.toml"), "w").close()
    path = os.path.join(d, "site.star")
    with open(path, "w") as f:
        f.write(playbook(False))
    uri = "file://" + path
    p = subprocess.Popen([froyo, "lsp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         env={**os.environ, "XDG_CACHE_HOME": d})
    try:
        send(p, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"processId": None, "rootUri": None, "capabilities": {}}})
        while recv(p).get("id") != 1:
            pass
        send(p, {"jsonrpc": "2.0", "method": "initialized", "params": {}})
        t = time.monotonic()
        send(p, {"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {"uri": uri, "languageId": "starlark", "version": 1, "text": playbook(False)}}})
        diags = wait_diagnostics(p, 1)
        print(f"didOpen -> diagnostics: {(time.monotonic() - t) * 1000:.0f} ms ({len(diags)} diagnostics)")
        times = []
        for v in range(2, changes + 2):
            text = playbook(v % 2 == 0)  # every other change makes one schema error
            t = time.monotonic()
            send(p, {"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {"textDocument": {"uri": uri, "version": v}, "contentChanges": [{"text": text}]}})
            diags = wait_diagnostics(p, v)
            times.append((time.monotonic() - t) * 1000)
            print(f"  change {v}: {times[-1]:.0f} ms, {len(diags)} diagnostics")
        print(f"didChange -> publishDiagnostics over {changes} changes: median {statistics.median(times):.0f} ms, min {min(times):.0f}, max {max(times):.0f}")
        send(p, {"jsonrpc": "2.0", "id": 2, "method": "shutdown", "params": None})
        send(p, {"jsonrpc": "2.0", "method": "exit", "params": None})
        p.wait(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
