//! File metadata as configs give it and the runner reports it: modes compare as numbers
//! (`"644"` is `"0644"`), owners and groups by name or numeric id. Shared by every
//! provider that manages files.

/// A mode as four octal digits (`"644"` → `"0644"`), the runner's spelling; `None` when
/// it is not 3–4 octal digits (schemas rule that out).
pub fn normalize_mode(mode: &str) -> Option<String> {
    if !(3..=4).contains(&mode.len()) {
        return None;
    }
    u32::from_str_radix(mode, 8)
        .ok()
        .map(|bits| format!("{bits:04o}"))
}

/// Modes compare numerically: `"644"` equals `"0644"`.
pub fn same_mode(desired: &str, actual: Option<&str>) -> bool {
    let bits = |m: &str| u32::from_str_radix(m, 8).ok();
    actual.is_some_and(|a| bits(desired).is_some() && bits(desired) == bits(a))
}

/// An owner or group matches by name or by numeric id, as the runner and `chown` accept
/// either.
pub fn same_principal(desired: &str, name: Option<&str>, id: Option<u32>) -> bool {
    name == Some(desired) || id.is_some_and(|id| desired.parse::<u32>() == Ok(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_compare_numerically() {
        assert!(same_mode("644", Some("0644")));
        assert!(same_mode("0644", Some("0644")));
        assert!(!same_mode("0600", Some("0644")));
        assert!(!same_mode("0644", None));
        assert_eq!(normalize_mode("755").as_deref(), Some("0755"));
        assert_eq!(normalize_mode("4755").as_deref(), Some("4755"));
        assert_eq!(normalize_mode("9"), None);
    }

    #[test]
    fn principals_match_by_name_or_id() {
        assert!(same_principal("root", Some("root"), Some(0)));
        assert!(same_principal("0", Some("root"), Some(0)));
        assert!(same_principal("1000", None, Some(1000)));
        assert!(!same_principal("www-data", Some("root"), Some(0)));
    }
}
