# sshd_password_login: the SSH server accepts neither passwords nor root logins.
#
# What: denies a linux.file::file whose path is /etc/ssh/sshd_config or a file under
# /etc/ssh/sshd_config.d/ and whose content has an active (not commented out) line
# `PasswordAuthentication yes` or `PermitRootLogin yes`. Keywords and values are matched
# case-insensitively, like sshd does, in both the `Keyword value` and `Keyword=value`
# forms, inside `Match` blocks too. One message per offending keyword.
#
# Why: password logins are what SSH brute-force bots try all day, and a direct root
# login leaves no trace of who logged in. Use keys (`PasswordAuthentication no`) and
# `PermitRootLogin no` or `prohibit-password`, and become root with sudo.
#
# The content is checked when it is a plain string or template()/asset() content
# (its rendered text, else the template's source). Content from a secret() is not
# known before apply and is not checked. A file with state "absent" is ignored.
#
# Configure: nothing to configure.
# Disable: `[policy] disable = ["sshd_password_login"]`.
package froyo

sshd_password_login_keywords := {
	"passwordauthentication": "PasswordAuthentication",
	"permitrootlogin": "PermitRootLogin",
}

sshd_password_login_path(path) if path == "/etc/ssh/sshd_config"

sshd_password_login_path(path) if startswith(path, "/etc/ssh/sshd_config.d/")

# The text of a content value, when it is known before apply.
sshd_password_login_text(c) := c if is_string(c)

sshd_password_login_text(c) := t if {
	t := c["$content"].text
	is_string(t)
}

sshd_password_login_text(c) := t if {
	not c["$content"].text
	t := c["$content"].template
	is_string(t)
}

deny contains {
	"rule": "sshd_password_login",
	"id": r.id,
	"host": r.host,
	"msg": sprintf("the sshd configuration %s sets %s yes; use %s instead", [path, keyword, sshd_password_login_fix[keyword]]),
} if {
	some i in froyo_by_type["linux.file::file"]
	r := input.resources[i]
	path := object.get(r.config, "path", r.name)
	sshd_password_login_path(path)
	not object.get(r.config, "state", "file") == "absent"
	text := sshd_password_login_text(r.config.content)
	some line in split(text, "\n")
	l := lower(trim_space(line))
	not startswith(l, "#")
	regex.match(`^(passwordauthentication|permitrootlogin)([ \t]+|[ \t]*=[ \t]*)"?yes"?([ \t]|#|$)`, l)
	keyword := sshd_password_login_keywords[regex.split(`[ \t=]`, l)[0]]
}

sshd_password_login_fix := {
	"PasswordAuthentication": "PasswordAuthentication no (key-based logins)",
	"PermitRootLogin": "PermitRootLogin no or prohibit-password, and sudo",
}
