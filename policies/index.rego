# index: the input's resources grouped by type, shared by the bundled rules (not a rule:
# it adds no message).
#
# `froyo_by_type[t]` is the set of positions in input.resources of the resources of type
# t, computed once per evaluation. A rule that judges one type visits only those
# resources (`some i in froyo_by_type["linux.pkg::package"]; r := input.resources[i]`)
# instead of scanning every resource of the graph and skipping the others, which was
# most of the policy time on large graphs.
package froyo

froyo_by_type[t] contains i if {
	some i, r in input.resources
	t := r.type
}
