/*
 * Added to starlark 0.14.2 by OpenFroyo's patch (see PATCH.md at the crate root).
 * Licensed under the Apache License, Version 2.0, like the rest of this crate.
 */

//! Python's format specs: the format-spec mini-language of `str.format`
//! (`{:>8}`, `{:02d}`, `{:.3f}`, `{:,}`), printf-style flags, width and precision
//! for `%` (`%02d`, `%-10s`, `%5.2f`, `%(name)s`), and the padding methods `ljust`,
//! `rjust`, `center` and `zfill`. The rules follow CPython 3.11
//! (`Python/formatter_unicode.c`, `PyUnicode_Format`, `Python/pystrtod.c`); floats are
//! printed correctly rounded (half to even on the exact binary value), as CPython does.
//! Deliberate differences are listed in `PATCH.md`.

use num_bigint::BigInt;
use num_bigint::Sign;
use num_traits::FromPrimitive;
use num_traits::ToPrimitive;
use starlark_derive::starlark_module;

use crate as starlark;
use crate::environment::MethodsBuilder;
use crate::values::UnpackValue;
use crate::values::Value;
use crate::values::ValueError;
use crate::values::ValueLike;
use crate::values::dict::DictRef;
use crate::values::types::int::int_or_big::StarlarkIntRef;
use crate::values::types::num::value::NumRef;
use crate::values::types::tuple::value::Tuple;

/// The supported form of a `str.format` spec, shown with every spec error.
pub const FORMAT_SPEC_HINT: &str = "a format spec is `[[fill]align][sign][#][0][width][,|_][.precision][type]`: align `<` `>` `^` `=`, sign `+` `-` or a space, type `s` for strings, `d` `b` `o` `x` `X` `c` `n` for ints, `e` `E` `f` `F` `g` `G` `n` `%` for numbers; e.g. `{:>8}`, `{:02d}`, `{:.3f}`, `{:,}`, `{name:04}`";

/// The supported form of a `%` conversion, shown with every `%` format error.
pub const PERCENT_HINT: &str = "a `%` conversion is `%[(name)][flags][width][.precision]type`: flags `-` `+` `#` `0` or a space, width and precision digits or `*`, type `s` `r` `d` `i` `u` `o` `x` `X` `e` `E` `f` `F` `g` `G` `c`, and `%%` for a percent sign; e.g. `\"%05.1f\" % x`, `\"%-10s|\" % name`, `\"%(name)s\" % {\"name\": n}`";

/// A format spec or `%` conversion that is malformed or not supported, with the
/// supported form as a hint (hosts show it as the diagnostic's help).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct FormatSpecError {
    /// What is wrong, in Python's words where Python has them.
    pub message: String,
    /// The supported form.
    pub hint: String,
}

impl FormatSpecError {
    fn spec(message: impl Into<String>) -> FormatSpecError {
        FormatSpecError {
            message: message.into(),
            hint: FORMAT_SPEC_HINT.to_owned(),
        }
    }

    fn percent(message: impl Into<String>) -> FormatSpecError {
        FormatSpecError {
            message: message.into(),
            hint: PERCENT_HINT.to_owned(),
        }
    }

    fn unknown_code(code: char, ty: &str) -> FormatSpecError {
        let hint = match ty {
            "int" => {
                "an `int` takes type `d` `b` `o` `x` `X` `c` `n`, a float type or none: `{:02d}`, `{:#x}`, `{:.2f}`, `{:>8}`"
            }
            "float" => {
                "a `float` takes type `e` `E` `f` `F` `g` `G` `n` `%` or none: `{:.3f}`, `{:e}`, `{:.1%}`; for an int type convert first: `\"{:x}\".format(int(x))`"
            }
            _ => {
                "text takes type `s` or none: `{:>8}`, `{:.3}`; for a number type convert first: `\"{:02d}\".format(int(x))`"
            }
        };
        FormatSpecError {
            message: format!("Unknown format code '{code}' for object of type '{ty}'"),
            hint: hint.to_owned(),
        }
    }
}

/// A parsed `[[fill]align][sign][z][#][0][width][grouping][.precision][type]`.
#[derive(Debug, Default, Clone)]
struct Spec {
    fill: Option<char>,
    align: Option<char>,
    sign: Option<char>,
    no_neg_zero: bool,
    alternate: bool,
    zero: bool,
    width: usize,
    grouping: Option<char>,
    precision: Option<usize>,
    ty: Option<char>,
}

fn is_align(c: char) -> bool {
    matches!(c, '<' | '>' | '^' | '=')
}

