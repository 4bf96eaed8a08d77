# plain_secret: no credential written in plain text in a playbook.
#
# What: denies a resource when a plain string anywhere in its config (nested objects and
# lists included, and the text or template source of template()/asset() content) looks
# like a private key ("-----BEGIN ... PRIVATE KEY-----") or a well-known token: an AWS
# access key id (AKIA…/ASIA…), a GitHub token (ghp_…, gho_…, ghu_…, ghs_…, ghr_…,
# github_pat_…), a GitLab token (glpat-…), a Slack token (xoxa-/xoxb-/xoxp-/xoxr-…),
# a Stripe live secret key (sk_live_…), a Google API key (AIza…) or a JWT (eyJ….eyJ….).
#
# Why: a playbook ends up in version control, in plan files and in CI logs. Secrets go
# through secret("env://NAME") or secret("file://…#key"): they are resolved only at
# apply time and masked everywhere. Values inside a `$secret` marker are therefore
# skipped; the message names where the value is (config path), never the value.
#
# Configure (froyo.toml), for example for test fixtures holding dummy keys:
#
#     [policy.config.plain_secret]
#     ignore_ids = ["linux.file::file[/srv/test/fixture.pem]"]   # default []
#
# Disable: `[policy] disable = ["plain_secret"]`.
package froyo

# kind of credential -> pattern (Rust regex syntax).
plain_secret_patterns := {
	"a private key": `-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----`,
	"an AWS access key id": `(^|[^0-9A-Za-z])(AKIA|ASIA)[0-9A-Z]{16}([^0-9A-Za-z]|$)`,
	"a GitHub token": `(^|[^0-9A-Za-z_])(gh[pousr]_[0-9A-Za-z]{36}|github_pat_[0-9A-Za-z_]{22,})`,
	"a GitLab token": `(^|[^0-9A-Za-z_])glpat-[0-9A-Za-z_-]{20,}`,
	"a Slack token": `(^|[^0-9A-Za-z_])xox[abpr]-[0-9A-Za-z-]{10,}`,
	"a Stripe secret key": `(^|[^0-9A-Za-z_])sk_live_[0-9A-Za-z]{24,}`,
	"a Google API key": `(^|[^0-9A-Za-z_])AIza[0-9A-Za-z_-]{35}`,
	"a JWT": `(^|[^0-9A-Za-z_-])eyJ[0-9A-Za-z_-]{8,}\.eyJ[0-9A-Za-z_-]{8,}\.[0-9A-Za-z_-]*`,
}

# kind -> a literal every match contains. regex.match compiles its pattern on every
# call, so strings are screened with contains() first and only candidates are matched.
plain_secret_hints := {
	"a private key": ["PRIVATE KEY"],
	"an AWS access key id": ["AKIA", "ASIA"],
	"a GitHub token": ["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
	"a GitLab token": ["glpat-"],
	"a Slack token": ["xox"],
	"a Stripe secret key": ["sk_live_"],
	"a Google API key": ["AIza"],
	"a JWT": ["eyJ"],
}

# Every hint as one pattern (they are letters, digits, `_`, `-` and spaces, which JSON
# text never escapes and a pattern takes literally). A config whose JSON text holds none
# of them holds no credential and is not walked; a graph whose text holds none (the usual
# case) is settled by one match, instead of a walk over every value of every config.
plain_secret_any_hint := concat("|", [h | some hints in plain_secret_hints; some h in hints])

# The positions of the resources worth walking.
plain_secret_screened contains i if {
	regex.match(plain_secret_any_hint, json.marshal(input.resources))
	some i, r in input.resources
	regex.match(plain_secret_any_hint, json.marshal(r.config))
}

plain_secret_candidate(value, kind) if {
	some hint in plain_secret_hints[kind]
	contains(value, hint)
}

plain_secret_config := c if {
	c := data.froyo.config.plain_secret
	is_object(c)
} else := {}

plain_secret_ignore_ids := object.get(plain_secret_config, "ignore_ids", [])

# A config path as text: content.$content.text, headers.Authorization, keys[0].
plain_secret_path(path) := concat("", [seg |
	some i, p in path
	seg := plain_secret_segment(i, p)
])

plain_secret_segment(_, p) := sprintf("[%v]", [p]) if is_number(p)

plain_secret_segment(i, p) := p if {
	is_string(p)
	i == 0
}

plain_secret_segment(i, p) := concat("", [".", p]) if {
	is_string(p)
	i > 0
}

# A value inside a `$secret` marker (resolved at apply time, masked everywhere).
plain_secret_under_marker(path) if {
	some p in path
	p == "$secret"
}

deny contains {
	"rule": "plain_secret",
	"id": r.id,
	"host": r.host,
	"msg": sprintf("config %s holds what looks like %s in plain text; pass it with secret(\"env://NAME\") or secret(\"file://...\") instead", [plain_secret_path(path), kind]),
} if {
	some i in plain_secret_screened
	r := input.resources[i]
	not r.id in plain_secret_ignore_ids
	walk(r.config, [path, value])
	is_string(value)
	# Every credential above is at least 15 characters (a Slack token): shorter strings (modes, states,
	# most names) are skipped before any pattern is tried.
	count(value) >= 15
	not plain_secret_under_marker(path)
	some kind, pattern in plain_secret_patterns
	plain_secret_candidate(value, kind)
	regex.match(pattern, value)
}
