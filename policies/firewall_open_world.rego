# firewall_open_world: the firewall opens only public ports to the whole internet.
#
# What: denies a linux.firewall::rule that allows incoming traffic (action "allow",
# direction "in", the defaults) from anywhere (source "any", the default, or
# "0.0.0.0/0" or "::/0") unless its port is one of the allowed public ports (by default
# 80 and 443). A port range is accepted only when every port in it is allowed. A rule
# without a port (every port) open to the world is always denied. ICMP rules (ping)
# have no port and are not judged.
#
# Why: an admin port (SSH, databases, dashboards) reachable from the whole internet is
# scanned and attacked within minutes. Restrict `source` to the networks that need it
# (a VPN or office CIDR such as "10.0.0.0/8"), or declare the port public.
#
# Configure (froyo.toml):
#
#     [policy.config.firewall_open_world]
#     allowed_ports = [80, 443, 25]     # ports that may be open to anyone; default [80, 443]
#
# Disable: `[policy] disable = ["firewall_open_world"]`.
package froyo

firewall_open_world_sources := {"any", "0.0.0.0/0", "::/0"}

firewall_open_world_config := c if {
	c := data.froyo.config.firewall_open_world
	is_object(c)
} else := {}

firewall_open_world_allowed := {p | some p in object.get(firewall_open_world_config, "allowed_ports", [80, 443])}

# The rules that let anyone in, with a description of what they open.
firewall_open_world_open contains [r, proto, source] if {
	some i in froyo_by_type["linux.firewall::rule"]
	r := input.resources[i]
	object.get(r.config, "action", "allow") == "allow"
	object.get(r.config, "direction", "in") == "in"
	source := object.get(r.config, "source", "any")
	source in firewall_open_world_sources
	proto := object.get(r.config, "proto", "tcp")
	proto != "icmp"
}

# A port (a number, or a "low-high" range) whose every port is allowed.
firewall_open_world_port_ok(port) if {
	is_number(port)
	port in firewall_open_world_allowed
}

firewall_open_world_port_ok(port) if {
	is_string(port)
	bounds := split(port, "-")
	count(bounds) == 2
	lo := to_number(bounds[0])
	hi := to_number(bounds[1])
	lo <= hi
	count({p | some p in firewall_open_world_allowed; is_number(p); p >= lo; p <= hi}) == (hi - lo) + 1
}

deny contains {
	"rule": "firewall_open_world",
	"id": r.id,
	"host": r.host,
	"msg": sprintf("lets anyone (source %s) reach %s port %v; restrict source to a CIDR, or list the port in [policy.config.firewall_open_world] allowed_ports", [source, proto, port]),
} if {
	some [r, proto, source] in firewall_open_world_open
	port := r.config.port
	not is_null(port)
	not firewall_open_world_port_ok(port)
}

deny contains {
	"rule": "firewall_open_world",
	"id": r.id,
	"host": r.host,
	"msg": sprintf("lets anyone (source %s) reach every %s port; give a port, or restrict source to a CIDR", [source, proto]),
} if {
	some [r, proto, source] in firewall_open_world_open
	firewall_open_world_no_port(r.config)
}

firewall_open_world_no_port(config) if not "port" in object.keys(config)

firewall_open_world_no_port(config) if is_null(config.port)