/// Decimal digits at the start of `c`: the value and how many there were.
fn digits(c: &[char]) -> Result<(usize, usize), FormatSpecError> {
    let n = c.iter().take_while(|d| d.is_ascii_digit()).count();
    let mut v: usize = 0;
    for d in &c[..n] {
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(d.to_digit(10).unwrap() as usize))
            .filter(|v| *v <= i32::MAX as usize)
            .ok_or_else(|| FormatSpecError::spec("Too many decimal digits in format string"))?;
    }
    Ok((v, n))
}

fn parse_spec(spec: &str, ty_name: &str) -> Result<Spec, FormatSpecError> {
    let c: Vec<char> = spec.chars().collect();
    let mut s = Spec::default();
    let mut i = 0;
    if c.len() >= 2 && is_align(c[1]) {
        s.fill = Some(c[0]);
        s.align = Some(c[1]);
        i = 2;
    } else if !c.is_empty() && is_align(c[0]) {
        s.align = Some(c[0]);
        i = 1;
    }
    if i < c.len() && matches!(c[i], '+' | '-' | ' ') {
        s.sign = Some(c[i]);
        i += 1;
    }
    if i < c.len() && c[i] == 'z' {
        s.no_neg_zero = true;
        i += 1;
    }
    if i < c.len() && c[i] == '#' {
        s.alternate = true;
        i += 1;
    }
    // CPython: a `0` before the width means fill `0` unless a fill was given.
    if s.fill.is_none() && i < c.len() && c[i] == '0' {
        s.zero = true;
        i += 1;
    }
    let (width, n) = digits(&c[i..])?;
    s.width = width;
    i += n;
    if i < c.len() && c[i] == ',' {
        s.grouping = Some(',');
        i += 1;
    }
    if i < c.len() && c[i] == '_' {
        if s.grouping.is_some() {
            return Err(FormatSpecError::spec("Cannot specify both ',' and '_'"));
        }
        s.grouping = Some('_');
        i += 1;
    }
    if i < c.len() && c[i] == ',' {
        return Err(FormatSpecError::spec("Cannot specify both ',' and '_'"));
    }
    if i < c.len() && c[i] == '.' {
        i += 1;
        let (p, n) = digits(&c[i..])?;
        if n == 0 {
            return Err(FormatSpecError::spec("Format specifier missing precision"));
        }
        s.precision = Some(p);
        i += n;
    }
    match c.len() - i {
        0 => {}
        1 => s.ty = Some(c[i]),
        _ => {
            return Err(FormatSpecError::spec(format!(
                "Invalid format specifier '{spec}' for object of type '{ty_name}'"
            )));
        }
    }
    if let Some(g) = s.grouping {
        match s.ty {
            None | Some('d' | 'e' | 'f' | 'g' | 'E' | 'F' | 'G' | '%') => {}
            Some('b' | 'o' | 'x' | 'X') if g == '_' => {}
            Some(t) => {
                return Err(FormatSpecError::spec(format!(
                    "Cannot specify '{g}' with '{t}'"
                )));
            }
        }
    }
    Ok(s)
}

/// `digits` with `sep` every `size` digits from the right, zero-extended to at least
/// `min_width` characters the way CPython does it (`format(1234, "08,")` is
/// `"0,001,234"`: a separator never leads).
fn group_digits(digits: &str, size: usize, sep: char, min_width: usize) -> String {
    let digits = digits.as_bytes();
    let mut remaining = digits.len() as isize;
    let mut min_width = min_width as isize;
    let size = size as isize;
    let mut end = digits.len();
    let mut groups: Vec<String> = Vec::new();
    loop {
        let l = size.min(remaining.max(min_width).max(1));
        let zeros = (l - remaining).max(0) as usize;
        let chars = remaining.min(l).max(0) as usize;
        let mut g = "0".repeat(zeros);
        g.push_str(std::str::from_utf8(&digits[end - chars..end]).unwrap());
        groups.push(g);
        end -= chars;
        remaining -= chars as isize;
        min_width -= l;
        if remaining <= 0 && min_width <= 0 {
            break;
        }
        min_width -= 1;
    }
    groups.reverse();
    groups.join(&sep.to_string())
}

fn push_fill(out: &mut String, fill: char, n: usize) {
    out.extend(std::iter::repeat_n(fill, n));
}

