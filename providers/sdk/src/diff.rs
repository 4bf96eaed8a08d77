//! Unified diffs of text content, for the `diff` of a plan's operations: what a file's
//! content goes from and to, in the format every reviewer already reads.
//!
//! Lines are compared whole, including their `\n`, so a missing final newline is a
//! change (shown with `\ No newline at end of file`, like GNU diff). The edit script is
//! Myers' shortest one; past [`MAX_EDITS`] changed lines the changed middle is shown as
//! one block (still a correct diff, just not a minimal one), which bounds time and memory
//! inside the guest.

use std::fmt::Write as _;

/// Lines of unchanged context around each change.
pub const CONTEXT: usize = 3;

/// The largest edit distance searched for a minimal diff.
pub const MAX_EDITS: usize = 1000;

/// A unified diff from `old` to `new` with [`CONTEXT`] lines of context, headed
/// `--- a/PATH` / `+++ b/PATH` (a leading `/` of `path` is dropped). Empty when the texts
/// are equal.
pub fn unified_diff(old: &str, new: &str, path: &str) -> String {
    let a: Vec<&str> = old.split_inclusive('\n').collect();
    let b: Vec<&str> = new.split_inclusive('\n').collect();
    let edits = edit_script(&a, &b);
    let hunks = hunks(&edits);
    if hunks.is_empty() {
        return String::new();
    }
    let path = path.trim_start_matches('/');
    let mut out = format!("--- a/{path}\n+++ b/{path}\n");
    // Lines of `a` and `b` consumed before each edit.
    let mut pos = Vec::with_capacity(edits.len() + 1);
    let (mut i, mut j) = (0, 0);
    for e in &edits {
        pos.push((i, j));
        match e {
            Edit::Equal => (i, j) = (i + 1, j + 1),
            Edit::Delete => i += 1,
            Edit::Insert => j += 1,
        }
    }
    pos.push((i, j));
    for (start, end) in hunks {
        let (a0, b0) = pos[start];
        let (a1, b1) = pos[end];
        let (old_len, new_len) = (a1 - a0, b1 - b0);
        // GNU diff numbers an empty range by the line before it.
        let old_start = if old_len == 0 { a0 } else { a0 + 1 };
        let new_start = if new_len == 0 { b0 } else { b0 + 1 };
        let _ = writeln!(out, "@@ -{old_start},{old_len} +{new_start},{new_len} @@");
        for (k, e) in edits[start..end].iter().enumerate() {
            let (i, j) = pos[start + k];
            let (sign, line) = match e {
                Edit::Equal => (' ', a[i]),
                Edit::Delete => ('-', a[i]),
                Edit::Insert => ('+', b[j]),
            };
            out.push(sign);
            match line.strip_suffix('\n') {
                Some(text) => {
                    out.push_str(text);
                    out.push('\n');
                }
                None => {
                    out.push_str(line);
                    out.push_str("\n\\ No newline at end of file\n");
                }
            }
        }
    }
    out
}

/// One step of an edit script: keep a line of both sides, drop one of the old side, or
/// add one of the new side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edit {
    Equal,
    Delete,
    Insert,
}

/// A shortest edit script from `a` to `b` (when within [`MAX_EDITS`]).
fn edit_script(a: &[&str], b: &[&str]) -> Vec<Edit> {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (a_mid, b_mid) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let mut edits = vec![Edit::Equal; prefix];
    match myers(a_mid, b_mid, MAX_EDITS) {
        Some(middle) => edits.extend(middle),
        None => {
            edits.extend(std::iter::repeat_n(Edit::Delete, a_mid.len()));
            edits.extend(std::iter::repeat_n(Edit::Insert, b_mid.len()));
        }
    }
    edits.extend(std::iter::repeat_n(Edit::Equal, suffix));
    edits
}

