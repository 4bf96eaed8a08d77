# Unit tests of plain_secret.rego (`froyo policy test policies/`). The credentials below
# are dummies (AKIAIOSFODNN7EXAMPLE is AWS's documented example key id).
package froyo.plain_secret_test

aws := "AKIAIOSFODNN7EXAMPLE"

pem := "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ==\n-----END OPENSSH PRIVATE KEY-----\n"

res(type, name, config) := {
	"id": sprintf("%s[%s]", [type, name]),
	"type": type,
	"name": name,
	"host": "web-01",
	"labels": {},
	"config": config,
}

msgs(resources) := ms if {
	ms := {m | some m in data.froyo.deny; m.rule == "plain_secret"} with input as {"resources": resources}
}

msgs_cfg(resources, cfg) := ms if {
	ms := {m | some m in data.froyo.deny; m.rule == "plain_secret"} with input as {"resources": resources}
		with data.froyo.config as cfg
}

test_private_key_in_content_denied if {
	ms := msgs([res("linux.file::file", "/root/.ssh/id_ed25519", {"path": "/root/.ssh/id_ed25519", "content": pem})])
	count(ms) == 1
	some m in ms
	m.id == "linux.file::file[/root/.ssh/id_ed25519]"
	m.host == "web-01"
	contains(m.msg, "config content ")
	contains(m.msg, "private key")
	not contains(m.msg, "BEGIN")
}

test_rsa_ec_pgp_keys_denied if {
	every header in ["-----BEGIN RSA PRIVATE KEY-----", "-----BEGIN EC PRIVATE KEY-----", "-----BEGIN PRIVATE KEY-----", "-----BEGIN ENCRYPTED PRIVATE KEY-----", "-----BEGIN PGP PRIVATE KEY BLOCK-----"] {
		count(msgs([res("linux.file::file", "/k", {"content": concat("\n", [header, "MIIB", ""])})])) == 1
	}
}

test_public_key_and_certificate_pass if {
	c := "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n"
	count(msgs([res("linux.file::file", "/etc/ssl/x.pem", {"content": c})])) == 0
}

test_aws_key_in_nested_env_denied if {
	r := res("linux.exec::command", "sync", {"argv": ["aws", "s3", "sync"], "env": {"AWS_ACCESS_KEY_ID": aws}})
	ms := msgs([r])
	count(ms) == 1
	some m in ms
	contains(m.msg, "config env.AWS_ACCESS_KEY_ID ")
	contains(m.msg, "AWS access key id")
	not contains(m.msg, aws)
}

test_token_in_list_names_index if {
	r := res("linux.exec::command", "c", {"argv": ["curl", "-H", "Authorization: token ghp_0123456789abcdefghijABCDEFGHIJ012345", "https://api.github.com"]})
	ms := msgs([r])
	count(ms) == 1
	some m in ms
	contains(m.msg, "config argv[2] ")
	contains(m.msg, "GitHub token")
}

test_token_formats_denied if {
	every t in [
		"github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
		"glpat-abcdefghij0123456789",
		"xoxb-123456789012-abcdefghijkl",
		"xoxp-1234567890-abcdefgh",
		# the shortest string the rule looks at (15 characters)
		"xoxb-1234567890",
		"sk_live_0123456789abcdefghijklmn",
		"AIzaSyA0123456789abcdefghijklmnopqrstuv",
		"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
		"ASIAIOSFODNN7EXAMPLE",
	] {
		count(msgs([res("linux.exec::command", "c", {"shell": t})])) == 1
	}
}

test_lookalikes_pass if {
	every s in [
		"hello world",
		"AKIA-not-a-key",
		"XAKIAIOSFODNN7EXAMPLEX",
		"ghp_short",
		"xoxb-",
		"eyJhbGciOiJIUzI1NiJ9",
		"/etc/ssh/ssh_host_ed25519_key",
		"PasswordAuthentication no",
	] {
		count(msgs([res("linux.exec::command", "c", {"shell": s})])) == 0
	}
}

test_secret_markers_skipped if {
	r := res("linux.file::file", "/etc/app.env", {
		"path": "/etc/app.env",
		"content": {"$secret": "env://APP_ENV"},
		"headers": {"Authorization": {"$secret": {"fmt": [{"lit": "Bearer "}, {"secret": "env://TOKEN"}]}}},
	})
	count(msgs([r])) == 0
}

test_lookalike_inside_secret_marker_skipped if {
	r := res("linux.net::download", "/opt/x", {"headers": {"X-Key": {"$secret": {"fmt": [{"lit": aws}]}}}})
	count(msgs([r])) == 0
}

test_content_text_checked if {
	r := res("linux.file::file", "/etc/app.env", {
		"path": "/etc/app.env",
		"content": {"$content": {"source": "asset", "path": "files/app.env", "sha256": "ab", "text": concat("", ["KEY_ID=", aws, "\n"])}},
	})
	ms := msgs([r])
	count(ms) == 1
	some m in ms
	contains(m.msg, "config content.$content.text ")
}

test_template_source_checked_but_secret_vars_skipped if {
	r := res("linux.file::file", "/etc/app.env", {"content": {"$content": {
		"source": "template",
		"path": "app.env.j2",
		"sha256": "ab",
		"template": "KEY={{ key }}\n",
		"vars": {"key": {"$secret": "env://KEY"}},
	}}})
	count(msgs([r])) == 0
}

test_every_resource_type_checked if {
	r := res("linux.user::user", "deploy", {"name": "deploy", "password_hash": pem})
	count(msgs([r])) == 1
}

test_ignore_ids_config if {
	rs := [
		res("linux.file::file", "/srv/test/fixture.pem", {"content": pem}),
		res("linux.file::file", "/root/key", {"content": pem}),
	]
	ms := msgs_cfg(rs, {"plain_secret": {"ignore_ids": ["linux.file::file[/srv/test/fixture.pem]"]}})
	{m.id | some m in ms} == {"linux.file::file[/root/key]"}
}

test_deeply_nested_value_found if {
	r := res("linux.exec::command", "c", {"env": {"a": [{"b": {"c": [[{"d": aws}]]}}]}})
	ms := msgs([r])
	count(ms) == 1
	some m in ms
	contains(m.msg, "config env.a[0].b.c[0][0].d ")
}