/// Lays out `sign prefix digits rest` (a number; `digits` are the integer digits the
/// grouping applies to) in the spec's width.
fn render_number(
    out: &mut String,
    spec: &Spec,
    sign: &str,
    prefix: &str,
    digits: &str,
    rest: &str,
    group: Option<(usize, char)>,
) {
    let fill = spec.fill.unwrap_or(if spec.zero { '0' } else { ' ' });
    let align = spec.align.unwrap_or(if spec.zero { '=' } else { '>' });
    let lead = sign.len() + prefix.len();
    let rest_len = rest.chars().count();
    let digits = match group {
        Some((size, sep)) => {
            let min = if fill == '0' && align == '=' {
                spec.width.saturating_sub(lead + rest_len)
            } else {
                0
            };
            group_digits(digits, size, sep, min)
        }
        None => digits.to_owned(),
    };
    let pad = spec
        .width
        .saturating_sub(lead + digits.chars().count() + rest_len);
    let (left, right) = match align {
        '<' => (0, pad),
        '^' => (pad / 2, pad - pad / 2),
        '=' => (0, 0),
        _ => (pad, 0),
    };
    push_fill(out, fill, left);
    out.push_str(sign);
    out.push_str(prefix);
    if align == '=' {
        push_fill(out, fill, pad);
    }
    out.push_str(&digits);
    out.push_str(rest);
    push_fill(out, fill, right);
}

fn sign_str(negative: bool, sign: Option<char>) -> &'static str {
    match (negative, sign) {
        (true, _) => "-",
        (false, Some('+')) => "+",
        (false, Some(' ')) => " ",
        _ => "",
    }
}

/// `text` under a string spec: precision truncates, default alignment is left.
fn format_text(
    text: &str,
    spec: &Spec,
    ty_name: &str,
    out: &mut String,
) -> Result<(), FormatSpecError> {
    match spec.ty {
        None | Some('s') => {}
        Some(t) => return Err(FormatSpecError::unknown_code(t, ty_name)),
    }
    if spec.sign.is_some() {
        return Err(FormatSpecError::spec(
            "Sign not allowed in string format specifier",
        ));
    }
    if spec.no_neg_zero {
        return Err(FormatSpecError::spec(
            "Negative zero coercion (z) not allowed in format specifier",
        ));
    }
    if spec.alternate {
        return Err(FormatSpecError::spec(
            "Alternate form (#) not allowed in string format specifier",
        ));
    }
    if spec.align == Some('=') {
        return Err(FormatSpecError::spec(
            "'=' alignment not allowed in string format specifier",
        ));
    }
    let text = match spec.precision {
        Some(p) => match text.char_indices().nth(p) {
            Some((end, _)) => &text[..end],
            None => text,
        },
        None => text,
    };
    let fill = spec.fill.unwrap_or(if spec.zero { '0' } else { ' ' });
    let pad = spec.width.saturating_sub(text.chars().count());
    let (left, right) = match spec.align.unwrap_or('<') {
        '>' => (pad, 0),
        '^' => (pad / 2, pad - pad / 2),
        _ => (0, pad),
    };
    push_fill(out, fill, left);
    out.push_str(text);
    push_fill(out, fill, right);
    Ok(())
}

fn int_to_f64(v: &BigInt) -> Result<f64, FormatSpecError> {
    v.to_f64()
        .filter(|f| f.is_finite())
        .ok_or_else(|| FormatSpecError {
            message: "int too large to convert to float".to_owned(),
            hint: "format it as an int: `{:d}`, `{:,}` or `{:x}`".to_owned(),
        })
}

fn format_int(v: &BigInt, spec: &Spec, out: &mut String) -> Result<(), FormatSpecError> {
    if let Some('e' | 'E' | 'f' | 'F' | 'g' | 'G' | '%') = spec.ty {
        return format_float(int_to_f64(v)?, spec, out);
    }
    if spec.precision.is_some() {
        return Err(FormatSpecError::spec(
            "Precision not allowed in integer format specifier",
        ));
    }
    if spec.no_neg_zero {
        return Err(FormatSpecError::spec(
            "Negative zero coercion (z) not allowed in integer format specifier",
        ));
    }
    let (radix, prefix) = match spec.ty {
        None | Some('d' | 'n') => (10, ""),
        Some('b') => (2, "0b"),
        Some('o') => (8, "0o"),
        Some('x') => (16, "0x"),
        Some('X') => (16, "0X"),
        Some('c') => {
            if spec.sign.is_some() {
                return Err(FormatSpecError::spec(
                    "Sign not allowed with integer format specifier 'c'",
                ));
            }
            if spec.alternate {
                return Err(FormatSpecError::spec(
                    "Alternate form (#) not allowed with integer format specifier 'c'",
                ));
            }
            let c = v
                .to_u32()
                .and_then(char::from_u32)
                .ok_or_else(|| FormatSpecError::spec("%c arg not in range(0x110000)"))?;
            render_number(out, spec, "", "", "", &c.to_string(), None);
            return Ok(());
        }
        Some(t) => return Err(FormatSpecError::unknown_code(t, "int")),
    };
    let mut digits = v.magnitude().to_str_radix(radix);
    if spec.ty == Some('X') {
        digits.make_ascii_uppercase();
    }
    let sign = sign_str(v.sign() == Sign::Minus, spec.sign);
    let prefix = if spec.alternate { prefix } else { "" };
    let group = spec.grouping.map(|g| (if radix == 10 { 3 } else { 4 }, g));
    render_number(out, spec, sign, prefix, &digits, "", group);
    Ok(())
}

