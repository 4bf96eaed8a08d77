# Unit tests of latest_in_prod.rego (`froyo policy test policies/`).
package froyo.latest_in_prod_test

pkg(name, state, host, labels) := {
	"id": sprintf("linux.pkg::package[%s]", [name]),
	"type": "linux.pkg::package",
	"name": name,
	"host": host,
	"labels": labels,
	"config": {"name": name, "state": state, "manager": "auto"},
}

msgs(resources) := ms if {
	ms := {m | some m in data.froyo.deny; m.rule == "latest_in_prod"} with input as {"resources": resources}
}

msgs_cfg(resources, cfg) := ms if {
	ms := {m | some m in data.froyo.deny; m.rule == "latest_in_prod"} with input as {"resources": resources}
		with data.froyo.config as cfg
}

test_latest_on_prod_denied if {
	ms := msgs([pkg("nginx", "latest", "web-01", {"env": "prod", "role": "web"})])
	count(ms) == 1
	some m in ms
	m.id == "linux.pkg::package[nginx]"
	m.host == "web-01"
	contains(m.msg, "nginx")
	contains(m.msg, "env=prod")
}

test_one_message_per_host if {
	rs := [
		pkg("nginx", "latest", "web-01", {"env": "prod"}),
		pkg("nginx", "latest", "web-02", {"env": "prod"}),
		pkg("nginx", "latest", "web-03", {"env": "stage"}),
	]
	{m.host | some m in msgs(rs)} == {"web-01", "web-02"}
}

test_present_on_prod_passes if {
	count(msgs([pkg("nginx", "present", "web-01", {"env": "prod"})])) == 0
	count(msgs([pkg("nginx", "absent", "web-01", {"env": "prod"})])) == 0
}

test_latest_elsewhere_passes if {
	count(msgs([pkg("nginx", "latest", "web-01", {"env": "stage"})])) == 0
	count(msgs([pkg("nginx", "latest", "local", {})])) == 0
}

test_missing_labels_field_passes if {
	r := object.remove(pkg("nginx", "latest", "local", {}), ["labels"])
	count(msgs([r])) == 0
}

test_configured_label_and_value if {
	cfg := {"latest_in_prod": {"label": "tier", "value": "production"}}
	count(msgs_cfg([pkg("nginx", "latest", "a", {"tier": "production"})], cfg)) == 1
	count(msgs_cfg([pkg("nginx", "latest", "a", {"env": "prod"})], cfg)) == 0
}

test_configured_value_list if {
	cfg := {"latest_in_prod": {"value": ["prod", "production"]}}
	count(msgs_cfg([pkg("nginx", "latest", "a", {"env": "production"})], cfg)) == 1
	count(msgs_cfg([pkg("nginx", "latest", "a", {"env": "prod"})], cfg)) == 1
	count(msgs_cfg([pkg("nginx", "latest", "a", {"env": "dev"})], cfg)) == 0
}

test_partial_config_keeps_defaults if {
	count(msgs_cfg([pkg("nginx", "latest", "a", {"env": "prod"})], {"latest_in_prod": {}})) == 1
	count(msgs_cfg([pkg("nginx", "latest", "a", {"env": "prod"})], {"other_rule": {}})) == 1
}

test_package_group_names_listed if {
	r := object.union(pkg("lemp", "latest", "web-01", {"env": "prod"}), {"config": {"names": ["nginx", "php-fpm"]}})
	ms := msgs([r])
	count(ms) == 1
	some m in ms
	contains(m.msg, "nginx, php-fpm")
}
