# Unit tests of firewall_open_world.rego (`froyo policy test policies/`).
package froyo.firewall_open_world_test

rule(name, config) := {
	"id": sprintf("linux.firewall::rule[%s]", [name]),
	"type": "linux.firewall::rule",
	"name": name,
	"host": "web-01",
	"labels": {},
	"config": object.union({"name": name, "proto": "tcp", "source": "any", "action": "allow", "direction": "in"}, config),
}

msgs(resources) := ms if {
	ms := {m | some m in data.froyo.deny; m.rule == "firewall_open_world"} with input as {"resources": resources}
}

msgs_cfg(resources, cfg) := ms if {
	ms := {m | some m in data.froyo.deny; m.rule == "firewall_open_world"} with input as {"resources": resources}
		with data.froyo.config as cfg
}

test_ssh_open_to_world_denied if {
	ms := msgs([rule("ssh", {"port": 22})])
	count(ms) == 1
	some m in ms
	m.id == "linux.firewall::rule[ssh]"
	m.host == "web-01"
	contains(m.msg, "port 22")
	contains(m.msg, "source any")
}

test_world_sources_denied if {
	every src in ["any", "0.0.0.0/0", "::/0"] {
		count(msgs([rule("db", {"port": 5432, "source": src})])) == 1
	}
}

test_defaults_filled_in_or_not if {
	# The engine fills in schema defaults, but a bare config is judged the same way.
	r := {"id": "linux.firewall::rule[x]", "type": "linux.firewall::rule", "name": "x", "host": "h", "config": {"name": "x", "port": 22}}
	count(msgs([r])) == 1
}

test_web_ports_pass if {
	count(msgs([rule("http", {"port": 80}), rule("https", {"port": 443})])) == 0
}

test_restricted_source_passes if {
	every src in ["10.0.0.0/8", "192.168.1.10", "2001:db8::/32", "0.0.0.0/1"] {
		count(msgs([rule("ssh", {"port": 22, "source": src})])) == 0
	}
}

test_deny_reject_and_outgoing_pass if {
	count(msgs([rule("a", {"port": 22, "action": "deny"})])) == 0
	count(msgs([rule("b", {"port": 22, "action": "reject"})])) == 0
	count(msgs([rule("c", {"port": 22, "direction": "out"})])) == 0
	count(msgs([rule("d", {"action": "deny"})])) == 0
}

test_all_ports_always_denied if {
	ms := msgs([rule("all", {})])
	count(ms) == 1
	some m in ms
	contains(m.msg, "every tcp port")
	count(msgs_cfg([rule("all", {})], {"firewall_open_world": {"allowed_ports": [22, 80, 443]}})) == 1
}

test_icmp_not_judged if {
	count(msgs([rule("ping", {"proto": "icmp"})])) == 0
}

test_udp_port_denied if {
	ms := msgs([rule("dns", {"port": 53, "proto": "udp"})])
	count(ms) == 1
	some m in ms
	contains(m.msg, "udp port 53")
}

test_ranges if {
	count(msgs([rule("r", {"port": "8000-8100"})])) == 1
	count(msgs([rule("r", {"port": "80-443"})])) == 1
	count(msgs([rule("r", {"port": "443-443"})])) == 0
	count(msgs_cfg([rule("r", {"port": "8000-8002"})], {"firewall_open_world": {"allowed_ports": [8000, 8001, 8002]}})) == 0
	count(msgs_cfg([rule("r", {"port": "8000-8003"})], {"firewall_open_world": {"allowed_ports": [8000, 8001, 8002]}})) == 1
}

test_configured_ports if {
	cfg := {"firewall_open_world": {"allowed_ports": [25, 587]}}
	count(msgs_cfg([rule("smtp", {"port": 25})], cfg)) == 0
	count(msgs_cfg([rule("http", {"port": 80})], cfg)) == 1
}

test_empty_config_keeps_defaults if {
	count(msgs_cfg([rule("http", {"port": 80})], {})) == 0
	count(msgs_cfg([rule("http", {"port": 80})], {"firewall_open_world": {}})) == 0
	count(msgs_cfg([rule("ssh", {"port": 22})], {"firewall_open_world": {}})) == 1
}
