//! Python's format-spec mini-language and replacement fields: the one
//! implementation behind f-strings (`f"{t:.2f}"`), the `format(v, spec)`
//! builtin and the string method `"{} took {:.2f}s".format(name, t)`.
//!
//! A spec is `[[fill]align][sign][#][0][width][grouping][.precision][type]`
//! as in Python: align `< > ^ =`, sign `+ - space`, grouping `,` or `_`,
//! types `s` (strings), `d b o x X c` (ints), `e E f F g G %` (numbers).
//! Without a type a value formats as `str(v)` (a float with a precision as
//! Python's general format). Any value takes fill, align and width.

use super::describe;
use super::value::{format_float, Value};
use crate::diagnostics::{kind, RuntimeError};
use std::ops::Range;

/// Widths and precisions past this are refused: a spec cannot ask for a
/// gigabyte of padding.
const MAX_WIDTH: usize = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Align {
    Left,
    Right,
    Center,
    /// Padding between the sign (and `0x`) and the digits.
    AfterSign,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sign {
    /// `-`: only negative numbers (the default).
    Negative,
    /// `+`: every number.
    Always,
    /// ` `: a space where a `+` would be.
    Space,
}

/// A parsed format spec.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    /// `None`: a space, or `0` with the `0` flag.
    fill: Option<char>,
    align: Option<Align>,
    /// The `0` before the width: zero padding.
    zero: bool,
    sign: Option<Sign>,
    alternate: bool,
    width: usize,
    grouping: Option<char>,
    precision: Option<usize>,
    ty: Option<char>,
}

impl Spec {
    /// The empty spec: `str(v)`.
    pub const EMPTY: Spec = Spec {
        fill: None,
        align: None,
        zero: false,
        sign: None,
        alternate: false,
        width: 0,
        grouping: None,
        precision: None,
        ty: None,
    };

    pub fn is_empty(&self) -> bool {
        *self == Spec::EMPTY
    }

    /// The fill and alignment once the `0` flag is applied: numbers pad
    /// with zeros after the sign, other values with zeros on the right.
    fn layout(&self, number: bool) -> (char, Option<Align>) {
        let zero_fill = if self.zero { '0' } else { ' ' };
        match (self.fill, self.align) {
            (Some(fill), align) => (fill, align),
            (None, None) if self.zero && number => ('0', Some(Align::AfterSign)),
            (None, None) if self.zero => ('0', Some(Align::Left)),
            (None, align) => (zero_fill, align),
        }
    }
}

/// A spec that does not parse: where in it (bytes) and why.
#[derive(Debug)]
pub struct SpecError {
    pub at: Range<usize>,
    pub message: String,
}

fn spec_error(at: Range<usize>, message: impl Into<String>) -> SpecError {
    SpecError {
        at,
        message: message.into(),
    }
}

fn align_of(c: char) -> Option<Align> {
    match c {
        '<' => Some(Align::Left),
        '>' => Some(Align::Right),
        '^' => Some(Align::Center),
        '=' => Some(Align::AfterSign),
        _ => None,
    }
}

pub fn parse_spec(text: &str) -> Result<Spec, SpecError> {
    let mut spec = Spec::EMPTY;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let at = |i: usize| chars.get(i).map(|&(_, c)| c);
    let offset = |i: usize| chars.get(i).map_or(text.len(), |&(o, _)| o);
    let mut i = 0;
    match (at(0), at(1).and_then(align_of)) {
        (Some(fill), Some(align)) => {
            spec.fill = Some(fill);
            spec.align = Some(align);
            i = 2;
        }
        (Some(c), _) if align_of(c).is_some() => {
            spec.align = align_of(c);
            i = 1;
        }
        _ => {}
    }
    spec.sign = match at(i) {
        Some('+') => Some(Sign::Always),
        Some('-') => Some(Sign::Negative),
        Some(' ') => Some(Sign::Space),
        _ => None,
    };
    if spec.sign.is_some() {
        i += 1;
    }
    if at(i) == Some('#') {
        spec.alternate = true;
        i += 1;
    }
    if at(i) == Some('0') {
        spec.zero = true;
        i += 1;
    }
    let (width, next) = digits_at(&chars, i);
    if let Some(w) = width {
        spec.width = w.ok_or_else(|| too_large(offset(i)..offset(next)))?;
    }
    i = next;
    if let Some(c @ (',' | '_')) = at(i) {
        spec.grouping = Some(c);
        i += 1;
    }
    if at(i) == Some('.') {
        let (precision, next) = digits_at(&chars, i + 1);
        match precision {
            Some(p) => spec.precision = Some(p.ok_or_else(|| too_large(offset(i)..offset(next)))?),
            None => {
                return Err(spec_error(
                    offset(i)..offset(i + 1),
                    "a `.` in a format spec needs a precision after it, e.g. `.2f`",
                ))
            }
        }
        i = next;
    }
    if let Some(c) = at(i) {
        if !"sdboxXceEfFgG%".contains(c) {
            return Err(spec_error(
                offset(i)..offset(i + 1),
                format!(
                    "unknown format type `{}` (types: s d b o x X c e E f F g G %)",
                    c
                ),
            ));
        }
        spec.ty = Some(c);
        i += 1;
    }
    if i < chars.len() {
        return Err(spec_error(
            offset(i)..text.len(),
            format!(
                "invalid format spec {:?}: the form is [[fill]align][sign][#][0][width][,][.precision][type]",
                text
            ),
        ));
    }
    Ok(spec)
}

