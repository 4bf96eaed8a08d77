# Unit tests of world_writable.rego (`froyo policy test policies/`).
package froyo.world_writable_test

res(type, path, config) := {
	"id": sprintf("%s[%s]", [type, path]),
	"type": type,
	"name": path,
	"host": "web-01",
	"labels": {},
	"config": config,
}

file(path, mode) := res("linux.file::file", path, {"path": path, "mode": mode, "state": "file"})

dir(path, mode) := res("linux.file::directory", path, {"path": path, "mode": mode, "state": "directory"})

test_0666_file_denied if {
	ds := {m | some m in data.froyo.deny; m.rule == "world_writable"} with input as {"resources": [file("/etc/motd", "0666")]}
	count(ds) == 1
	some d in ds
	d.id == "linux.file::file[/etc/motd]"
	d.host == "web-01"
	contains(d.msg, "0666")
	contains(d.msg, "/etc/motd")
}

test_three_digit_modes_denied if {
	every mode in ["777", "666", "602", "003", "0777"] {
		count({m | some m in data.froyo.deny; m.rule == "world_writable"}) == 1 with input as {"resources": [file("/etc/x", mode)]}
	}
}

test_safe_modes_pass if {
	every mode in ["0644", "644", "0755", "0600", "0775", "0664", "4755", "0640", "0001", "0005"] {
		count({m | some m in data.froyo.deny; m.rule == "world_writable"}) == 0 with input as {"resources": [file("/etc/x", mode), dir("/srv/x", mode)]}
	}
}

test_no_mode_passes if {
	r := res("linux.file::file", "/etc/x", {"path": "/etc/x", "content": "x"})
	count({m | some m in data.froyo.deny; m.rule == "world_writable"}) == 0 with input as {"resources": [r]}
}

test_world_writable_directory_denied if {
	count({m | some m in data.froyo.deny; m.rule == "world_writable"}) == 1 with input as {"resources": [dir("/srv/share", "0777")]}
}

test_sticky_directory_only_warns if {
	inp := {"resources": [dir("/srv/drop", "1777")]}
	count({m | some m in data.froyo.deny; m.rule == "world_writable"}) == 0 with input as inp
	ws := {m | some m in data.froyo.warn; m.rule == "world_writable"} with input as inp
	count(ws) == 1
	some w in ws
	w.id == "linux.file::directory[/srv/drop]"
	contains(w.msg, "1777")
}

test_standard_shared_dirs_not_reported if {
	inp := {"resources": [dir("/tmp", "1777"), dir("/var/tmp", "1777"), dir("/dev/shm", "1777")]}
	count({m | some m in data.froyo.deny; m.rule == "world_writable"}) == 0 with input as inp
	count({m | some m in data.froyo.warn; m.rule == "world_writable"}) == 0 with input as inp
}

test_standard_shared_dirs_without_sticky_denied if {
	count({m | some m in data.froyo.deny; m.rule == "world_writable"}) == 1 with input as {"resources": [dir("/tmp", "0777")]}
}

test_sticky_file_still_denied if {
	count({m | some m in data.froyo.deny; m.rule == "world_writable"}) == 1 with input as {"resources": [file("/usr/local/bin/x", "1777")]}
}

test_download_mode_denied if {
	r := res("linux.net::download", "/opt/tool", {"dest": "/opt/tool", "mode": "0777", "url": "https://example.com/t", "sha256": "ab"})
	ds := {m | some m in data.froyo.deny; m.rule == "world_writable"} with input as {"resources": [r]}
	count(ds) == 1
	some d in ds
	contains(d.msg, "/opt/tool")
}

test_absent_ignored if {
	r := res("linux.file::file", "/etc/x", {"path": "/etc/x", "mode": "0666", "state": "absent"})
	count({m | some m in data.froyo.deny; m.rule == "world_writable"}) == 0 with input as {"resources": [r]}
}

test_other_types_ignored if {
	r := res("linux.exec::command", "x", {"shell": "chmod 777 /x", "mode": "0777"})
	count({m | some m in data.froyo.deny; m.rule == "world_writable"}) == 0 with input as {"resources": [r]}
}

test_allowed_paths_config if {
	inp := {"resources": [file("/srv/pub/x", "0666"), file("/etc/y", "0666")]}
	ds := {m.id | some m in data.froyo.deny; m.rule == "world_writable"} with input as inp
		with data.froyo.config as {"world_writable": {"allowed_paths": ["/srv/pub/x"]}}
	ds == {"linux.file::file[/etc/y]"}
}

test_without_config_defaults_apply if {
	count({m | some m in data.froyo.deny; m.rule == "world_writable"}) == 1 with input as {"resources": [file("/etc/motd", "0666")]}
		with data.froyo.config as {}
}
