"""Records what Ansible's own `blockinfile` module does, for `linux.file::block`'s tests.

Run with ansible-core from PyPI (this table: ansible-core 2.19.14):

    /tmp/a/bin/python providers/linux.file/tests/blockinfile_table.py /tmp/a/bin/ansible \\
        > providers/linux.file/tests/blockinfile_table.json

Each case writes `before` to a scratch file (none when null), runs
`ansible localhost -c local -m blockinfile` with `args`, and records the file after.
"""
import json
import os
import subprocess
import sys
import tempfile

ANSIBLE = sys.argv[1]
PROFILE = "# ~/.profile\nexport PATH=$PATH:/usr/local/bin\n"
M = "# BEGIN ANSIBLE MANAGED BLOCK\nold\n# END ANSIBLE MANAGED BLOCK\n"
CASES = [
    (PROFILE, {"block": "alias ll='ls -l'"}),
    (PROFILE, {"block": "a\nb\n"}),
    ("x\n" + M + "y\n", {"block": "new"}),
    ("x\n" + M + "y\n", {"block": "old"}),
    ("x\n" + M + "y\n", {"state": "absent"}),
    ("x\n" + M + "y\n", {"block": ""}),
    (PROFILE, {"block": "top", "insertbefore": "BOF"}),
    (PROFILE, {"block": "mid", "insertafter": "^# ~"}),
    (PROFILE, {"block": "mid", "insertbefore": "^export"}),
    (PROFILE, {"block": "end", "insertafter": "^nothing"}),
    ("no newline", {"block": "b"}),
    (PROFILE, {"block": "b", "marker": "<!-- {mark} froyo -->"}),
    (PROFILE, {"block": "b", "marker_begin": "START", "marker_end": "STOP"}),
    (PROFILE, {"block": "b", "prepend_newline": True, "append_newline": True}),
    (None, {"block": "new", "create": True}),
    (None, {"block": "new"}),
    (None, {"block": "x", "state": "absent"}),
]

rows = []
with tempfile.TemporaryDirectory() as d:
    for n, (before, args) in enumerate(CASES):
        path = os.path.join(d, "f%d" % n)
        if before is not None:
            with open(path, "w") as f:
                f.write(before)
        a = dict(args, path=path)
        r = subprocess.run([ANSIBLE, "localhost", "-c", "local", "-m", "blockinfile", "-a", json.dumps(a)],
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
