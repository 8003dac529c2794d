//! Python habits. conc's users know Python, so when a parse fails where
//! Python syntax was written (`def`, `if x:`, `elif`, `&&`, `x++`...),
//! the error names the habit and its help line shows the conc form.
//!
//! Each rule looks only at the failing line and the token where pest gave
//! up, so an ordinary mistake keeps its ordinary message.

use crate::diagnostics::SyntaxError;
use crate::span::Span;
use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::Arc;

/// A Python habit found at the failure: what to say, where, and the conc form.
struct Habit {
    message: String,
    /// Byte range of the Python construct in the source.
    at: (usize, usize),
    help: String,
}

/// `err` reworded when it is a Python habit; otherwise unchanged.
/// Input that merely stops early is left alone: more lines may complete it.
pub(super) fn recognise(err: SyntaxError, source: &str) -> SyntaxError {
    if err.incomplete {
        return err;
    }
    let pos = (err.span.start as usize).min(source.len());
    let Some(habit) = find_habit(source, pos) else {
        return err;
    };
    let span = Span::new(err.span.src, habit.at.0, habit.at.1);
    SyntaxError {
        message: habit.message,
        span,
        label: "Python syntax".to_string(),
        help: Some(habit.help),
        incomplete: false,
    }
}

/// The failing line as the rules see it.
struct Site<'s> {
    source: &'s str,
    pos: usize,
    line_start: usize,
    line: &'s str,
    /// The word where pest gave up, if a word is there.
    token: Option<&'s str>,
}

impl Site<'_> {
    fn first_word(&self) -> Option<(usize, &str)> {
        let indent = self.line.len() - self.line.trim_start().len();
        let word = leading_word(&self.line[indent..])?;
        Some((self.line_start + indent, word))
    }

    fn at_token(&self) -> (usize, usize) {
        (self.pos, self.pos + self.token.map_or(1, str::len))
    }

    /// The text of the line after the error position, trimmed.
    fn rest(&self) -> &str {
        self.source[self.pos..self.line_start + self.line.len()].trim()
    }

    fn before(&self) -> &str {
        &self.source[self.line_start..self.pos]
    }
}

fn find_habit(source: &str, pos: usize) -> Option<Habit> {
    let line_start = source[..pos].rfind('\n').map_or(0, |i| i + 1);
    let line_end = source[pos..].find('\n').map_or(source.len(), |i| pos + i);
    let site = Site {
        source,
        pos,
        line_start,
        line: &source[line_start..line_end],
        token: leading_word(&source[pos..]),
    };
    line_keyword(&site)
        .or_else(|| misplaced_word(&site))
        .or_else(|| punctuation(&site))
        .or_else(|| indented_block(&site))
}

fn leading_word(text: &str) -> Option<&str> {
    let len = text
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
        .count();
    let word = &text[..len];
    (!word.is_empty() && !word.as_bytes()[0].is_ascii_digit()).then_some(word)
}

fn habit(message: &str, at: (usize, usize), help: impl Into<String>) -> Option<Habit> {
    Some(Habit {
        message: message.to_string(),
        at,
        help: help.into(),
    })
}

/// A line that starts with a Python statement keyword.
fn line_keyword(site: &Site) -> Option<Habit> {
    let (start, word) = site.first_word()?;
    let at = (start, start + word.len());
    match word {
        "def" => habit(
            "`def` is Python: conc defines functions with `fn`",
            at,
            "write `fn add(a, b) { return a + b }`",
        ),
        "elif" => habit(
            "`elif` is Python: conc writes `else if`",
            at,
            "write `if x > 0 { ... } else if x < 0 { ... } else { ... }`",
        ),
        "import" | "from" => habit(
            "conc has no `import`",
            at,
            "threads, processes, queues, locks and pools are built in: `spawn f(x)`, `queue()`, \
             `lock()`, `thread_pool(4)`; in the REPL, `:load FILE` runs a script",
        ),
        "class" => habit(
            "conc has no classes",
            at,
            "keep an object's state in a map and pass it to functions: \
             `let account = {\"balance\": 0}` and `fn deposit(a, n) { a[\"balance\"] += n }`",
        ),
        "with" => habit(
            "`with` is Python: conc holds a lock for a block with `lock`",
            at,
            "write `lock m { counter += 1 }`: the lock is released on every way out of the block",
        ),
        "lambda" => habit(
            "`lambda` is Python: conc writes an anonymous function with `fn`",
            at,
            "write `let double = fn(x) { return x * 2 }`",
        ),
        "global" | "nonlocal" => habit(
            &format!("conc has no `{word}`"),
            at,
            "a function assigns to a global or an enclosing variable by its name: `n = n + 1`",
        ),
        "print" if site.pos > at.1 && starts_with_value(site.source[at.1..].trim_start()) => habit(
            "`print` is a function in conc",
            at,
            "write `print(\"hello\", name)`",
        ),
        _ => None,
    }
}

