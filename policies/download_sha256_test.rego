# Unit tests of download_sha256.rego (`froyo policy test policies/`).
package froyo.download_sha256_test

real := "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

dl(config) := {
	"id": "linux.net::download[/opt/tool.tar.gz]",
	"type": "linux.net::download",
	"name": "/opt/tool.tar.gz",
	"host": "local",
	"labels": {},
	"config": object.union({"dest": "/opt/tool.tar.gz", "url": "https://example.com/tool.tar.gz"}, config),
}

msgs(config) := ms if {
	ms := {m | some m in data.froyo.deny; m.rule == "download_sha256"} with input as {"resources": [dl(config)]}
}

test_real_checksum_passes if {
	count(msgs({"sha256": real})) == 0
}

test_uppercase_real_checksum_passes if {
	count(msgs({"sha256": upper(real)})) == 0
}

test_missing_denied if {
	ms := msgs({})
	count(ms) == 1
	some m in ms
	m.id == "linux.net::download[/opt/tool.tar.gz]"
	m.host == "local"
	contains(m.msg, "no sha256")
	contains(m.msg, "https://example.com/tool.tar.gz")
}

test_null_denied if {
	count(msgs({"sha256": null})) == 1
}

test_short_denied if {
	ms := msgs({"sha256": "abc123"})
	count(ms) == 1
	some m in ms
	contains(m.msg, "not 64 hex digits")
}

test_non_hex_denied if {
	count(msgs({"sha256": concat("", ["g", substring(real, 1, 63)])})) == 1
}

test_zeros_denied if {
	ms := msgs({"sha256": "0000000000000000000000000000000000000000000000000000000000000000"})
	count(ms) == 1
	some m in ms
	contains(m.msg, "placeholder")
}

test_repeated_digit_denied if {
	every d in ["1", "a", "f", "F"] {
		count(msgs({"sha256": concat("", [d | some _ in numbers.range(1, 64)])})) == 1
	}
}

test_repeated_pattern_denied if {
	every p in ["deadbeef", "0123456789abcdef", "ab"] {
		s := concat("", [p | some _ in numbers.range(1, 64 / count(p))])
		count(s) == 64
		count(msgs({"sha256": s})) == 1
	}
}

test_empty_file_checksum_denied if {
	ms := msgs({"sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"})
	count(ms) == 1
	some m in ms
	contains(m.msg, "empty file")
}

test_deferred_checksum_not_judged if {
	count(msgs({"sha256": {"$ref": {"fmt": [{"lit": "x"}]}}})) == 0
}

test_other_types_ignored if {
	r := object.union(dl({}), {"type": "linux.file::file"})
	count({m | some m in data.froyo.deny; m.rule == "download_sha256"}) == 0 with input as {"resources": [r]}
}