/// Decimal digits from `i`: `None` when there are none, `Some(None)` when
/// they are past `MAX_WIDTH`; and where they end.
fn digits_at(chars: &[(usize, char)], mut i: usize) -> (Option<Option<usize>>, usize) {
    let start = i;
    let mut n: usize = 0;
    while let Some(d) = chars.get(i).and_then(|&(_, c)| c.to_digit(10)) {
        n = n.saturating_mul(10).saturating_add(d as usize);
        i += 1;
    }
    if i == start {
        return (None, i);
    }
    (Some((n <= MAX_WIDTH).then_some(n)), i)
}

fn too_large(at: Range<usize>) -> SpecError {
    spec_error(
        at,
        format!("a width or precision above {} is too large", MAX_WIDTH),
    )
}

fn value_error(message: impl Into<String>) -> RuntimeError {
    RuntimeError::new(kind::VALUE, message)
}

/// `format(v, spec)` with a spec given as text (a bad spec is a ValueError).
pub fn format_text_spec(v: &Value, spec: &str) -> Result<String, RuntimeError> {
    let parsed = parse_spec(spec).map_err(|e| value_error(e.message))?;
    format_value(v, &parsed)
}

/// `v` formatted by `spec`.
pub fn format_value(v: &Value, spec: &Spec) -> Result<String, RuntimeError> {
    match v {
        Value::Int(i) => match spec.ty {
            Some('e' | 'E' | 'f' | 'F' | 'g' | 'G' | '%') => float(*i as f64, spec),
            _ => int(*i, spec),
        },
        Value::Float(f) => float(*f, spec),
        Value::Str(s) => text(s, spec, "a string"),
        other => text(&other.to_display(), spec, &describe(other)),
    }
}

/// Strings, and any other value as its `str()`: fill, align, width and a
/// precision that cuts it short.
fn text(s: &str, spec: &Spec, what: &str) -> Result<String, RuntimeError> {
    let refuse = |option: &str| {
        Err(value_error(format!(
            "{} is not allowed when formatting {}",
            option, what
        )))
    };
    if let Some(ty) = spec.ty.filter(|&t| t != 's') {
        let needs = if "dboxXc".contains(ty) {
            "an int"
        } else {
            "a number"
        };
        return Err(value_error(format!(
            "format type `{}` needs {}, not {}",
            ty, needs, what
        )));
    }
    if spec.sign.is_some() {
        return refuse("a sign");
    }
    if spec.alternate {
        return refuse("`#`");
    }
    if spec.grouping.is_some() {
        return refuse("a thousands separator");
    }
    if spec.align == Some(Align::AfterSign) {
        return refuse("`=` alignment");
    }
    if spec.is_empty() {
        return Ok(s.to_string());
    }
    let body: String = match spec.precision {
        Some(p) => s.chars().take(p).collect(),
        None => s.to_string(),
    };
    Ok(pad("", &body, spec, (Align::Left, false)))
}