/// `1 `, `x `, `f(a) `: an operand just ended (`let if` or `else if` did not).
fn ends_with_value(text: &str) -> bool {
    if text.ends_with([')', ']', '"']) {
        return true;
    }
    let start = text
        .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    let word = &text[start..];
    let keywords = [
        "let", "else", "return", "and", "or", "not", "in", "raise", "assert",
    ];
    !word.is_empty() && !keywords.contains(&word)
}

fn starts_with_value(text: &str) -> bool {
    text.starts_with(|c: char| c == '"' || c.is_alphanumeric() || c == '_')
}

/// A Python word where pest gave up.
fn misplaced_word(site: &Site) -> Option<Habit> {
    let previous = site.before().trim_end();
    if previous.ends_with("lambda") {
        let start = site.line_start + previous.len() - "lambda".len();
        return habit(
            "`lambda` is Python: conc writes an anonymous function with `fn`",
            (start, start + "lambda".len()),
            "write `let double = fn(x) { return x * 2 }`",
        );
    }
    let word = site.token?;
    let at = site.at_token();
    let before = site.before().trim_end();
    match word {
        "elif" => habit(
            "`elif` is Python: conc writes `else if`",
            at,
            "write `if x > 0 { ... } else if x < 0 { ... }`",
        ),
        "except" => habit(
            "`except` is Python: conc catches with `catch`",
            at,
            "write `try { risky() } catch e { print(e.kind, e.message) }`",
        ),
        "is" => habit(
            "`is` is Python: conc compares with `==` and `!=`",
            at,
            "write `x == nil` or `x != nil` (`==` is identity on handles, equality on data)",
        ),
        "lambda" => habit(
            "`lambda` is Python: conc writes an anonymous function with `fn`",
            at,
            "write `let double = fn(x) { return x * 2 }`",
        ),
        "if" if ends_with_value(before) => habit(
            "conc has no conditional expression (`a if c else b`)",
            at,
            "use an if statement: `let y = b` then `if c { y = a }`",
        ),
        "for" if before.contains('[') => habit(
            "conc has no list comprehensions",
            at,
            "build the list with a loop: `let ys = []` then `for x in xs { append(ys, x * 2) }`",
        ),
        _ => None,
    }
}

/// Python operators and punctuation: `:` blocks, `&&`, `||`, `!`, `++`,
/// keyword arguments, annotations.
fn punctuation(site: &Site) -> Option<Habit> {
    let rest = &site.source[site.pos..];
    let here = (site.pos, site.pos + 1);
    let two = (site.pos, site.pos + 2);
    let before = site.before();
    if rest.starts_with("&&") {
        return habit("`&&` is not conc", two, "write `a and b`");
    }
    if rest.starts_with("||") {
        return habit("`||` is not conc", two, "write `a or b`");
    }
    if rest.starts_with('!') && !rest.starts_with("!=") {
        return habit("`!` is not conc", here, "write `not done`");
    }
    if let Some(found) = increment(site) {
        return Some(found);
    }
    if rest.starts_with(':') {
        return colon(site);
    }
    if rest.starts_with('=') && !rest.starts_with("==") && keyword_argument(before).is_some() {
        let name = keyword_argument(before).unwrap_or_default();
        let start = site.pos - (before.len() - before.trim_end().len()) - name.len();
        let help = if name == "target" {
            "start a thread with spawn: `let t = spawn worker(1, 2)`, then `join t`".to_string()
        } else if name == "timeout" {
            "write the timeout after the operation: `get q timeout 0.5`, `join t timeout 2`"
                .to_string()
        } else if name == "max_workers" || name == "processes" {
            "the size is the only argument: `thread_pool(4)`, `process_pool(4)`".to_string()
        } else if site.line.trim_start().starts_with("fn") {
            format!("conc has no default values: write `{name}` alone and pass it at every call")
        } else {
            format!("pass the arguments in order, without `{name}=`")
        };
        return habit("conc has no keyword arguments", (start, site.pos + 1), help);
    }
    None
}

/// The parameter or argument name just before an `=` inside parentheses.
fn keyword_argument(before: &str) -> Option<&str> {
    let open = before.rfind('(')?;
    if before[open..].contains(')') {
        return None;
    }
    let trimmed = before.trim_end();
    let start = trimmed
        .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    leading_word(&trimmed[start..])
}

/// `x++` / `x--` (pest fails at the second sign or at the end after it).
fn increment(site: &Site) -> Option<Habit> {
    let code = site.line.split('#').next().unwrap_or("");
    for (op, form) in [("++", "+="), ("--", "-=")] {
        let Some(at) = code.find(op) else { continue };
        let name = code[..at].trim_end();
        let is_name_before = name.ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ']');
        let rest = code[at + 2..].trim();
        if is_name_before && (rest.is_empty() || rest.starts_with([';', '}'])) {
            let start = site.line_start + at;
            let target = name
                .rsplit(|c: char| c.is_whitespace() || c == '{' || c == ';')
                .next()
                .unwrap_or(name);
            return habit(
                &format!("`{op}` is not conc"),
                (start, start + 2),
                format!("write `{target} {form} 1`"),
            );
        }
    }
    None
}