/// The mantissa and decimal exponent of Rust's `{:e}` rendering (`"1.25e3"`).
fn split_exp(s: &str) -> (&str, i32) {
    let (m, e) = s.split_once('e').unwrap();
    (m, e.parse().unwrap())
}

fn exp_suffix(exp: i32) -> String {
    format!("e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
}

fn strip_zeros(s: &mut String) {
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
}

/// `%e`: `d.ddde+XX`.
fn float_sci(a: f64, p: usize, alternate: bool) -> String {
    let s = format!("{a:.p$e}");
    let (m, e) = split_exp(&s);
    let mut m = m.to_owned();
    if alternate && !m.contains('.') {
        m.push('.');
    }
    m + &exp_suffix(e)
}

/// `%f`.
fn float_fixed(a: f64, p: usize, alternate: bool) -> String {
    let mut s = format!("{a:.p$}");
    if alternate && !s.contains('.') {
        s.push('.');
    }
    s
}

/// `%g` (and, with `add_dot_0`, the spec with a precision and no type).
fn float_general(a: f64, p: usize, alternate: bool, add_dot_0: bool) -> String {
    let p = p.max(1);
    let exp = if a == 0.0 {
        0
    } else {
        split_exp(&format!("{:.*e}", p - 1, a)).1
    };
    let p = p as i32;
    let sci = exp < -4 || exp >= if add_dot_0 { p - 1 } else { p };
    if sci {
        let s = format!("{:.*e}", (p - 1) as usize, a);
        let (m, e) = split_exp(&s);
        let mut m = m.to_owned();
        if alternate {
            if !m.contains('.') {
                m.push('.');
            }
        } else {
            strip_zeros(&mut m);
        }
        m + &exp_suffix(e)
    } else {
        let mut s = format!("{:.*}", (p - 1 - exp) as usize, a);
        if alternate {
            if !s.contains('.') {
                s.push('.');
            }
        } else {
            strip_zeros(&mut s);
        }
        if add_dot_0 && !s.contains('.') {
            s.push_str(".0");
        }
        s
    }
}

/// `repr(float)` in Python: the shortest digits that round-trip, in exponent form
/// below 1e-4 and from 1e16.
fn float_repr(a: f64) -> String {
    let (_, exp) = split_exp(&format!("{a:e}"));
    if !(-4..16).contains(&exp) {
        let s = format!("{a:e}");
        let (m, e) = split_exp(&s);
        m.to_owned() + &exp_suffix(e)
    } else {
        let mut s = format!("{a}");
        if !s.contains('.') {
            s.push_str(".0");
        }
        s
    }
}

/// The magnitude of `a` (not negative) under a float type.
fn float_body(a: f64, ty: Option<char>, precision: Option<usize>, alternate: bool) -> String {
    let percent = ty == Some('%');
    if !a.is_finite() {
        let s = if a.is_nan() { "nan" } else { "inf" };
        return if percent {
            format!("{s}%")
        } else {
            s.to_owned()
        };
    }
    match ty {
        Some('f' | 'F') => float_fixed(a, precision.unwrap_or(6), alternate),
        Some('%') => float_fixed(a * 100.0, precision.unwrap_or(6), alternate) + "%",
        Some('e' | 'E') => float_sci(a, precision.unwrap_or(6), alternate),
        Some('g' | 'G' | 'n') => float_general(a, precision.unwrap_or(6), alternate, false),
        _ => match precision {
            None => float_repr(a),
            Some(p) => float_general(a, p, alternate, true),
        },
    }
}

fn format_float(x: f64, spec: &Spec, out: &mut String) -> Result<(), FormatSpecError> {
    match spec.ty {
        None | Some('e' | 'E' | 'f' | 'F' | 'g' | 'G' | 'n' | '%') => {}
        Some(t) => return Err(FormatSpecError::unknown_code(t, "float")),
    }
    let mut body = float_body(x.abs(), spec.ty, spec.precision, spec.alternate);
    if let Some('E' | 'F' | 'G') = spec.ty {
        body.make_ascii_uppercase();
    }
    let mut negative = x.is_sign_negative() && !x.is_nan();
    if spec.no_neg_zero && negative {
        let mantissa = body.split(['e', 'E']).next().unwrap_or("");
        if !mantissa.bytes().any(|b| (b'1'..=b'9').contains(&b)) {
            negative = false;
        }
    }
    let split = body
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(body.len());
    let (digits, rest) = body.split_at(split);
    let group = spec.grouping.map(|g| (3, g));
    render_number(
        out,
        spec,
        sign_str(negative, spec.sign),
        "",
        digits,
        rest,
        group,
    );
    Ok(())
}

fn to_bigint(i: StarlarkIntRef) -> BigInt {
    match i {
        StarlarkIntRef::Small(v) => BigInt::from(v.to_i32()),
        StarlarkIntRef::Big(v) => v.get().clone(),
    }
}

/// Formats `value` under a `str.format` spec (the part after `:` in `{:>8}`) into
/// `out`: ints and floats under the numeric rules, strings under the string rules, and
/// any other value as its `str()` text under the string rules. An empty spec is
/// `str(value)`.
pub fn format_value(value: Value, spec: &str, out: &mut String) -> Result<(), FormatSpecError> {
    if spec.is_empty() {
        value.collect_str(out);
        return Ok(());
    }
    match value.unpack_num() {
        Some(NumRef::Int(i)) => format_int(&to_bigint(i), &parse_spec(spec, "int")?, out),
        Some(NumRef::Float(f)) => format_float(f.0, &parse_spec(spec, "float")?, out),
        None => match value.unpack_str() {
            Some(s) => format_str(s, spec, out),
            None => {
                let ty = value.get_type();
                let mut text = String::new();
                value.collect_str(&mut text);
                format_text(&text, &parse_spec(spec, ty)?, ty, out)
            }
        },
    }
}

/// Formats the text `s` under a `str.format` spec into `out`.
pub fn format_str(s: &str, spec: &str, out: &mut String) -> Result<(), FormatSpecError> {
    format_text(s, &parse_spec(spec, "string")?, "string", out)
}

/// A `.format()` string the parser refused: when the cause is a spec form this
/// dialect lacks, a [`FormatSpecError`] that says so with the supported form.
pub(crate) fn format_string_error(format: &str, e: anyhow::Error) -> anyhow::Error {
    if format.contains("!r:") || format.contains("!s:") {
        return FormatSpecError {
            message: format!(
                "A conversion followed by a format spec (`{{x!r:>8}}`) is not supported: `{format}`"
            ),
            hint: format!(
                "apply the spec to the converted text: `\"{{:>8}}\".format(repr(x))`. {FORMAT_SPEC_HINT}"
            ),
        }
        .into();
    }
    let nested = format.split('{').skip(1).any(|field| {
        field
            .split_once(':')
            .is_some_and(|(_, spec)| !spec.contains('}'))
    });
    if nested {
        return FormatSpecError {
            message: format!("Nested fields inside a format spec (`{{:>{{w}}}}`) are not supported: `{format}`"),
            hint: format!(
                "pad with the methods instead: `\"{{}}\".format(x).rjust(w)`, `ljust(w)`, `center(w)`, `zfill(w)`. {FORMAT_SPEC_HINT}"
            ),
        }
        .into();
    }
    e
}

/// A replacement field's name with `.`, `[` or `]` (Python's attribute and item access).
pub(crate) fn field_access_error(c: u8) -> anyhow::Error {
    FormatSpecError {
        message: format!("Invalid character '{}' inside replacement field", char::from(c)),
        hint: "a replacement field is `{}`, `{0}` or `{name}`, then `!r`/`!s` or `:spec`; pass attributes and items as arguments: `\"{}\".format(x.name)`".to_owned(),
    }
    .into()
}

// ---------------------------------------------------------------------------------
// `%`
// ---------------------------------------------------------------------------------

type Chars<'a> = std::iter::Peekable<std::str::CharIndices<'a>>;

/// A width or precision: digits, or `*` for the next argument.
fn printf_number<'v>(
    chars: &mut Chars,
    star: &mut dyn FnMut() -> crate::Result<Value<'v>>,
) -> crate::Result<Option<i64>> {
    if let Some((_, '*')) = chars.peek().copied() {
        chars.next();
        let v = star()?;
        return match v.unpack_i32() {
            Some(n) => Ok(Some(n as i64)),
            None => Err(crate::Error::new_other(FormatSpecError::percent(format!(
                "* wants an int, got `{}`",
                v.get_type()
            )))),
        };
    }
    let mut n: Option<i64> = None;
    while let Some((_, d @ '0'..='9')) = chars.peek().copied() {
        chars.next();
        let v = n.unwrap_or(0) * 10 + d.to_digit(10).unwrap() as i64;
        if v > i32::MAX as i64 {
            return Err(crate::Error::new_other(FormatSpecError::percent(
                "Too many decimal digits in format string",
            )));
        }
        n = Some(v);
    }
    Ok(n)
}