fn int(i: i64, spec: &Spec) -> Result<String, RuntimeError> {
    if spec.precision.is_some() {
        return Err(value_error(
            "a precision is not allowed for an int (format it as a float: `.2f`)",
        ));
    }
    let magnitude = i.unsigned_abs();
    let (digits, prefix, group_every) = match spec.ty {
        None | Some('d') => (magnitude.to_string(), "", 3),
        Some('b') => (format!("{:b}", magnitude), "0b", 4),
        Some('o') => (format!("{:o}", magnitude), "0o", 4),
        Some('x') => (format!("{:x}", magnitude), "0x", 4),
        Some('X') => (format!("{:X}", magnitude), "0X", 4),
        Some('c') => {
            if spec.sign.is_some() || spec.alternate {
                return Err(value_error(
                    "a sign or `#` is not allowed with format type `c`",
                ));
            }
            let c = u32::try_from(i)
                .ok()
                .and_then(char::from_u32)
                .ok_or_else(|| {
                    value_error(format!("format type `c` needs a character code, not {}", i))
                })?;
            return Ok(pad("", &c.to_string(), spec, (Align::Left, false)));
        }
        Some(ty) => {
            return Err(value_error(format!(
                "format type `{}` needs a string, not an int",
                ty
            )))
        }
    };
    if spec.grouping == Some(',') && group_every == 4 {
        return Err(value_error(
            "`,` cannot group binary, octal or hex digits (use `_`)",
        ));
    }
    let prefix = if spec.alternate { prefix } else { "" };
    let sign = sign_of(i < 0, spec);
    Ok(number(
        &format!("{sign}{prefix}"),
        &digits,
        "",
        spec,
        group_every,
    ))
}

fn sign_of(negative: bool, spec: &Spec) -> &'static str {
    match (negative, spec.sign) {
        (true, _) => "-",
        (false, Some(Sign::Always)) => "+",
        (false, Some(Sign::Space)) => " ",
        (false, _) => "",
    }
}

fn float(f: f64, spec: &Spec) -> Result<String, RuntimeError> {
    if let Some(ty @ ('d' | 'b' | 'o' | 'x' | 'X' | 'c' | 's')) = spec.ty {
        let needs = if ty == 's' { "a string" } else { "an int" };
        return Err(value_error(format!(
            "format type `{}` needs {}, not a float (convert with int(...) or round(...))",
            ty, needs
        )));
    }
    let sign = sign_of(f.is_sign_negative() && !f.is_nan(), spec);
    let magnitude = f.abs();
    let upper = matches!(spec.ty, Some('E' | 'F' | 'G'));
    if !magnitude.is_finite() {
        let word = match (magnitude.is_nan(), upper) {
            (true, false) => "nan",
            (true, true) => "NAN",
            (false, false) => "inf",
            (false, true) => "INF",
        };
        let suffix = if spec.ty == Some('%') { "%" } else { "" };
        return Ok(number(sign, word, suffix, spec, 0));
    }
    let body = {
        match spec.ty {
            Some('f' | 'F') => fixed(magnitude, spec.precision.unwrap_or(6), spec.alternate),
            Some('e' | 'E') => scientific(magnitude, spec.precision.unwrap_or(6), spec.alternate),
            Some('g' | 'G') => general(
                magnitude,
                spec.precision.unwrap_or(6),
                spec.alternate,
                false,
            ),
            Some('%') => {
                fixed(
                    magnitude * 100.0,
                    spec.precision.unwrap_or(6),
                    spec.alternate,
                ) + "%"
            }
            _ => match spec.precision {
                Some(p) => general(magnitude, p, spec.alternate, true),
                None => format_float(magnitude),
            },
        }
    };
    let body = if upper { body.to_uppercase() } else { body };
    // Group only the digits before the point (or the exponent).
    let split = body.find(['.', 'e', 'E', '%']).unwrap_or(body.len());
    let (digits, rest) = body.split_at(split);
    Ok(number(sign, digits, rest, spec, 3))
}

fn fixed(f: f64, precision: usize, alternate: bool) -> String {
    let mut s = format!("{:.*}", precision, f);
    if alternate && precision == 0 {
        s.push('.');
    }
    s
}

/// `1.5e+03`: Python's exponent has a sign and at least two digits.
fn scientific(f: f64, precision: usize, alternate: bool) -> String {
    let s = format!("{:.*e}", precision, f);
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let point = if alternate && precision == 0 { "." } else { "" };
    format!(
        "{}{}e{}{:02}",
        mantissa,
        point,
        if exp < 0 { '-' } else { '+' },
        exp.abs()
    )
}

