"""Records how Ansible's own YAML loader resolves plain and tagged scalars.

Run with ansible-core from PyPI (this table: ansible-core 2.19.14, PyYAML 6.0.4):

    python3 -m venv /tmp/a && /tmp/a/bin/pip install ansible-core
    /tmp/a/bin/python import/tests/ansible/yaml_table.py > import/tests/ansible/yaml_table.json

`froyo-import`'s YAML resolver is tested against the recorded result (src/yaml.rs).
"""
import datetime
import json
import sys

import ansible
import yaml
from ansible.parsing.yaml.loader import AnsibleLoader

SCALARS = [
    "yes", "Yes", "YES", "no", "No", "NO", "on", "On", "off", "OFF", "true", "True", "TRUE",
    "false", "False", "y", "n", "Y", "yEs", "0644", "0o644", "0755", "0600", "644", "0", "00",
    "-017", "+12", "0x1F", "0b101", "1_000", "1:30", "190:20:30", "09", "1.5", "1.", ".5",
    "1e3", "1.0e3", "1.0e+3", "1:30.5", ".inf", "-.inf", "~", "null", "Null", "NULL", "",
    "nULL", "2001-12-14", "'yes'", '"0644"', "!!str 0644", '!!int "0644"', "!!str yes",
    "present", "/etc/ssh/sshd_config", "{{ x }}x", "'{{ x }}'", "3.10", "-", "-1",
]


def kind(v):
    if v is None:
        return "none", "None"
    if isinstance(v, bool):
        return "bool", repr(v)
    if isinstance(v, int):
        return "int", repr(int(v))
    if isinstance(v, float):
        return "float", repr(float(v))
    if isinstance(v, datetime.date):
        return "date", str(v)
    return "str", str(v)


rows = []
for s in SCALARS:
    try:
        v = AnsibleLoader("k: " + s + "\n").get_single_data()["k"]
    except Exception as e:  # a scalar Ansible refuses is recorded as such
        rows.append({"yaml": s, "type": "error", "value": type(e).__name__})
        continue
    t, r = kind(v)
    rows.append({"yaml": s, "type": t, "value": r})

json.dump({"ansible_core": ansible.__version__, "pyyaml": yaml.__version__, "scalars": rows},
          sys.stdout, indent=1)
sys.stdout.write("\n")
