"""Records how Ansible splits `k=v` free-form module arguments (`parse_kv`).

Run with ansible-core from PyPI (this table: ansible-core 2.19.14):

    /tmp/a/bin/python import/tests/ansible/kv_table.py > import/tests/ansible/kv_table.json

`check_raw` is what Ansible passes for `command`/`shell`-like modules: only their own
options are taken as `k=v`, everything else stays in `_raw_params`. Tested by src/kv.rs.
"""
import json
import sys

import ansible
from ansible.parsing.splitter import parse_kv

CASES = [
    ("name=nginx state=present", False),
    ("name=nginx state=present update_cache=yes", False),
    ("src=templates/a.j2 dest=/etc/a.conf mode=0644", False),
    ("path=/etc/x state=directory owner=root group=root mode=0755", False),
    ("name={{ item }} state=present", False),
    ("name='a b' state=present", False),
    ('msg="hello world"', False),
    ("dest=/etc/foo line='x = 1' regexp='^x'", False),
    ("name={{ item.name | default('x y') }} state=present", False),
    ("/usr/bin/foo --bar baz creates=/tmp/done", True),
    ("echo hello > /tmp/x chdir=/tmp", True),
    ("ls -l removes=/etc/x warn=no", True),
    ("echo a=b c", True),
    ("echo 'a b' \"c d\"", True),
    ("touch /tmp/{{ name }} creates=/tmp/{{ name }}", True),
    ("key=value\\=escaped other=1", False),
    ("a=1  b=2", False),
    ("foo", False),
]

rows = []
for args, check_raw in CASES:
    try:
        out = parse_kv(args, check_raw=check_raw)
        rows.append({"args": args, "check_raw": check_raw, "result": {k: str(v) for k, v in out.items()}})
    except Exception as e:
        rows.append({"args": args, "check_raw": check_raw, "error": type(e).__name__})

json.dump({"ansible_core": ansible.__version__, "cases": rows}, sys.stdout, indent=1)
sys.stdout.write("\n")
