# latest_in_prod: production hosts do not upgrade packages behind your back.
#
# What: denies a linux.pkg::package with state "latest" on a host whose inventory
# labels mark it as production (by default the label env=prod).
#
# Why: "latest" upgrades the package to whatever the repository offers on every apply,
# so two applies of the same playbook can install different versions, and an upstream
# release can restart or break a production service without any change being
# reviewed. In production, use state "present" (optionally with `version`) and upgrade
# on purpose.
#
# Configure (froyo.toml):
#
#     [policy.config.latest_in_prod]
#     label = "env"                    # the label to look at; default "env"
#     value = "prod"                   # its production value; default "prod";
#                                      # a list such as ["prod", "production"] also works
#
# Disable: `[policy] disable = ["latest_in_prod"]`.
package froyo

latest_in_prod_config := c if {
	c := data.froyo.config.latest_in_prod
	is_object(c)
} else := {}

latest_in_prod_label := object.get(latest_in_prod_config, "label", "env")

latest_in_prod_values := v if {
	v := object.get(latest_in_prod_config, "value", "prod")
	is_array(v)
} else := [object.get(latest_in_prod_config, "value", "prod")]

deny contains {
	"rule": "latest_in_prod",
	"id": r.id,
	"host": r.host,
	"msg": sprintf("state \"latest\" upgrades %s on every apply to %s (%s=%s, production); use state \"present\" (with a version if needed) and upgrade on purpose", [latest_in_prod_what(r), r.host, latest_in_prod_label, value]),
} if {
	some i in froyo_by_type["linux.pkg::package"]
	r := input.resources[i]
	object.get(r.config, "state", "present") == "latest"
	value := object.get(object.get(r, "labels", {}), latest_in_prod_label, null)
	value in latest_in_prod_values
}

# What is upgraded: the package, or the packages of a group.
latest_in_prod_what(r) := concat(", ", ns) if {
	ns := r.config.names
	is_array(ns)
	count(ns) > 0
} else := r.name