/// Python's general format (`g`), and with `repr_like` the form a float
/// takes with a precision and no type: at least one digit after the point,
/// and scientific from an exponent of `precision - 1` on.
fn general(f: f64, precision: usize, alternate: bool, repr_like: bool) -> String {
    let p = precision.max(1);
    // The exponent after rounding to p significant digits.
    let exp = if f == 0.0 {
        0
    } else {
        let s = format!("{:.*e}", p - 1, f);
        s.split_once('e')
            .and_then(|(_, e)| e.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let limit = if repr_like { p as i64 - 1 } else { p as i64 };
    let mut s = if -4 <= exp && exp < limit {
        let decimals = (p as i64 - 1 - exp).max(0) as usize;
        format!("{:.*}", decimals, f)
    } else {
        scientific(f, p - 1, alternate)
    };
    if alternate {
        if !s.contains('.') && !s.contains('e') {
            s.push('.');
        }
        return s;
    }
    let (mantissa, exponent) = match s.find('e') {
        Some(e) => s.split_at(e),
        None => (s.as_str(), ""),
    };
    let mut mantissa = mantissa.to_string();
    if mantissa.contains('.') {
        while mantissa.ends_with('0') {
            mantissa.pop();
        }
        if mantissa.ends_with('.') {
            if repr_like && exponent.is_empty() {
                mantissa.push('0');
            } else {
                mantissa.pop();
            }
        }
    } else if repr_like && exponent.is_empty() {
        mantissa.push_str(".0");
    }
    mantissa + exponent
}

/// A number laid out: `lead` (sign, `0x`), the integer `digits` (grouped
/// when asked), then `rest` (fraction, exponent, `%`), padded.
fn number(lead: &str, digits: &str, rest: &str, spec: &Spec, group_every: usize) -> String {
    let grouped = |d: &str| match spec.grouping {
        Some(sep) if group_every > 0 => group(d, sep, group_every),
        _ => d.to_string(),
    };
    let mut body = grouped(digits);
    // Zero padding with a separator pads with grouped zeros, as Python does
    // (`format(1234, "09,")` is `0,001,234`).
    let zero_padded = spec.layout(true) == ('0', Some(Align::AfterSign));
    if zero_padded && spec.grouping.is_some() && group_every > 0 {
        let mut padded = digits.to_string();
        let used = |b: &str| lead.chars().count() + b.chars().count() + rest.chars().count();
        while used(&body) < spec.width {
            padded.insert(0, '0');
            body = grouped(&padded);
        }
    }
    body.push_str(rest);
    pad(lead, &body, spec, (Align::Right, true))
}

fn group(digits: &str, sep: char, every: usize) -> String {
    let chars: Vec<char> = digits.chars().collect();
    let mut out = String::with_capacity(chars.len() + chars.len() / every);
    for (i, c) in chars.iter().enumerate() {
        if i > 0 && (chars.len() - i).is_multiple_of(every) {
            out.push(sep);
        }
        out.push(*c);
    }
    out
}

/// `lead` then `body`, padded with the fill to the width; `default` is the
/// alignment when the spec gives none, and whether this is a number.
fn pad(lead: &str, body: &str, spec: &Spec, (default, is_number): (Align, bool)) -> String {
    let len = lead.chars().count() + body.chars().count();
    let missing = spec.width.saturating_sub(len);
    if missing == 0 {
        return format!("{lead}{body}");
    }
    let (fill_char, align) = spec.layout(is_number);
    let fill = |n: usize| std::iter::repeat_n(fill_char, n).collect::<String>();
    match align.unwrap_or(default) {
        Align::Left => format!("{lead}{body}{}", fill(missing)),
        Align::Right => format!("{}{lead}{body}", fill(missing)),
        Align::Center => format!(
            "{}{lead}{body}{}",
            fill(missing / 2),
            fill(missing - missing / 2)
        ),
        Align::AfterSign => format!("{lead}{}{body}", fill(missing)),
    }
}

// ---------------------------------------------------------------- templates

/// One part of an f-string body or a `.format()` template.
#[derive(Debug, PartialEq)]
pub enum Piece {
    /// Text as written (no braces in it).
    Text(Range<usize>),
    /// `{{` or `}}`: one brace.
    Brace(char),
    Field(Field),
}

/// `{expr!r:spec}`: byte ranges into the template.
#[derive(Debug, PartialEq)]
pub struct Field {
    /// The whole field, braces included.
    pub whole: Range<usize>,
    /// The expression (f-string) or field name (`.format`), untrimmed.
    pub expr: Range<usize>,
    /// `r` or `s` after a `!`.
    pub conversion: Option<char>,
    /// The spec after the `:` (empty when none).
    pub spec: Range<usize>,
    /// `{x=}`: the text `x=` is printed before the value (f-strings).
    pub self_documenting: bool,
}

/// A template that does not split: where (bytes) and why.
#[derive(Debug)]
pub struct TemplateError {
    pub at: Range<usize>,
    pub message: String,
    pub help: &'static str,
}

fn template_error(at: Range<usize>, message: &str, help: &'static str) -> TemplateError {
    TemplateError {
        at,
        message: message.to_string(),
        help,
    }
}

/// Split a template into text, doubled braces and fields. With `escapes`
/// (an f-string's body as written), a backslash escape is text, even
/// `\u{41}`; a field's expression may not contain a backslash.
pub fn split_template(t: &str, escapes: bool) -> Result<Vec<Piece>, TemplateError> {
    let bytes = t.as_bytes();
    let mut pieces = Vec::new();
    let mut text_start = 0;
    let mut i = 0;
    let end_text = |pieces: &mut Vec<Piece>, from: usize, to: usize| {
        if to > from {
            pieces.push(Piece::Text(from..to));
        }
    };
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if escapes => {
                i += 2;
                if bytes.get(i - 1) == Some(&b'u') && bytes.get(i) == Some(&b'{') {
                    while i < bytes.len() && bytes[i] != b'}' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'{' if bytes.get(i + 1) == Some(&b'{') => {
                end_text(&mut pieces, text_start, i);
                pieces.push(Piece::Brace('{'));
                i += 2;
                text_start = i;
            }
            b'}' if bytes.get(i + 1) == Some(&b'}') => {
                end_text(&mut pieces, text_start, i);
                pieces.push(Piece::Brace('}'));
                i += 2;
                text_start = i;
            }
            b'}' => {
                return Err(template_error(
                    i..i + 1,
                    "a single `}` in a format string",
                    "write `}}` for a literal `}`",
                ))
            }
            b'{' => {
                end_text(&mut pieces, text_start, i);
                let field = field(t, i, escapes)?;
                i = field.whole.end;
                text_start = i;
                pieces.push(Piece::Field(field));
            }
            _ => i += 1,
        }
    }
    end_text(&mut pieces, text_start, i.min(bytes.len()));
    Ok(pieces)
}

/// The field that opens at `open` (a `{`).
fn field(t: &str, open: usize, escapes: bool) -> Result<Field, TemplateError> {
    let bytes = t.as_bytes();
    let unclosed = || {
        template_error(
            open..open + 1,
            "this `{` is never closed",
            "close the field with `}`, or write `{{` for a literal `{`",
        )
    };
    let mut depth = 0usize;
    let mut i = open + 1;
    // The expression: up to a `!`, `:`, `=` or `}` outside brackets.
    let expr_end = loop {
        let Some(&b) = bytes.get(i) else {
            return Err(unclosed());
        };
        match b {
            // A string inside a field (`f"{m["k"]}"`), on one line.
            b'"' if escapes => {
                i = string_end(bytes, i, true, 1).ok_or_else(unclosed)?;
                continue;
            }
            b'\\' if escapes => {
                return Err(template_error(
                    i..i + 1,
                    "a `\\` cannot be used inside `{ }` in an f-string",
                    "put the value in a variable first: `let v = m[\"k\"]`, then `f\"{v}\"`",
                ))
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' if depth > 0 => depth -= 1,
            b'}' => break i,
            b'!' if depth == 0 && bytes.get(i + 1) != Some(&b'=') => break i,
            b':' if depth == 0 => break i,
            b'=' if depth == 0 && is_self_doc(bytes, i) => break i,
            _ => {}
        }
        i += 1;
    };
    let mut self_documenting = false;
    if bytes[expr_end] == b'=' {
        self_documenting = true;
        i = expr_end + 1;
        while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
    }
    let mut conversion = None;
    if bytes.get(i) == Some(&b'!') {
        let c = t[i + 1..].chars().next();
        match c {
            Some(c @ ('r' | 's')) => conversion = Some(c),
            _ => {
                let width = c.map_or(0, char::len_utf8);
                return Err(template_error(
                    i..i + 1 + width,
                    "a conversion is `!r` (repr) or `!s` (str)",
                    "write `{x!r}` for the quoted form, or `{x}`",
                ));
            }
        }
        i += 2;
        if !matches!(bytes.get(i), Some(b':' | b'}')) {
            return Err(template_error(
                i..(i + 1).min(t.len()),
                "expected `:` or `}` after the conversion",
                "write `{x!r}` or `{x!r:>10}`",
            ));
        }
    }
    let mut spec = i..i;
    if bytes.get(i) == Some(&b':') {
        let start = i + 1;
        let mut j = start;
        loop {
            match bytes.get(j) {
                None => return Err(unclosed()),
                Some(b'}') => break,
                Some(b'{') => {
                    return Err(template_error(
                        j..j + 1,
                        "a format spec cannot contain a field",
                        "work the spec out first and use format(value, spec)",
                    ))
                }
                Some(_) => j += 1,
            }
        }
        spec = start..j;
        i = j;
    }
    if bytes.get(i) != Some(&b'}') {
        return Err(unclosed());
    }
    Ok(Field {
        whole: open..i + 1,
        expr: open + 1..expr_end,
        conversion,
        spec,
        self_documenting,
    })
}

/// Strings nested in f-string fields deeper than this are not followed.
const MAX_NESTED_STRINGS: usize = 64;

/// Just past the end of the string literal whose opening `"` is at `open`,
/// or `None` if it does not end (on its line, with `one_line`). An
/// f-string's fields may hold strings of their own: `f"{m["k"]}"`. The
/// scanner, the grammar's `fstring` and `split_template` agree on this.
pub fn string_end(b: &[u8], open: usize, one_line: bool, level: usize) -> Option<usize> {
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let fstring = open > 0 && b[open - 1] == b'f' && !(open > 1 && ident(b[open - 2]));
    if level > MAX_NESTED_STRINGS {
        return None;
    }
    let mut depth = 0usize;
    let mut i = open + 1;
    while let Some(&c) = b.get(i) {
        match c {
            b'\n' if one_line => return None,
            // In a field too: `\"` there is an error, not a string.
            b'\\' => i += 1,
            b'"' if depth == 0 => return Some(i + 1),
            b'"' => {
                i = string_end(b, i, true, level + 1)?;
                continue;
            }
            b'{' if fstring && depth == 0 && b.get(i + 1) == Some(&b'{') => i += 1,
            b'{' if fstring => depth += 1,
            b'}' if depth > 0 => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// `=` ends a self-documenting `{x=}` when it is not part of `==`, `!=`,
/// `<=`, `>=` and only blanks, `!`, `:` or `}` follow it.
fn is_self_doc(bytes: &[u8], i: usize) -> bool {
    let before = i.checked_sub(1).map(|j| bytes[j]);
    if matches!(before, Some(b'=' | b'!' | b'<' | b'>')) || bytes.get(i + 1) == Some(&b'=') {
        return false;
    }
    let mut j = i + 1;
    while bytes.get(j).is_some_and(u8::is_ascii_whitespace) {
        j += 1;
    }
    matches!(bytes.get(j), Some(b'!' | b':' | b'}'))
}

/// A field's value turned into text: its conversion, then its spec.
pub fn convert_and_format(
    v: &Value,
    conversion: Option<char>,
    spec: &Spec,
) -> Result<String, RuntimeError> {
    match conversion {
        Some('r') => format_value(&Value::str(&v.to_repr()), spec),
        Some(_) => format_value(&Value::str(&v.to_display()), spec),
        None if spec.is_empty() => Ok(v.to_display()),
        None => format_value(v, spec),
    }
}

/// `template.format(args...)`: `{}` takes the next argument, `{0}` the
/// first; each may have `!r` and a spec.
pub fn format_template(template: &str, args: &[Value]) -> Result<String, RuntimeError> {
    let pieces = split_template(template, false).map_err(|e| {
        value_error(format!(
            "{} (at character {})",
            e.message,
            template[..e.at.start].chars().count() + 1
        ))
        .with_help(e.help)
    })?;
    let mut out = String::with_capacity(template.len());
    let mut next_auto = Some(0usize);
    let mut manual = false;
    for piece in pieces {
        match piece {
            Piece::Text(r) => out.push_str(&template[r]),
            Piece::Brace(c) => out.push(c),
            Piece::Field(f) => {
                let name = template[f.expr.clone()].trim();
                let index = if name.is_empty() {
                    let Some(n) = next_auto.filter(|_| !manual) else {
                        return Err(value_error(
                            "cannot mix `{}` and numbered fields like `{0}` in one template",
                        ));
                    };
                    next_auto = Some(n + 1);
                    n
                } else if let Ok(n) = name.parse::<usize>() {
                    if next_auto != Some(0) && !manual {
                        return Err(value_error(
                            "cannot mix `{}` and numbered fields like `{0}` in one template",
                        ));
                    }
                    manual = true;
                    n
                } else {
                    return Err(value_error(format!(
                        "`{{{}}}`: a field of .format() is `{{}}` or a number like `{{0}}`",
                        name
                    ))
                    .with_help(format!(
                        "conc has no keyword arguments: pass the values in order, or use an \
                         f-string: f\"{{{}}}\"",
                        name
                    )));
                };
                let value = args.get(index).ok_or_else(|| {
                    RuntimeError::new(
                        kind::INDEX,
                        format!(
                            "the template wants argument {} but format() was given {}",
                            index,
                            args.len()
                        ),
                    )
                })?;
                let spec =
                    parse_spec(&template[f.spec.clone()]).map_err(|e| value_error(e.message))?;
                out.push_str(&convert_and_format(value, f.conversion, &spec)?);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(v: Value, spec: &str) -> String {
        match format_text_spec(&v, spec) {
            Ok(s) => s,
            Err(e) => format!("error: {}", e.message),
        }
    }

    #[test]
    fn floats_format_as_python_does() {
        let cases: &[(f64, &str, &str)] = &[
            (0.25226052900000007, ".2f", "0.25"),
            (2.34567, "8.3f", "   2.346"),
            (2.5, ".0f", "2"),
            (0.125, ".2f", "0.12"),
            (-0.0, ".1f", "-0.0"),
            (1234567.891, ",.2f", "1,234,567.89"),
            (12345.678, ".2e", "1.23e+04"),
            (0.000123, "e", "1.230000e-04"),
            (0.5, ".1%", "50.0%"),
            (0.25, "%", "25.000000%"),
            (1234.5, ".3", "1.23e+03"),
            (100.0, ".3", "1e+02"),
            (1.0, ".3", "1.0"),
            (12.0, ".3", "12.0"),
            (0.0001, ".3", "0.0001"),
            (123456789.0, "g", "1.23457e+08"),
            (0.00001234, "g", "1.234e-05"),
            (100.0, "g", "100"),
            (100.0, "#g", "100.000"),
            (1.5, "+.1f", "+1.5"),
            (1.5, " .1f", " 1.5"),
            (-1.5, "010.2f", "-000001.50"),
            (1234.5, "012,.1f", "00,001,234.5"),
            (3.0, "*^9.1f", "***3.0***"),
            (f64::INFINITY, "f", "inf"),
            (f64::NAN, "F", "NAN"),
            (2.5, "", "2.5"),
            (1e16, "", "10000000000000000.0"),
            (1.5, "d", "error: format type `d` needs an int, not a float (convert with int(...) or round(...))"),
        ];
        for (v, spec, want) in cases {
            assert_eq!(fmt(Value::Float(*v), spec), *want, "{} with {:?}", v, spec);
        }
    }

    #[test]
    fn ints_and_strings_format_as_python_does() {
        let ints: &[(i64, &str, &str)] = &[
            (42, "", "42"),
            (42, "5", "   42"),
            (42, "<5", "42   "),
            (42, "^6", "  42  "),
            (-42, "=6", "-   42"),
            (-42, "06", "-00042"),
            (1234567, ",", "1,234,567"),
            (1234567, "_", "1_234_567"),
            (1234, "09,", "0,001,234"),
            (255, "x", "ff"),
            (255, "#X", "0XFF"),
            (255, "#010b", "0b11111111"),
            (-255, "#x", "-0xff"),
            (65535, "_x", "ffff"),
            (1048575, "_x", "f_ffff"),
            (65, "c", "A"),
            (5, ".2f", "5.00"),
            (3, "%", "300.000000%"),
            (i64::MIN, "", "-9223372036854775808"),
            (
                5,
                ".2",
                "error: a precision is not allowed for an int (format it as a float: `.2f`)",
            ),
            (
                5,
                ",x",
                "error: `,` cannot group binary, octal or hex digits (use `_`)",
            ),
        ];
        for (v, spec, want) in ints {
            assert_eq!(fmt(Value::Int(*v), spec), *want, "{} with {:?}", v, spec);
        }
        assert_eq!(fmt(Value::str("ab"), ">4"), "  ab");
        assert_eq!(fmt(Value::str("ab"), "-<4"), "ab--");
        assert_eq!(fmt(Value::str("abcdef"), ".3"), "abc");
        assert_eq!(fmt(Value::str("é"), "^3"), " é ");
        assert_eq!(fmt(Value::Bool(true), ">6"), "  true");
        assert_eq!(fmt(Value::Nil, "5"), "nil  ");
        assert!(fmt(Value::str("ab"), "d").starts_with("error: format type `d` needs an int"));
        assert!(fmt(Value::str("ab"), "+").starts_with("error: a sign is not allowed"));
    }

    #[test]
    fn bad_specs_say_where() {
        let err = |s: &str| parse_spec(s).err().map(|e| (e.at, e.message));
        assert_eq!(err(".2z").map(|e| e.0), Some(2..3));
        assert_eq!(err("10.").map(|e| e.0), Some(2..3));
        assert!(err("99999999").is_some());
        assert!(err(".2fx").is_some());
        assert!(err(">10,.2f").is_none());
    }

    #[test]
    fn templates_split_into_text_braces_and_fields() {
        let pieces = split_template("a{{b}}{x!r:>5}{y=}", false).map_err(|e| e.message);
        let pieces = pieces.unwrap_or_default();
        assert_eq!(pieces.len(), 6);
        assert_eq!(pieces[1], Piece::Brace('{'));
        let Piece::Field(f) = &pieces[4] else {
            panic!("not a field: {:?}", pieces[4]);
        };
        assert_eq!(
            (f.expr.clone(), f.conversion, f.spec.clone()),
            (7..8, Some('r'), 11..13)
        );
        assert!(matches!(&pieces[5], Piece::Field(f) if f.self_documenting));
        let nested = split_template("{f(xs[1:2], {1: 2})}", false).map_err(|e| e.message);
        assert!(matches!(&nested.unwrap_or_default()[..], [Piece::Field(f)] if f.spec.is_empty()));
        assert!(split_template("{a == b}", false)
            .is_ok_and(|p| matches!(&p[..], [Piece::Field(f)] if !f.self_documenting)));
        assert!(split_template("a}b", false).is_err());
        assert!(split_template("{a", false).is_err());
        assert!(split_template("\\u{41}", true).is_ok_and(|p| p.len() == 1));
        let quoted = split_template(r#"{m["}:"]:>3}"#, true).map_err(|e| e.message);
        assert!(matches!(&quoted.unwrap_or_default()[..], [Piece::Field(f)] if f.expr == (1..8)));
        assert_eq!(string_end(b"f\"{f\"{1}\"}\" x", 1, false, 1), Some(11));
        assert_eq!(string_end(b"\"a\\\"b\"", 0, false, 1), Some(6));
        assert_eq!(string_end(b"f\"{x\"\n", 1, false, 1), None);
    }

    #[test]
    fn format_method_numbers_its_fields() {
        let args = [Value::str("x"), Value::Float(0.5)];
        let run = |t: &str| format_template(t, &args).map_err(|e| e.message);
        assert_eq!(run("{} took {:.2f}s").as_deref(), Ok("x took 0.50s"));
        assert_eq!(run("{1} {0} {0!r}").as_deref(), Ok("0.5 x \"x\""));
        assert!(run("{} {0}").is_err());
        assert!(run("{name}").is_err());
        assert!(run("{} {} {}").is_err());
    }
}
