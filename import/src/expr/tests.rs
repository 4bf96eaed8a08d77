//! The translator against Ansible: real `when:` conditions translated, then evaluated as
//! Starlark (with `@stdlib//ansible.star`) on the vars and facts Ansible evaluated them on.

use super::*;

use starlark::environment::{GlobalsBuilder, LibraryExtension, Module};
use starlark::eval::Evaluator;
use starlark::syntax::{AstModule, Dialect};

fn scope_with_item() -> Scope {
    let mut s = Scope::new();
    s.locals.push(("item".into(), "item".into()));
    s
}

fn when(src: &str) -> String {
    condition(&[src], &scope_with_item())
        .unwrap_or_else(|e| panic!("{src}: {e:?}"))
        .plan_expr()
        .unwrap()
}

fn value(src: &str) -> String {
    template_value(src, &scope_with_item()).unwrap_or_else(|e| panic!("{src}: {e:?}"))
}

/// The Starlark text of real conditions and argument values (the research note's §1.4
/// shapes, and the arguments of singleplatform-eng/ansible-users).
#[test]
fn translations_read_as_a_person_would_write_them() {
    let table = [
        (
            "security_fail2ban_enabled | bool",
            r#"ansible_bool(v["security_fail2ban_enabled"])"#,
        ),
        (
            "'group' not in item and users_create_per_user_group",
            r#""group" not in item and v["users_create_per_user_group"]"#,
        ),
        ("nginx_user is not defined", r#""nginx_user" not in v"#),
        ("item.gid is defined", r#""gid" in item"#),
        (
            "security_ssh_allowed_users | length > 0",
            r#"len(v["security_ssh_allowed_users"]) > 0"#,
        ),
        (
            "ansible_facts.os_family == 'Debian'",
            r#"host.facts.os.basic.family == "debian""#,
        ),
        (
            "ansible_os_family == 'RedHat'",
            r#"host.facts.os.basic.family == "rhel""#,
        ),
        (
            "ansible_facts['distribution'] == 'Ubuntu'",
            r#"host.facts.os.basic.distro == "ubuntu""#,
        ),
        (
            "ansible_distribution_major_version | int >= 12",
            r#"int(host.facts.os.basic.version.split(".")[0]) >= 12"#,
        ),
        (
            "ansible_os_family in ['Debian', 'Suse']",
            r#"host.facts.os.basic.family in ["debian", "suse"]"#,
        ),
        (
            "ansible_kernel is version('5.4', '>=')",
            r#"version_compare(host.facts.os.basic.kernel, "5.4", ">=")"#,
        ),
        (
            "flag | default(false) | bool",
            r#"ansible_bool(v.get("flag", False))"#,
        ),
        ("not (a | bool)", r#"not ansible_bool(v["a"])"#),
        (
            "(a | bool) or (b | int > 3)",
            r#"ansible_bool(v["a"]) or int(v["b"]) > 3"#,
        ),
        (
            "a ~ '-' ~ b == 'x-1'",
            r#"str(v["a"]) + "-" + str(v["b"]) == "x-1""#,
        ),
    ];
    for (src, want) in table {
        assert_eq!(when(src), want, "{src}");
    }
    let values = [
        ("{{ item.name }}", r#"item["name"]"#),
        ("{{ item.gid | default(omit) }}", r#"item.get("gid")"#),
        (
            "{{ item.gid | default(item.uid) | default(omit) }}",
            r#"item.get("gid", item.get("uid"))"#,
        ),
        (
            "{{ item.groups | join(',') if 'groups' in item else '' }}",
            r#"",".join(item["groups"]) if "groups" in item else """#,
        ),
        (
            "{{ item.home | default('/home/' + item.username) }}",
            r#"item.get("home", "/home/" + item["username"])"#,
        ),
        (
            "{{ item.home | default('/home/' + item.username) }}/.profile",
            r#"str(item.get("home", "/home/" + item["username"])) + "/.profile""#,
        ),
        (
            "PasswordAuthentication {{ security_ssh_password_authentication }}",
            r#""PasswordAuthentication " + str(v["security_ssh_password_authentication"])"#,
        ),
        ("{{ a }}-{{ b }}%", r#""%s-%s%%" % (v["a"], v["b"])"#),
        ("/etc/nginx", r#""/etc/nginx""#),
        ("{{ inventory_hostname }}", "host.name"),
        (
            "{{ ansible_processor_vcpus | default(ansible_processor_count) }}",
            "host.facts.hw.cpu.count",
        ),
    ];
    for (src, want) in values {
        assert_eq!(value(src), want, "{src}");
    }
}

#[test]
fn registered_results_convert_only_as_changed() {
    let mut scope = scope_with_item();
    scope.registered.push(("conf".into(), "conf".into()));
    let c = condition(&["conf is changed", "enabled | bool"], &scope).unwrap();
    assert_eq!(c.changed, vec!["conf".to_owned()]);
    assert_eq!(c.plan_expr().unwrap(), r#"ansible_bool(v["enabled"])"#);
    let c = condition(&["conf.changed"], &scope).unwrap();
    assert_eq!(c.changed, vec!["conf".to_owned()]);
    let e = condition(&["conf.rc != 0"], &scope).unwrap_err();
    assert!(e.0.contains("registered result"), "{e:?}");
    let e = condition(&["conf is failed"], &scope).unwrap_err();
    assert!(e.0.contains("is failed"), "{e:?}");
}

#[test]
fn what_does_not_translate_says_why() {
    let s = scope_with_item();
    for (src, why) in [
        ("lookup('env', 'HOME') == '/root'", "lookup('env'"),
        ("x | regex_replace('a', 'b') == 'b'", "regex_replace"),
        ("groups['web'] | length > 1", "inventory"),
        ("ansible_local.foo is defined", "ansible_local"),
        ("2 ** 3 == 8", "**"),
    ] {
        let e = condition(&[src], &s).unwrap_err();
        assert!(e.0.contains(why), "{src}: {e:?}");
    }
    let e = template_value("{% if x %}a{% endif %}", &s).unwrap_err();
    assert!(e.0.contains("statements"), "{e:?}");
}

/// Evaluates `expr` (Starlark) with `v`, `item` and `host` set as the row says.
fn eval_starlark(
    expr: &str,
    vars: &serde_json::Value,
    facts: &serde_json::Value,
) -> Result<bool, String> {
    let mut vars = vars.as_object().cloned().unwrap_or_default();
    let item = vars.remove("item").unwrap_or(serde_json::Value::Null);
    let program = format!(
        "{stdlib}\nv = json.decode({vars})\nitem = json.decode({item})\nhost = struct(name = \"h\", facts = struct(os = struct(basic = struct(**json.decode({facts}))), hw = struct(cpu = struct(count = 2))))\nresult = bool({expr})\n",
        stdlib = include_str!("../../../stdlib/ansible.star"),
        vars = str_lit(&serde_json::Value::Object(vars).to_string()),
        item = str_lit(&item.to_string()),
        facts = str_lit(&facts.to_string()),
    );
    let globals =
        GlobalsBuilder::extended_by(&[LibraryExtension::StructType, LibraryExtension::Json])
            .build();
    let ast =
        AstModule::parse("when.star", program, &Dialect::Extended).map_err(|e| e.to_string())?;
    Module::with_temp_heap(|module| {
        let mut eval = Evaluator::new(&module);
        eval.eval_module(ast, &globals).map_err(|e| e.to_string())?;
        module
            .get("result")
            .and_then(|v| v.unpack_bool())
            .ok_or_else(|| "no result".to_owned())
    })
}

/// `tests/ansible/when_table.json` holds Ansible's own results (recorded by
/// `tests/ansible/when_table.py` with ansible-core 2.19.14): each condition translated
/// here must give the same result on the same vars and facts, or be one of the few
/// listed as not translatable.
#[test]
fn conditions_evaluate_as_ansible_evaluates_them() {
    let table: serde_json::Value =
        serde_json::from_str(include_str!("../../tests/ansible/when_table.json")).unwrap();
    let hosts = &table["hosts"];
    let rows = table["rows"].as_array().unwrap();
    assert!(rows.len() > 80);
    let not_translated = ["users | selectattr('x') | list | length > 0"];
    let mut checked = 0;
    for row in rows {
        let src = row["when"].as_str().unwrap();
        let want = row["result"].as_bool().unwrap();
        let translated = condition(&[src], &scope_with_item());
        if not_translated.contains(&src) {
            assert!(
                translated.is_err(),
                "{src} now translates: add it to the table"
            );
            continue;
        }
        let code = translated
            .unwrap_or_else(|e| panic!("{src}: {e:?}"))
            .plan_expr()
            .unwrap();
        let got = eval_starlark(&code, &row["vars"], &hosts[row["host"].as_str().unwrap()])
            .unwrap_or_else(|e| panic!("{src} → {code}: {e}"));
        assert_eq!(
            got, want,
            "{src} → {code} on {} {}",
            row["host"], row["vars"]
        );
        checked += 1;
    }
    assert!(checked > 80, "{checked}");
}