/// Myers' greedy O((N+M)·D) algorithm, keeping for each `d` only the furthest-reaching
/// x of diagonals `-d..=d` so the path can be traced back. `None` when more than
/// `max_edits` edits are needed.
fn myers(a: &[&str], b: &[&str], max_edits: usize) -> Option<Vec<Edit>> {
    let (n, m) = (a.len() as isize, b.len() as isize);
    let limit = (n + m).min(max_edits as isize);
    let offset = limit + 1;
    // v[k + offset]: the furthest x reached on diagonal k (x - y = k).
    let mut v = vec![0isize; (2 * offset + 1) as usize];
    let mut trace: Vec<Vec<isize>> = Vec::new();
    for d in 0..=limit {
        let mut row = Vec::with_capacity(d as usize + 1);
        for k in (-d..=d).step_by(2) {
            let at = |k: isize| v[(k + offset) as usize];
            let down = k == -d || (k != d && at(k - 1) < at(k + 1));
            let mut x = if down { at(k + 1) } else { at(k - 1) + 1 };
            let mut y = x - k;
            while x < n && y < m && a[x as usize] == b[y as usize] {
                x += 1;
                y += 1;
            }
            v[(k + offset) as usize] = x;
            row.push(x);
            if x >= n && y >= m {
                trace.push(row);
                return Some(backtrack(&trace, n, m));
            }
        }
        trace.push(row);
    }
    None
}

/// Follows the moves recorded in `trace` back from `(n, m)` to `(0, 0)`.
fn backtrack(trace: &[Vec<isize>], n: isize, m: isize) -> Vec<Edit> {
    let mut edits = Vec::with_capacity((n + m) as usize);
    let (mut x, mut y) = (n, m);
    for d in (1..trace.len() as isize).rev() {
        let prev = &trace[(d - 1) as usize];
        // Row d - 1 holds diagonals -(d-1), -(d-1)+2, …, d-1.
        let at = |k: isize| prev[((k + d - 1) / 2) as usize];
        let k = x - y;
        let down = k == -d || (k != d && at(k - 1) < at(k + 1));
        let prev_k = if down { k + 1 } else { k - 1 };
        let prev_x = at(prev_k);
        let prev_y = prev_x - prev_k;
        while x > prev_x && y > prev_y {
            edits.push(Edit::Equal);
            x -= 1;
            y -= 1;
        }
        edits.push(if down { Edit::Insert } else { Edit::Delete });
        (x, y) = (prev_x, prev_y);
    }
    edits.extend(std::iter::repeat_n(Edit::Equal, x as usize));
    edits.reverse();
    edits
}