#[derive(Default)]
struct Printf {
    left: bool,
    plus: bool,
    space: bool,
    alternate: bool,
    zero: bool,
    width: usize,
    precision: Option<usize>,
}

impl Printf {
    /// The equivalent spec for the shared layout (printf right-aligns strings too).
    fn spec(&self, numeric: bool) -> Spec {
        Spec {
            fill: Some(if self.zero && numeric && !self.left {
                '0'
            } else {
                ' '
            }),
            align: Some(if self.left {
                '<'
            } else if self.zero && numeric {
                '='
            } else {
                '>'
            }),
            sign: if self.plus {
                Some('+')
            } else if self.space {
                Some(' ')
            } else {
                None
            },
            width: self.width,
            ..Spec::default()
        }
    }
}

/// The value of a `%d`/`%o`/`%x` argument: an int, or for `%d` a float (truncated).
fn percent_int(value: Value, conv: char) -> crate::Result<BigInt> {
    let op = format!("format(%{conv})");
    match value.unpack_num() {
        Some(NumRef::Int(i)) => Ok(to_bigint(i)),
        Some(NumRef::Float(f)) if matches!(conv, 'd' | 'i' | 'u') => {
            match BigInt::from_f64(f.0.trunc()) {
                Some(v) => Ok(v),
                None => Err(crate::Error::new_other(FormatSpecError::percent(format!(
                    "cannot convert float {} to integer",
                    if f.0.is_nan() { "NaN" } else { "infinity" }
                )))),
            }
        }
        _ => ValueError::unsupported_type(value, &op),
    }
}

