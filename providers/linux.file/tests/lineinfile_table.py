"""Records what Ansible's own `lineinfile` module does, for `linux.file::line`'s tests.

Run with ansible-core from PyPI (this table: ansible-core 2.19.14):

    /tmp/a/bin/python providers/linux.file/tests/lineinfile_table.py /tmp/a/bin/ansible \\
        > providers/linux.file/tests/lineinfile_table.json

Each case writes `before` to a scratch file (none when `before` is null), runs
`ansible localhost -c local -m lineinfile` with `args` on it, and records the file after
(`after`, null when there is no file) or that the module failed.
"""
import json
import os
import subprocess
import sys
import tempfile

ANSIBLE = sys.argv[1]
CFG = "PasswordAuthentication yes\n#PermitRootLogin prohibit-password\nPort 22\nUseDNS yes\n"
CASES = [
    (CFG, {"regexp": "^PasswordAuthentication", "line": "PasswordAuthentication no"}),
    (CFG, {"regexp": "^PermitRootLogin", "line": "PermitRootLogin no"}),
    (CFG, {"regexp": "^#?PermitRootLogin", "line": "PermitRootLogin no"}),
    (CFG, {"regexp": "^Port", "line": "Port 22"}),
    (CFG, {"line": "Port 22"}),
    (CFG, {"line": "AllowUsers alice"}),
    ("a\nb", {"line": "c"}),
    ("", {"line": "first"}),
    (CFG, {"line": "X11Forwarding no", "insertafter": "^Port"}),
    (CFG, {"line": "X11Forwarding no", "insertbefore": "^Port"}),
    (CFG, {"line": "# top", "insertbefore": "BOF"}),
    (CFG, {"line": "X", "insertafter": "^Nothing"}),
    (CFG, {"regexp": "^Use(\\w+) yes", "line": "Use\\1 no", "backrefs": True}),
    (CFG, {"regexp": "^Nothing (\\w+)", "line": "x \\1", "backrefs": True}),
    ("a=1\na=2\nb=3\n", {"regexp": "^a=", "line": "a=9"}),
    ("a=1\na=2\nb=3\n", {"regexp": "^a=", "line": "a=9", "firstmatch": True}),
    (CFG, {"regexp": "^Port", "state": "absent"}),
    (CFG, {"line": "UseDNS yes", "state": "absent"}),
    ("x\nkeep\nx\n", {"line": "x", "state": "absent"}),
    (None, {"line": "new file", "create": True}),
    (None, {"line": "new file"}),
    (None, {"line": "gone", "state": "absent"}),
    ("alice ALL=(ALL) ALL\n", {"regexp": "^alice", "line": "alice ALL=(ALL) NOPASSWD: ALL"}),
    ("k: 1\n", {"line": "k: 2", "regexp": "^k:", "insertafter": "EOF"}),
]

rows = []
with tempfile.TemporaryDirectory() as d:
    for n, (before, args) in enumerate(CASES):
        path = os.path.join(d, "f%d" % n)
        if before is not None:
            with open(path, "w") as f:
                f.write(before)
        a = dict(args, path=path)
        r = subprocess.run([ANSIBLE, "localhost", "-c", "local", "-m", "lineinfile", "-a", json.dumps(a)],
                           capture_output=True, text=True, env=dict(os.environ, ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false"))
        row = {"before": before, "args": args}
        if r.returncode != 0:
            row["failed"] = True
            row["after"] = None
        else:
            row["after"] = open(path).read() if os.path.exists(path) else None
        rows.append(row)

json.dump({"ansible_core": "2.19.14", "cases": rows}, sys.stdout, indent=1)
sys.stdout.write("\n")
