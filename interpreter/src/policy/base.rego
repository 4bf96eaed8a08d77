# The module froyo loads before every policy (bundled or the project's), and before the
# tests of `froyo policy test`: it declares both sets, so a project with no rule of one
# kind still evaluates, and indexes the input's resources by type for the rules.
package froyo

deny contains x if {
	some x in []
}

warn contains x if {
	some x in []
}

# `froyo_by_type[t]` is the set of positions in input.resources of the resources of type
# t, computed once per evaluation. A rule that judges one type visits only those
# resources (`some i in froyo_by_type["linux.pkg::package"]; r := input.resources[i]`)
# instead of scanning every resource of the graph and skipping the others.
froyo_by_type[t] contains i if {
	some i, r in input.resources
	t := r.type
}