fn percent_one(out: &mut String, conv: char, f: &Printf, arg: Value) -> crate::Result<()> {
    match conv {
        's' | 'r' | 'c' => {
            let mut text = String::new();
            match conv {
                'r' => arg.collect_repr(&mut text),
                's' => match arg.unpack_str() {
                    Some(s) => text.push_str(s),
                    None => arg.collect_repr(&mut text),
                },
                _ => match (arg.unpack_num(), arg.unpack_str()) {
                    (Some(NumRef::Int(i)), _) => {
                        match to_bigint(i).to_u32().and_then(char::from_u32) {
                            Some(c) => text.push(c),
                            None => {
                                return Err(crate::Error::new_other(FormatSpecError::percent(
                                    "%c arg not in range(0x110000)",
                                )));
                            }
                        }
                    }
                    (_, Some(s)) if s.chars().count() == 1 => text.push_str(s),
                    _ => {
                        return Err(crate::Error::new_other(FormatSpecError::percent(
                            "%c requires an int or a one-character string",
                        )));
                    }
                },
            }
            if conv != 'c'
                && let Some(p) = f.precision
                && let Some((end, _)) = text.char_indices().nth(p)
            {
                text.truncate(end);
            }
            render_number(out, &f.spec(false), "", "", "", &text, None);
        }
        'd' | 'i' | 'u' | 'o' | 'x' | 'X' => {
            let v = percent_int(arg, conv)?;
            let (radix, prefix) = match conv {
                'o' => (8, "0o"),
                'x' => (16, "0x"),
                'X' => (16, "0X"),
                _ => (10, ""),
            };
            let mut digits = v.magnitude().to_str_radix(radix);
            if conv == 'X' {
                digits.make_ascii_uppercase();
            }
            // printf: the precision of an integer is its minimum number of digits.
            if let Some(p) = f.precision
                && digits.len() < p
            {
                digits = "0".repeat(p - digits.len()) + &digits;
            }
            let spec = f.spec(true);
            let prefix = if f.alternate { prefix } else { "" };
            render_number(
                out,
                &spec,
                sign_str(v.sign() == Sign::Minus, spec.sign),
                prefix,
                &digits,
                "",
                None,
            );
        }
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' => {
            let x = NumRef::unpack_param(arg)?.as_float();
            let ty = Some(conv);
            let mut body = float_body(x.abs(), ty, Some(f.precision.unwrap_or(6)), f.alternate);
            if conv.is_ascii_uppercase() {
                body.make_ascii_uppercase();
            }
            let spec = f.spec(true);
            let split = body
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(body.len());
            let (digits, rest) = body.split_at(split);
            let negative = x.is_sign_negative() && !x.is_nan();
            render_number(
                out,
                &spec,
                sign_str(negative, spec.sign),
                "",
                digits,
                rest,
                None,
            );
        }
        c => {
            return Err(crate::Error::new_other(FormatSpecError::percent(format!(
                "Unsupported format character: {c:?}"
            ))));
        }
    }
    Ok(())
}

