# download_sha256: every download is pinned to a real SHA-256 checksum.
#
# What: denies a linux.net::download whose `sha256` is missing, is not 64 hex digits,
# or is an obvious placeholder: one digit repeated ("000…0"), a short pattern repeated
# ("deadbeef…", "0123456789abcdef…"), or the checksum of an empty file
# (e3b0c442…b855).
#
# Why: the checksum is what makes a download reproducible and safe against a
# compromised or changed upstream. A placeholder either fails every apply or, worse,
# gets "fixed" by pasting whatever the server returns today.
#
# The schema already requires 64 lowercase hex digits, so in practice this rule catches
# placeholders; the other checks keep it correct for resources built with resource()
# and older schemas. A checksum only known at apply time (a `$ref` or `$secret`
# marker) is not judged.
#
# Configure: nothing to configure.
# Disable: `[policy] disable = ["download_sha256"]`.
package froyo

download_sha256_empty_file := "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

# Why `sum` (a checksum value or null) is not acceptable, in words.
download_sha256_problem(sum) := "has no sha256" if {
	is_null(sum)
}

download_sha256_problem(sum) := sprintf("has sha256 %q, which is not 64 hex digits", [sum]) if {
	is_string(sum)
	not regex.match(`^[0-9a-fA-F]{64}$`, sum)
}

download_sha256_problem(sum) := sprintf("has the placeholder sha256 %q", [sum]) if {
	is_string(sum)
	regex.match(`^[0-9a-fA-F]{64}$`, sum)
	download_sha256_placeholder(lower(sum))
}

download_sha256_problem(sum) := "has the sha256 of an empty file" if {
	is_string(sum)
	lower(sum) == download_sha256_empty_file
}

# The 64 digits repeat with a period of at most 32: "0000…", "abab…", "deadbeef…".
download_sha256_placeholder(s) if {
	some k in [1, 2, 4, 8, 16, 32]
	substring(s, k, 64 - k) == substring(s, 0, 64 - k)
}

deny contains {
	"rule": "download_sha256",
	"id": r.id,
	"host": r.host,
	"msg": sprintf("download of %s %s; pin the real SHA-256 of the file (sha256sum FILE)", [url, problem]),
} if {
	some i in froyo_by_type["linux.net::download"]
	r := input.resources[i]
	sum := object.get(r.config, "sha256", null)
	problem := download_sha256_problem(sum)
	url := download_sha256_url(r)
}

download_sha256_url(r) := u if {
	u := r.config.url
	is_string(u)
} else := r.name
