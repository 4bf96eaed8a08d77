# world_writable: no file or directory that every user of the host can write.
#
# What: denies a linux.file::file, linux.file::directory or linux.net::download whose
# `mode` has the "other write" bit set ("0666", "777", "0602", ...).
#
# Why: any local user (or any compromised service account) can then replace a
# configuration file, a binary or a script that root later reads or runs.
#
# Exception: a *directory* with the sticky bit ("1777", like /tmp) is the usual way to
# share a drop directory: everyone may create files but only a file's owner may remove
# or rename it. That is reported as a warning (W-POLICY), not denied; for the standard
# shared directories /tmp, /var/tmp and /dev/shm it is not reported at all. The sticky
# bit on a regular file means nothing, so a file with "1777" is still denied.
#
# Resources with state "absent" are ignored (their mode is never applied).
#
# Configure (froyo.toml):
#
#     [policy.config.world_writable]
#     allowed_paths = ["/srv/dropbox"]   # exact paths exempted; default []
#
# Disable: `[policy] disable = ["world_writable"]`.
package froyo

# The types this rule looks at, and the config field that holds the path.
world_writable_types := {
	"linux.file::file": "path",
	"linux.file::directory": "path",
	"linux.net::download": "dest",
}

world_writable_config := c if {
	c := data.froyo.config.world_writable
	is_object(c)
} else := {}

world_writable_allowed_paths := object.get(world_writable_config, "allowed_paths", [])

# A mode string ("644", "0644", "1777") with the other-write bit: its last digit is
# 2, 3, 6 or 7. The suffix test screens out the usual modes before the pattern is tried.
world_writable_mode(mode) if {
	is_string(mode)
	strings.any_suffix_match(mode, ["2", "3", "6", "7"])
	regex.match(`^[0-7]*[2367]$`, mode)
}

# The sticky bit: a four-digit mode whose first digit is 1, 3, 5 or 7.
world_writable_sticky(mode) if {
	regex.match(`^[1357][0-7]{3}$`, mode)
}

# The resources at stake: (resource, its path, its mode).
world_writable_hits contains [r, path, mode] if {
	some type, field in world_writable_types
	some i in froyo_by_type[type]
	r := input.resources[i]
	mode := object.get(r.config, "mode", null)
	world_writable_mode(mode)
	not object.get(r.config, "state", "") == "absent"
	path := object.get(r.config, field, r.name)
	not path in world_writable_allowed_paths
}

deny contains {
	"rule": "world_writable",
	"id": r.id,
	"host": r.host,
	"msg": sprintf("mode %s lets every user write %s; drop the other-write bit (such as \"0644\" or \"0755\")", [mode, path]),
} if {
	some [r, path, mode] in world_writable_hits
	not world_writable_shared_dir(r, mode)
}

# Shared by design (FHS): 1777 is their normal mode.
world_writable_standard_shared := {"/tmp", "/var/tmp", "/dev/shm"}

warn contains {
	"rule": "world_writable",
	"id": r.id,
	"host": r.host,
	"msg": sprintf("mode %s lets every user create files in %s (the sticky bit keeps them from removing others' files); make sure a shared directory is intended", [mode, path]),
} if {
	some [r, path, mode] in world_writable_hits
	world_writable_shared_dir(r, mode)
	not path in world_writable_standard_shared
}

world_writable_shared_dir(r, mode) if {
	r.type == "linux.file::directory"
	world_writable_sticky(mode)
}
