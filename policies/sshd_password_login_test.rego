# Unit tests of sshd_password_login.rego (`froyo policy test policies/`).
package froyo.sshd_password_login_test

file(path, content) := {
	"id": sprintf("linux.file::file[%s]", [path]),
	"type": "linux.file::file",
	"name": path,
	"host": "web-01",
	"labels": {},
	"config": {"path": path, "content": content, "state": "file"},
}

msgs(resources) := ms if {
	ms := {m | some m in data.froyo.deny; m.rule == "sshd_password_login"} with input as {"resources": resources}
}

test_password_authentication_yes_denied if {
	ms := msgs([file("/etc/ssh/sshd_config", "Port 22\nPasswordAuthentication yes\n")])
	count(ms) == 1
	some m in ms
	m.id == "linux.file::file[/etc/ssh/sshd_config]"
	m.host == "web-01"
	contains(m.msg, "PasswordAuthentication yes")
}

test_permit_root_login_yes_denied if {
	ms := msgs([file("/etc/ssh/sshd_config.d/10-root.conf", "PermitRootLogin yes\n")])
	count(ms) == 1
	some m in ms
	contains(m.msg, "PermitRootLogin yes")
}

test_both_give_two_messages if {
	count(msgs([file("/etc/ssh/sshd_config", "PermitRootLogin yes\nPasswordAuthentication yes\n")])) == 2
}

test_case_spacing_and_equals_forms_denied if {
	every line in [
		"passwordauthentication YES",
		"  PasswordAuthentication\tyes",
		"PasswordAuthentication=yes",
		"PasswordAuthentication = \"yes\"",
		"PERMITROOTLOGIN Yes",
		"PasswordAuthentication yes\r",
	] {
		count(msgs([file("/etc/ssh/sshd_config", concat("\n", ["Port 22", line, ""]))])) == 1
	}
}

test_inside_match_block_denied if {
	c := "PasswordAuthentication no\nMatch Address 10.0.0.0/8\n    PasswordAuthentication yes\n"
	count(msgs([file("/etc/ssh/sshd_config", c)])) == 1
}

test_safe_settings_pass if {
	c := concat("\n", [
		"PasswordAuthentication no",
		"PermitRootLogin prohibit-password",
		"PermitRootLogin without-password",
		"KbdInteractiveAuthentication no",
		"PasswordAuthenticationX yes",
		"PermitRootLogin yesterday",
		"",
	])
	count(msgs([file("/etc/ssh/sshd_config", c)])) == 0
}

test_comments_ignored if {
	c := "#PasswordAuthentication yes\n   # PermitRootLogin yes\nPasswordAuthentication no\n"
	count(msgs([file("/etc/ssh/sshd_config", c)])) == 0
}

test_other_paths_ignored if {
	every path in ["/etc/ssh/ssh_config", "/etc/ssh/sshd_config.bak", "/home/u/sshd_config", "/etc/ssh/ssh_config.d/x.conf"] {
		count(msgs([file(path, "PasswordAuthentication yes\n")])) == 0
	}
}

test_template_text_checked if {
	c := {"$content": {"source": "template", "path": "sshd_config.j2", "sha256": "ab", "text": "PermitRootLogin yes\n"}}
	count(msgs([file("/etc/ssh/sshd_config", c)])) == 1
}

test_template_source_checked_when_text_unknown if {
	c := {"$content": {
		"source": "template",
		"path": "sshd_config.j2",
		"sha256": "ab",
		"template": "PasswordAuthentication yes\nAllowUsers {{ user }}\n",
		"vars": {"user": {"$secret": "env://U"}},
	}}
	count(msgs([file("/etc/ssh/sshd_config", c)])) == 1
}

test_secret_content_not_checked if {
	count(msgs([file("/etc/ssh/sshd_config", {"$secret": "env://SSHD"})])) == 0
}

test_no_content_passes if {
	r := {"id": "linux.file::file[/etc/ssh/sshd_config]", "type": "linux.file::file", "name": "/etc/ssh/sshd_config", "host": "h", "config": {"path": "/etc/ssh/sshd_config", "mode": "0600"}}
	count(msgs([r])) == 0
}

test_absent_ignored if {
	r := object.union(file("/etc/ssh/sshd_config.d/50-cloud-init.conf", "PasswordAuthentication yes\n"), {"config": {"state": "absent"}})
	count(msgs([r])) == 0
}