fn incomplete() -> crate::Error {
    crate::Error::new_other(FormatSpecError::percent("Incomplete format"))
}

/// `format % value`: printf-style conversions with flags, width and precision.
/// `value` is a tuple of the arguments, a dict for `%(name)s` conversions, or else the
/// one argument.
pub(crate) fn percent(format: &str, value: Value) -> crate::Result<String> {
    let tuple = Tuple::from_value(value);
    let one = [value];
    let positional: &[Value] = match &tuple {
        Some(t) => t.content(),
        None => &one,
    };
    let mut next = 0;
    let mut next_arg = || -> crate::Result<Value> {
        let v = positional.get(next).copied().ok_or_else(|| {
            crate::Error::new_other(FormatSpecError::percent(
                "Not enough arguments for format string",
            ))
        })?;
        next += 1;
        Ok(v)
    };
    let mut named = false;
    let mut out = String::with_capacity(format.len() + 16);
    let mut rest = format;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let spec_start = at + 1;
        let mut chars = rest[spec_start..].char_indices().peekable();
        let mut key: Option<&str> = None;
        if let Some((_, '(')) = chars.peek().copied() {
            chars.next();
            let mut depth = 1;
            let key_start = spec_start + 1;
            let mut key_end = None;
            for (i, ch) in chars.by_ref() {
                match ch {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            key_end = Some(spec_start + i);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let Some(key_end) = key_end else {
                return Err(crate::Error::new_other(FormatSpecError::percent(
                    "Incomplete format key",
                )));
            };
            key = Some(&rest[key_start..key_end]);
        }
        let mut f = Printf::default();
        while let Some((_, ch)) = chars.peek().copied() {
            match ch {
                '-' => f.left = true,
                '+' => f.plus = true,
                ' ' => f.space = true,
                '#' => f.alternate = true,
                '0' => f.zero = true,
                _ => break,
            }
            chars.next();
        }
        if let Some(w) = printf_number(&mut chars, &mut next_arg)? {
            if w < 0 {
                f.left = true;
            }
            f.width = w.unsigned_abs() as usize;
        }
        if let Some((_, '.')) = chars.peek().copied() {
            chars.next();
            f.precision = Some(
                printf_number(&mut chars, &mut next_arg)?
                    .unwrap_or(0)
                    .max(0) as usize,
            );
        }
        // C's length modifiers mean nothing here; Python skips them too.
        if let Some((_, 'h' | 'l' | 'L')) = chars.peek().copied() {
            chars.next();
        }
        let Some((i, conv)) = chars.next() else {
            return Err(incomplete());
        };
        rest = &rest[spec_start + i + conv.len_utf8()..];
        if conv == '%' {
            if key.is_some() || f.width > 0 || f.precision.is_some() {
                return Err(crate::Error::new_other(FormatSpecError::percent(
                    "`%%` takes no key, flags, width or precision",
                )));
            }
            out.push('%');
            continue;
        }
        let arg = match key {
            Some(key) => {
                named = true;
                let Some(dict) = DictRef::from_value(value) else {
                    return Err(crate::Error::new_other(FormatSpecError::percent(format!(
                        "`%({key})` needs a dict on the right of `%`, got `{}`",
                        value.get_type()
                    ))));
                };
                match dict.get_str(key) {
                    Some(v) => v,
                    None => return Err(ValueError::KeyNotFound(key.to_owned()).into()),
                }
            }
            None => next_arg()?,
        };
        percent_one(&mut out, conv, &f, arg)?;
    }
    out.push_str(rest);
    // Like Python: a dict on the right may be used by key, or not at all.
    let mapping = tuple.is_none() && DictRef::from_value(value).is_some();
    if next < positional.len() && !named && !mapping {
        return Err(crate::Error::new_other(FormatSpecError::percent(
            "Too many arguments for format string",
        )));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------
// Padding methods
// ---------------------------------------------------------------------------------

fn fill_char(fillchar: &str) -> anyhow::Result<char> {
    let mut chars = fillchar.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Ok(c),
        _ => Err(FormatSpecError {
            message: format!(
                "The fill character must be exactly one character long, got {fillchar:?}"
            ),
            hint: "pass one character: `\"7\".rjust(3, \"0\")`".to_owned(),
        }
        .into()),
    }
}

fn pad(this: &str, width: i32, fill: char, left_of: impl Fn(usize) -> usize) -> String {
    let len = this.chars().count();
    let width = width.max(0) as usize;
    if width <= len {
        return this.to_owned();
    }
    let margin = width - len;
    let left = left_of(margin);
    let mut out = String::with_capacity(this.len() + margin);
    push_fill(&mut out, fill, left);
    out.push_str(this);
    push_fill(&mut out, fill, margin - left);
    out
}

#[starlark_module]
pub(crate) fn padding_methods(builder: &mut MethodsBuilder) {
    /// `S.ljust(width, fillchar = " ")`: `S` left-justified in a string of `width`
    /// characters, padded with `fillchar` (Python's `str.ljust`).
    ///
    /// ```
    /// # starlark::assert::all_true(r#"
    /// "ab".ljust(5) == "ab   "
    /// "ab".ljust(5, "*") == "ab***"
    /// "abc".ljust(2) == "abc"
    /// # "#);
    /// ```
    #[starlark(speculative_exec_safe)]
    fn ljust(
        this: &str,
        #[starlark(require = pos)] width: i32,
        #[starlark(require = pos, default = " ")] fillchar: &str,
    ) -> anyhow::Result<String> {
        let fill = fill_char(fillchar)?;
        Ok(pad(this, width, fill, |_| 0))
    }

    /// `S.rjust(width, fillchar = " ")`: `S` right-justified in a string of `width`
    /// characters, padded with `fillchar` (Python's `str.rjust`).
    ///
    /// ```
    /// # starlark::assert::all_true(r#"
    /// "ab".rjust(5) == "   ab"
    /// "7".rjust(3, "0") == "007"
    /// # "#);
    /// ```
    #[starlark(speculative_exec_safe)]
    fn rjust(
        this: &str,
        #[starlark(require = pos)] width: i32,
        #[starlark(require = pos, default = " ")] fillchar: &str,
    ) -> anyhow::Result<String> {
        let fill = fill_char(fillchar)?;
        Ok(pad(this, width, fill, |m| m))
    }

    /// `S.center(width, fillchar = " ")`: `S` centred in a string of `width`
    /// characters, padded with `fillchar` (Python's `str.center`, which puts an odd
    /// extra character on the left when `width` is odd).
    ///
    /// ```
    /// # starlark::assert::all_true(r#"
    /// "ab".center(6) == "  ab  "
    /// "ab".center(5, "*") == "**ab*"
    /// # "#);
    /// ```
    #[starlark(speculative_exec_safe)]
    fn center(
        this: &str,
        #[starlark(require = pos)] width: i32,
        #[starlark(require = pos, default = " ")] fillchar: &str,
    ) -> anyhow::Result<String> {
        let fill = fill_char(fillchar)?;
        let odd = (width.max(0) as usize) & 1;
        Ok(pad(this, width, fill, |m| m / 2 + (m & odd)))
    }

    /// `S.zfill(width)`: `S` padded on the left with zeros to `width` characters, after
    /// a leading sign (Python's `str.zfill`).
    ///
    /// ```
    /// # starlark::assert::all_true(r#"
    /// "42".zfill(5) == "00042"
    /// "-42".zfill(5) == "-0042"
    /// "abc".zfill(2) == "abc"
    /// # "#);
    /// ```
    #[starlark(speculative_exec_safe)]
    fn zfill(this: &str, #[starlark(require = pos)] width: i32) -> anyhow::Result<String> {
        let len = this.chars().count();
        let width = width.max(0) as usize;
        if width <= len {
            return Ok(this.to_owned());
        }
        let (sign, digits) = match this.chars().next() {
            Some(c @ ('+' | '-')) => (Some(c), &this[1..]),
            _ => (None, this),
        };
        let mut out = String::with_capacity(width);
        out.extend(sign);
        push_fill(&mut out, '0', width - len);
        out.push_str(digits);
        Ok(out)
    }
}