/// The `[start, end)` ranges of `edits` shown as hunks: each change with [`CONTEXT`]
/// lines around it, merged when the context of two changes touches or overlaps.
fn hunks(edits: &[Edit]) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for (i, _) in edits.iter().enumerate().filter(|(_, e)| **e != Edit::Equal) {
        let start = i.saturating_sub(CONTEXT);
        let end = (i + 1 + CONTEXT).min(edits.len());
        match out.last_mut() {
            Some(last) if start <= last.1 => last.1 = end,
            _ => out.push((start, end)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(lines: std::ops::Range<usize>) -> String {
        lines.map(|i| format!("line {i}\n")).collect()
    }

    #[test]
    fn equal_texts_give_no_diff() {
        assert_eq!(unified_diff("a\nb\n", "a\nb\n", "/etc/x"), "");
        assert_eq!(unified_diff("", "", "/etc/x"), "");
    }

    #[test]
    fn one_changed_line_with_three_lines_of_context() {
        let old = numbered(1..11);
        let new = old.replace("line 5\n", "line five\n");
        assert_eq!(
            unified_diff(&old, &new, "/etc/app.conf"),
            "--- a/etc/app.conf\n+++ b/etc/app.conf\n@@ -2,7 +2,7 @@\n line 2\n line 3\n line 4\n-line 5\n+line five\n line 6\n line 7\n line 8\n"
        );
    }

    #[test]
    fn creating_and_emptying_a_file() {
        assert_eq!(
            unified_diff("", "a\nb\n", "/x"),
            "--- a/x\n+++ b/x\n@@ -0,0 +1,2 @@\n+a\n+b\n"
        );
        assert_eq!(
            unified_diff("a\nb\n", "", "/x"),
            "--- a/x\n+++ b/x\n@@ -1,2 +0,0 @@\n-a\n-b\n"
        );
    }

    #[test]
    fn a_missing_final_newline_is_marked() {
        assert_eq!(
            unified_diff("a\nb", "a\nb\n", "/x"),
            "--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n"
        );
    }

    #[test]
    fn distant_changes_make_separate_hunks_and_close_ones_merge() {
        let old = numbered(1..21);
        let far = old
            .replace("line 2\n", "two\n")
            .replace("line 18\n", "eighteen\n");
        let diff = unified_diff(&old, &far, "x");
        assert_eq!(diff.matches("\n@@ ").count(), 2, "{diff}");
        assert!(diff.contains("@@ -1,5 +1,5 @@\n"), "{diff}");
        assert!(diff.contains("@@ -15,6 +15,6 @@\n"), "{diff}");
        // Six unchanged lines between two changes: the contexts touch, one hunk.
        let near = old
            .replace("line 5\n", "five\n")
            .replace("line 12\n", "twelve\n");
        let diff = unified_diff(&old, &near, "x");
        assert_eq!(diff.matches("\n@@ ").count(), 1, "{diff}");
        assert!(diff.contains("@@ -2,14 +2,14 @@\n"), "{diff}");
    }

    #[test]
    fn insertion_in_the_middle() {
        let diff = unified_diff("a\nb\nc\nd\n", "a\nb\nX\nc\nd\n", "/x");
        assert_eq!(
            diff,
            "--- a/x\n+++ b/x\n@@ -1,4 +1,5 @@\n a\n b\n+X\n c\n d\n"
        );
    }

    /// Rebuilds both sides from an edit script.
    fn replay<'a>(edits: &[Edit], a: &[&'a str], b: &[&'a str]) -> (Vec<&'a str>, Vec<&'a str>) {
        let (mut old, mut new) = (Vec::new(), Vec::new());
        let (mut i, mut j) = (0, 0);
        for e in edits {
            match e {
                Edit::Equal => {
                    assert_eq!(a[i], b[j], "Equal must pair equal lines");
                    old.push(a[i]);
                    new.push(b[j]);
                    i += 1;
                    j += 1;
                }
                Edit::Delete => {
                    old.push(a[i]);
                    i += 1;
                }
                Edit::Insert => {
                    new.push(b[j]);
                    j += 1;
                }
            }
        }
        (old, new)
    }

    /// Length of the longest common subsequence, by dynamic programming.
    fn lcs(a: &[&str], b: &[&str]) -> usize {
        let mut t = vec![vec![0usize; b.len() + 1]; a.len() + 1];
        for i in (0..a.len()).rev() {
            for j in (0..b.len()).rev() {
                t[i][j] = if a[i] == b[j] {
                    t[i + 1][j + 1] + 1
                } else {
                    t[i + 1][j].max(t[i][j + 1])
                };
            }
        }
        t[0][0]
    }

    #[test]
    fn edit_scripts_are_valid_and_minimal() {
        const WORDS: [&str; 4] = ["a\n", "b\n", "c\n", "d\n"];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..500 {
            let a: Vec<&str> = (0..next() % 12)
                .map(|_| WORDS[(next() % 4) as usize])
                .collect();
            let b: Vec<&str> = (0..next() % 12)
                .map(|_| WORDS[(next() % 4) as usize])
                .collect();
            let edits = edit_script(&a, &b);
            assert_eq!(replay(&edits, &a, &b), (a.clone(), b.clone()));
            let kept = edits.iter().filter(|e| **e == Edit::Equal).count();
            assert_eq!(kept, lcs(&a, &b), "not minimal for {a:?} → {b:?}");
        }
    }

    #[test]
    fn past_the_edit_limit_the_middle_is_replaced_whole() {
        let a: Vec<String> = (0..MAX_EDITS).map(|i| format!("old {i}\n")).collect();
        let b: Vec<String> = (0..MAX_EDITS).map(|i| format!("new {i}\n")).collect();
        let mut a: Vec<&str> = a.iter().map(String::as_str).collect();
        let mut b: Vec<&str> = b.iter().map(String::as_str).collect();
        a.insert(0, "same\n");
        b.insert(0, "same\n");
        let edits = edit_script(&a, &b);
        assert_eq!(replay(&edits, &a, &b), (a.clone(), b.clone()));
        assert_eq!(edits[0], Edit::Equal);
        assert!(edits[1..=MAX_EDITS].iter().all(|e| *e == Edit::Delete));
        let diff = unified_diff(&a.concat(), &b.concat(), "/big");
        assert!(diff.starts_with("--- a/big\n+++ b/big\n@@ -1,1001 +1,1001 @@\n same\n-old 0\n"));
    }
}