/// A `:` where conc wants a block or a value: Python blocks, annotations.
fn colon(site: &Site) -> Option<Habit> {
    let here = (site.pos, site.pos + 1);
    let head = site.before().trim();
    let ends_line =
        site.rest()[1..].trim_start().is_empty() || site.rest()[1..].trim_start().starts_with('#');
    let block_word = leading_word(head).is_some_and(|w| {
        matches!(
            w,
            "if" | "else" | "while" | "for" | "try" | "catch" | "fn" | "lock"
        )
    });
    if ends_line && (block_word || head.starts_with('}')) {
        return habit(
            "conc blocks are in braces, not `:` and indentation",
            here,
            format!("write `{head} {{ ... }}`"),
        );
    }
    if head.starts_with("let ") {
        return habit(
            "conc has no type annotations",
            here,
            "write `let x = 1`; `type(x)` tells a value's type",
        );
    }
    None
}

/// `if x` followed by an indented line instead of `{`.
fn indented_block(site: &Site) -> Option<Habit> {
    let head = site.line.trim();
    let opens_block =
        leading_word(head).is_some_and(|w| matches!(w, "if" | "while" | "for" | "else"));
    let at_line_end = site.rest().is_empty() || site.rest().starts_with('#');
    let next = site.source[site.line_start + site.line.len()..]
        .lines()
        .find(|l| !l.trim().is_empty())?;
    let indent = |l: &str| l.len() - l.trim_start().len();
    (opens_block && at_line_end && indent(next) > indent(site.line)).then(|| Habit {
        message: "conc blocks are in braces, not indentation".to_string(),
        at: (site.pos.saturating_sub(1).max(site.line_start), site.pos),
        help: format!("write `{head} {{ ... }}`, the block's statements between the braces"),
    })
}

/// `t.daemon = true` and `t.name = "w"`: Python sets them on a thread
/// before `start()`; conc gives them when it spawns.
pub(super) fn field_assignment(field: &str) -> Option<&'static str> {
    match field {
        "daemon" => Some("a thread is a daemon from its spawn: `let t = spawn daemon worker(1)`"),
        "name" => Some("a thread is named at its spawn: `let t = spawn worker(1) named \"w\"`"),
        _ => None,
    }
}

/// Python words that parse as conc (a name, a call) but can only be a
/// Python habit when nothing in the source declares them: `True`, `None`,
/// `pass`, `raise ValueError(...)`. The builder records declarations and
/// such uses; once the whole source is built, an undeclared use is a
/// syntax error with the conc form, before anything runs.
#[derive(Default)]
pub(super) struct PythonNames {
    declared: RefCell<HashSet<Arc<str>>>,
    uses: RefCell<Vec<(PythonUse, Span)>>,
}

#[derive(Clone)]
pub(super) enum PythonUse {
    /// `True`, `False`, `None`.
    Value(&'static str),
    /// `pass` as a statement.
    Pass,
    /// `raise ValueError(...)`.
    RaiseClass(Arc<str>),
}

impl PythonNames {
    pub(super) fn declare(&self, name: &Arc<str>) {
        self.declared.borrow_mut().insert(name.clone());
    }

    /// Notes a name used as a value, if it is one of Python's constants.
    pub(super) fn value(&self, name: &str, span: Span) {
        let conc = match name {
            "True" => "true",
            "False" => "false",
            "None" => "nil",
            _ => return,
        };
        self.uses.borrow_mut().push((PythonUse::Value(conc), span));
    }

    pub(super) fn used(&self, what: PythonUse, span: Span) {
        self.uses.borrow_mut().push((what, span));
    }

    /// The first recorded use whose name no declaration in the source covers.
    pub(super) fn check(&self, source_text: impl Fn(Span) -> String) -> Result<(), SyntaxError> {
        let declared = self.declared.borrow();
        for (what, span) in self.uses.borrow().iter() {
            let name = source_text(*span);
            if declared.contains(name.as_str()) {
                continue;
            }
            let (message, help) = match what {
                PythonUse::Value(conc) => (
                    format!("`{name}` is Python: conc writes `{conc}`"),
                    match *conc {
                        "nil" => "write `nil`: `let result = nil`, `if result == nil { ... }`".to_string(),
                        word => format!("write `{word}`: `while {word} {{ ... }}`"),
                    },
                ),
                PythonUse::Pass => (
                    "conc has no `pass`".to_string(),
                    "an empty block is just `{ }`: `if x { }`".to_string(),
                ),
                PythonUse::RaiseClass(kind) => (
                    format!("`{kind}` is not defined: conc has no exception classes"),
                    format!("write `raise error(\"{kind}\", \"what went wrong\")`; a `catch e` sees `e.kind == \"{kind}\"`"),
                ),
            };
            return Err(SyntaxError::new(message, *span, "Python syntax").with_help(help));
        }
        Ok(())
    }
}

/// `ValueError`, `RuntimeError`, `Exception`: a name Python raises.
pub(super) fn is_exception_class(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_uppercase())
        && (name.ends_with("Error") || name.ends_with("Exception"))
}
