"""Records Ansible's own result for real `when:` conditions on sample vars and facts.

Run with ansible-core from PyPI (this table: ansible-core 2.19.14):

    /tmp/a/bin/python import/tests/ansible/when_table.py > import/tests/ansible/when_table.json

Each row gives the condition, the variables (`item` is the loop variable), the host
(as froyo's facts; the Ansible facts it stands for are in HOSTS) and Ansible's result.
`froyo-import` translates each condition and evaluates the Starlark on the same data
(src/expr/tests.rs). The conditions come from the research note's sample (geerlingguy,
singleplatform-eng, dev-sec roles) and the shapes of its §1.4 table.
"""
import json
import sys
import warnings

import ansible
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from ansible.utils.display import Display

Display().deprecation_warnings = False
warnings.simplefilter("ignore")

# froyo facts (host.facts.os.basic) and the Ansible facts of the same machine.
HOSTS = {
    "debian12": (
        {"family": "debian", "distro": "debian", "version": "12", "codename": "bookworm",
         "kernel": "6.1.0-18-amd64", "arch": "x86_64", "init": "systemd", "hostname": "deb"},
        {"os_family": "Debian", "distribution": "Debian", "distribution_major_version": "12",
         "distribution_version": "12", "distribution_release": "bookworm",
         "kernel": "6.1.0-18-amd64", "architecture": "x86_64", "service_mgr": "systemd",
         "hostname": "deb"},
    ),
    "ubuntu2204": (
        {"family": "debian", "distro": "ubuntu", "version": "22.04", "codename": "jammy",
         "kernel": "5.15.0-91-generic", "arch": "x86_64", "init": "systemd", "hostname": "ubu"},
        {"os_family": "Debian", "distribution": "Ubuntu", "distribution_major_version": "22",
         "distribution_version": "22.04", "distribution_release": "jammy",
         "kernel": "5.15.0-91-generic", "architecture": "x86_64", "service_mgr": "systemd",
         "hostname": "ubu"},
    ),
    "rocky9": (
        {"family": "rhel", "distro": "rocky", "version": "9.3", "codename": "blue-onyx",
         "kernel": "5.14.0-362.8.1.el9_3.x86_64", "arch": "x86_64", "init": "systemd",
         "hostname": "rock"},
        {"os_family": "RedHat", "distribution": "Rocky", "distribution_major_version": "9",
         "distribution_version": "9.3", "distribution_release": "blue-onyx",
         "kernel": "5.14.0-362.8.1.el9_3.x86_64", "architecture": "x86_64",
         "service_mgr": "systemd", "hostname": "rock"},
    ),
}

CASES = [
    ("security_fail2ban_enabled | bool",
     [{"security_fail2ban_enabled": v} for v in [True, False, "yes", "no", "True", "false", "on", "0", 1]]),
    ("'group' not in item and users_create_per_user_group",
     [{"users_create_per_user_group": True, "item": {"username": "a"}},
      {"users_create_per_user_group": True, "item": {"username": "a", "group": "g"}},
      {"users_create_per_user_group": False, "item": {"username": "a"}}]),
    ("nginx_user is not defined", [{}, {"nginx_user": "www-data"}]),
    ("security_ssh_allowed_users | length > 0",
     [{"security_ssh_allowed_users": []}, {"security_ssh_allowed_users": ["alice"]}]),
    ("ansible_facts.os_family == 'Debian'", [{}]),
    ("ansible_os_family == 'RedHat'", [{}]),
    ("ansible_facts['distribution'] == 'Ubuntu'", [{}]),
    ("ansible_distribution_major_version | int >= 12", [{}]),
    ("ansible_facts.os_family == 'Debian' and ansible_facts.distribution_major_version | int >= 12", [{}]),
    ("users_create_homedirs and item.profile is defined",
     [{"users_create_homedirs": True, "item": {"username": "a", "profile": "x"}},
      {"users_create_homedirs": True, "item": {"username": "a"}},
      {"users_create_homedirs": False, "item": {"username": "a", "profile": "x"}}]),
    ("item.gid is defined", [{"item": {"gid": 10}}, {"item": {}}]),
    ("ansible_os_family in ['Debian', 'Suse']", [{}]),
    ("ansible_distribution not in ['Debian', 'Ubuntu']", [{}]),
    ("ansible_kernel is version('5.4', '>=')", [{}]),
    ("ansible_distribution_version is version('22.04', '<')", [{}]),
    ("docker_users | length > 0 and docker_install_compose | bool",
     [{"docker_users": ["a"], "docker_install_compose": "yes"},
      {"docker_users": [], "docker_install_compose": True},
      {"docker_users": ["a"], "docker_install_compose": "no"}]),
    ("flag | default(false) | bool", [{}, {"flag": "yes"}, {"flag": "off"}]),
    ("name | default('') != ''", [{}, {"name": "x"}, {"name": ""}]),
    ("mysql_root_password is defined and mysql_root_password | length > 0",
     [{}, {"mysql_root_password": ""}, {"mysql_root_password": "s3cret"}]),
    ("not (a | bool)", [{"a": "no"}, {"a": "yes"}]),
    ("ansible_distribution_release == 'bookworm'", [{}]),
    ("item.state | default('present') == 'present'",
     [{"item": {}}, {"item": {"state": "absent"}}, {"item": {"state": "present"}}]),
    ("(a | bool) or (b | int > 3)",
     [{"a": "no", "b": "5"}, {"a": "no", "b": 2}, {"a": "true", "b": 0}]),
    ("'nginx' in pkgs", [{"pkgs": ["nginx", "curl"]}, {"pkgs": []}]),
    ("foo is none", [{"foo": None}, {"foo": ""}]),
    ("ansible_facts.service_mgr == 'systemd'", [{}]),
    ("item.name is defined and item.name != ''",
     [{"item": {"name": "x"}}, {"item": {"name": ""}}, {"item": {}}]),
    ("x | ternary('a', 'b') == 'a'", [{"x": True}, {"x": False}]),
    ("users_deleted | length == 0", [{"users_deleted": []}, {"users_deleted": [{"username": "b"}]}]),
    ("'%s-%s' % (a, b) == 'x-y'", [{"a": "x", "b": "y"}, {"a": "x", "b": "z"}]),
    ("a ~ '-' ~ b == 'x-1'", [{"a": "x", "b": 1}, {"a": "y", "b": 1}]),
    ("port | int in [22, 2222]", [{"port": "22"}, {"port": 80}]),
    ("item.key.startswith('web') and item.value.enabled | bool",
     [{"item": {"key": "web1", "value": {"enabled": "yes"}}},
      {"item": {"key": "db1", "value": {"enabled": True}}}]),
    ("users | selectattr('x') | list | length > 0", [{"users": []}]),
]


def evaluate(expr, env, facts):
    variables = dict(env)
    variables["ansible_facts"] = dict(facts)
    for k, v in facts.items():
        variables["ansible_" + k] = v
    t = Templar(loader=DataLoader(), variables=variables)
    return t.evaluate_conditional(trust_as_template(expr))


rows = []
for expr, envs in CASES:
    for env in envs:
        for host, (froyo_facts, facts) in HOSTS.items():
            uses_facts = "ansible_" in expr
            if not uses_facts and host != "debian12":
                continue
            try:
                result = evaluate(expr, env, facts)
            except Exception as e:
                result = "error: " + type(e).__name__
            rows.append({"when": expr, "vars": env, "host": host, "result": result})

json.dump({"ansible_core": ansible.__version__,
           "hosts": {k: v[0] for k, v in HOSTS.items()},
           "rows": rows}, sys.stdout, indent=1)
sys.stdout.write("\n")
