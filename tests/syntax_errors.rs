//! The parser's contract: malformed scripts give a located, worded
//! `SyntaxError` (never a panic) with `incomplete` set exactly when the input
//! merely stops too early; every snippet of the language contract parses; the AST has
//! the documented shapes and spans.

use conc::ast::{
    BinOp, ExprKind, FPiece, Pattern, Program, SelectKind, SpawnBody, StmtKind, UnaryOp,
};
use conc::diagnostics::SyntaxError;
use conc::parser::parse;
use conc::span::SourceId;

// ---------------------------------------------------------------- helpers

fn ok(source: &str) -> Program {
    match parse(source, SourceId(0)) {
        Ok(program) => program,
        Err(e) => panic!("{source:?} should parse, got {e:?}"),
    }
}

fn err(source: &str) -> SyntaxError {
    match parse(source, SourceId(0)) {
        Ok(_) => panic!("{source:?} should be a syntax error"),
        Err(e) => e,
    }
}

/// The message must read as words: no pest rule names (`let_stmt`, `EOI`).
/// Text inside backticks quotes the user's code and is exempt.
fn assert_worded(source: &str, text: &str) {
    assert!(!text.contains("EOI"), "{source:?}: rule name in {text:?}");
    for (i, part) in text.split('`').enumerate() {
        let outside_quotes = i % 2 == 0;
        assert!(
            !(outside_quotes && part.contains('_')),
            "{source:?}: rule-like name in {text:?}"
        );
    }
}

/// One malformed script: where the culprit is (`None`: the end of input),
/// whether it is merely incomplete, and a fragment of the message.
struct Case {
    source: &'static str,
    culprit: Option<&'static str>,
    /// Which occurrence of `culprit` (0 = first).
    nth: usize,
    incomplete: bool,
    message: &'static str,
}

const fn case(
    source: &'static str,
    culprit: Option<&'static str>,
    incomplete: bool,
    message: &'static str,
) -> Case {
    Case {
        source,
        culprit,
        nth: 0,
        incomplete,
        message,
    }
}

const fn nth(mut c: Case, n: usize) -> Case {
    c.nth = n;
    c
}

fn culprit_offset(c: &Case) -> usize {
    match c.culprit {
        None => c.source.trim_end().len(),
        Some(text) => c
            .source
            .match_indices(text)
            .nth(c.nth)
            .map(|(i, _)| i)
            .unwrap_or_else(|| panic!("{:?}: culprit {text:?} not found", c.source)),
    }
}

fn check(c: &Case) {
    let e = err(c.source);
    let at = culprit_offset(c);
    let (start, end) = (e.span.start as usize, e.span.end as usize);
    // "At or near": the span touches the culprit, allowing one byte of slack.
    let culprit_end = at + c.culprit.map_or(0, str::len);
    assert!(
        start <= culprit_end + 1 && end + 1 >= at,
        "{:?}: span {start}..{end} is not at the culprit (offset {at}); error {e:?}",
        c.source
    );
    assert_eq!(
        e.incomplete, c.incomplete,
        "{:?}: incomplete flag; error {e:?}",
        c.source
    );
    assert!(
        e.message.contains(c.message),
        "{:?}: message {:?} should contain {:?}",
        c.source,
        e.message,
        c.message
    );
    assert_worded(c.source, &e.message);
    if let Some(help) = &e.help {
        assert_worded(c.source, help);
    }
    assert!(!e.label.is_empty());
}

// ---------------------------------------------------------------- malformed scripts

const END: Option<&str> = None;

const CASES: &[Case] = &[
    // Merely incomplete: open brackets, open string, trailing operator or comma.
    case(
        "if x {\n  print(1)\n",
        Some("{"),
        true,
        "expected `}` to close this block",
    ),
    case("while true {", Some("{"), true, "`}`"),
    case("let m = {\"a\": 1,", Some("{"), true, "`}`"),
    case("fn (", Some("("), true, "`)`"),
    case("print(1,", Some("("), true, "`)`"),
    case("let xs = [1, 2,", Some("["), true, "`]`"),
    case("xs[", Some("["), true, "`]`"),
    case("let s = \"abc", Some("\"abc"), true, "unterminated string"),
    case("1 +", END, true, "expected an expression"),
    case("let x = 1 +\n", END, true, "expected an expression"),
    case("return a *", END, true, "expected an expression"),
    case("let ok = a and", END, true, "expected an expression"),
    case("let x = -", END, true, "expected an expression"),
    case("print(f(1), g(2)", Some("("), true, "`)`"),
    // Errors.
    case("let if = 1", Some("if"), false, "keyword"),
    case("let x", END, false, "expected `=`"),
    case("let x 5", Some("5"), false, "expected `=`"),
    case("print(\"\\q\")", Some("\\q"), false, "unknown escape `\\q`"),
    case(
        "\"\\u{110000}\"",
        Some("\\u"),
        false,
        "invalid unicode escape",
    ),
    // A string may span lines: one that is never closed runs to the end.
    case(
        "let s = \"abc\nprint(s)",
        Some("\"abc"),
        true,
        "unterminated string",
    ),
    case("}", Some("}"), false, "unmatched `}`"),
    case("x = 1)", Some(")"), false, "unmatched `)`"),
    case("f(1]", Some("]"), false, "expected `)`"),
    case("for in x {}", Some("in"), false, "keyword"),
    nth(
        case("x = = 1", Some("="), false, "expected an expression"),
        1,
    ),
    case("x +* 2", Some("*"), false, "expected an expression"),
    case(
        "spawn",
        END,
        false,
        "expected a function call or a block after `spawn`",
    ),
    case(
        "spawn 5",
        Some("5"),
        false,
        "expected a function call or a block after `spawn`",
    ),
    case(
        "let t = spawn thread",
        Some("thread"),
        false,
        "function call",
    ),
    case("submit p, 5", Some("5"), false, "function call"),
    case("join", END, false, "expected an expression"),
    case("put q", END, false, "expected `,`"),
    case(
        "select { case }",
        Some("}"),
        false,
        "`get`, `put` or `timeout`",
    ),
    case("select { }", Some("}"), false, "`case`"),
    case(
        "let n = 99999999999999999999",
        Some("9"),
        false,
        "integer literal too large",
    ),
    case("{\"a\" 1}", Some("1"), false, "expected `:`"),
    case(
        "else { }",
        Some("else"),
        false,
        "`else` without a matching `if`",
    ),
    case(
        "x = 1\ncatch e { }",
        Some("catch"),
        false,
        "`catch` without a matching `try`",
    ),
    case(
        "f() = 1",
        Some("f()"),
        false,
        "cannot assign to a function call",
    ),
    case("a.b = 1", Some("a.b"), false, "cannot assign to a field"),
    case("xs[1:2] = 1", Some("xs"), false, "cannot assign to a slice"),
    case(
        "1 2",
        Some("2"),
        false,
        "expected an operator or the end of the statement",
    ),
    nth(case("a < b < c", Some("<"), false, "cannot be chained"), 1),
    nth(
        case(
            "fn f(a, a) { }",
            Some("a"),
            false,
            "duplicate parameter `a`",
        ),
        1,
    ),
    case("print(1 2)", Some("2"), false, "expected `)` or `,`"),
    case("[1 2]", Some("2"), false, "expected `,` or `]`"),
    case("x.", END, false, "field or method name"),
    case("try { } catch e", END, false, "expected `{`"),
    // The next line may still bring the `catch` or the `else` branch.
    case("try { }", END, true, "expected `catch`"),
    case("if x { } else", END, true, "expected `if` or `{`"),
    case("if x { } else y", Some("y"), false, "expected `if` or `{`"),
    nth(
        case("xs[1:2:3:4]", Some(":"), false, "at most three parts"),
        2,
    ),
    case("xs[]", Some("["), false, "expected an index"),
    case("lock m", END, false, "expected `{`"),
    case("let x =\n1", Some("\n"), false, "expected an expression"),
    case("(1, 2)", Some(","), false, "expected `)`"),
    case("fn f", END, false, "expected `(`"),
    case("let [a, 1] = x", Some("1"), false, "a name"),
    case("put q, 1 timeout", END, false, "expected an expression"),
    // f-strings: the caret is inside the string.
    case(
        "print(f\"{x:.2z}\")",
        Some("z"),
        false,
        "unknown format type",
    ),
    case("print(f\"{}\")", Some("{}"), false, "needs an expression"),
    case("print(f\"a } b\")", Some("}"), false, "a single `}`"),
    case(
        "print(f\"{x + }\")",
        Some("}"),
        false,
        "expected an expression",
    ),
    case("print(f\"{x!z}\")", Some("!z"), false, "conversion"),
    case("print(f\"{x\" + \"y\")", Some("{"), false, "never closed"),
    case(
        "print(f\"{1:{2}}\")",
        Some("{2"),
        false,
        "cannot contain a field",
    ),
    case(
        "print(f\"{x if y else z}\")",
        Some("if"),
        false,
        "conditional expression",
    ),
    case(
        "print(f\"{m[\\\"k\\\"]}\")",
        Some("\\"),
        false,
        "cannot be used inside",
    ),
    case("print(f\"{x:10.}\")", Some("."), false, "needs a precision"),
    case("print(f\"\\q{x}\")", Some("\\q"), false, "unknown escape"),
    case("let s = f\"abc", Some("\"abc"), true, "unterminated string"),
];

#[test]
fn malformed_scripts_give_located_worded_errors() {
    assert!(CASES.len() >= 30);
    for c in CASES {
        check(c);
    }
}

#[test]
fn incomplete_inputs_become_complete_with_more_lines() {
    // What the REPL does: keep reading while `incomplete`, then parse it all.
    for (first, rest) in [
        ("if x {", "\n  print(1)\n}"),
        ("let xs = [1, 2,", "\n 3]"),
        ("let y = 1 +", "\n 2"),
        ("print(\"a\",", "\n \"b\")"),
        ("let s = \"two", "\nlines\""),
        ("try { f() }", "\ncatch e { }"),
        ("if x { } else", "\n{ y() }"),
    ] {
        assert!(err(first).incomplete, "{first:?}");
        ok(&format!("{first}{rest}"));
    }
}

#[test]
fn pathological_input_never_panics() {
    let deep = |open: &str, mid: &str, close: &str, n: usize| {
        format!("{}{}{}", open.repeat(n), mid, close.repeat(n))
    };
    // Reasonable nesting works, even on a 2 MiB test thread.
    ok(&format!("let x = {}", deep("(", "1", ")", 200)));
    ok(&deep("f(", "1", ")", 200));
    ok(&deep("if x {\n", "y", "}\n", 100));
    // Unreasonable nesting is an error, not a stack overflow.
    for source in [
        deep("(", "1", ")", 20_000),
        deep("[{", "", "", 5_000),
        deep("if x {", "", "}", 5_000),
        deep("f(fn() {", "", "})", 3_000),
        format!("{}1", "-".repeat(100_000)),
        format!("{}x", "not ".repeat(50_000)),
        format!("1{}", "+1".repeat(50_000)),
        format!("x{}", "[0]".repeat(50_000)),
        format!("2{}", "**2".repeat(50_000)),
        format!("{}1", "spawn f() named ".repeat(5_000)),
    ] {
        let e = err(&source);
        assert_worded("deep", &e.message);
    }
}

#[test]
fn garbage_never_panics() {
    const PIECES: &[&str] = &[
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        "\"",
        "\\",
        "\n",
        ";",
        ",",
        ":",
        ".",
        "=",
        "+",
        "-",
        "**",
        "not",
        "in",
        "let",
        "fn",
        "if",
        "else",
        "spawn",
        "join",
        "get",
        "put",
        "lock",
        "select",
        "case",
        "timeout",
        "named",
        "x",
        "1",
        "2.5",
        "\"s\"",
        "#c",
        " ",
        "é",
        "\u{0}",
        "\r",
        "99999999999999999999",
        "\\u{",
        "try",
        "catch",
        "submit",
        "wait",
        "daemon",
        "process",
    ];
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..3000 {
        let len = (next() % 12) as usize;
        let source: String = (0..len)
            .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
            .collect();
        if let Err(e) = parse(&source, SourceId(0)) {
            assert_worded(&source, &e.message);
            assert!(e.span.end as usize <= source.len(), "{source:?}: {e:?}");
        }
    }
}

// ---------------------------------------------------------------- the contract

/// Every code block of the language contract (from which docs/language.md
/// grew), verbatim, except that the `...`
/// placeholder in the `wait` block is replaced by a call, and the command
/// line block (shell, not conc) is left out.
const LANGUAGE_SNIPPETS: &[&str] = &[
    r#"let x = 1                    # declare (block scoped)
x = x + 1                    # assign to an existing variable
let [a, b] = pipe()          # list destructuring
fn add(a, b) { return a + b }
let double = fn(x) { return x * 2 }   # closures capture by reference
if c { } else if d { } else { }
while c { }
for i in range(10) { }       # range(n), range(a, b), range(a, b, step)
for x in [1, 2, 3] { }       # lists, map keys, string chars
break; continue; return v
try { risky() } catch e { print(e.kind, e.message) }
raise "message"              # raises an Error with kind "Error"
assert cond, "message"       # kind "AssertionError"
"#,
    r#"let t = spawn worker(1, 2)              # a new OS thread (thread is the default)
let t = spawn thread worker(1, 2)
let p = spawn process worker(1, 2)      # a new OS process
let d = spawn daemon thread ticker()    # daemon: see below
let t = spawn thread { print("inline") }   # a block body
let t = spawn thread worker(3) named "w3"  # a name
let r = join t                          # waits; gives the function's return value
let r = join p timeout 2.5              # raises kind "Timeout" if still running
"#,
    r#"let m = lock()            # also rlock(), semaphore(n)
lock m { critical() }     # acquire; the block; release, also on error/return/break
m.acquire(); m.release()  # explicit forms; m.acquire(timeout) gives a bool
"#,
    r#"let e = event()
wait e                    # until set
let ok = wait e timeout 0.5   # true if set, false on timeout
e.set(); e.clear(); e.is_set()

let c = condition(m)      # m: a lock or rlock; condition() makes its own
lock m { while not ready { wait c }; work() }   # wait releases m, re-acquires it
c.notify(); c.notify_all()

let b = barrier(3)
wait b                    # until 3 parties arrive
"#,
    r#"let q = queue()           # unbounded FIFO; queue(3) bounded
let s = lifo(); let h = priority()   # priority: smallest first, (prio, item) lists
put q, v                  # blocks while full
put q, v timeout 1        # kind "Timeout" (queue stays full)
let v = get q             # blocks while empty
let v = get q timeout 0.2 # kind "Timeout"; timeout 0 never blocks
q.size(); q.empty(); q.full()
let [a, b] = pipe()       # two connected ends: put a, v ... get b
select {
  case x = get q1 { print("q1", x) }
  case put q2, 5 { print("sent") }
  case timeout 1 { print("nothing for 1s") }
}
"#,
    r#"let t = timer(3, hello, 11)   # calls hello(11) on a new thread after 3 s
t.cancel()                    # join t waits until it has fired and finished

let p = thread_pool(4)        # process_pool(4); no size: cpu_count()
let f = submit p, work(i)     # a future; work and i are evaluated here
let r = join f                # its result (or its error)
f.then(fn(r) { print(r) })    # callback when done
let rs = p.map(work, range(10))   # results in order
p.shutdown()                  # waits for queued work
"#,
    r#"# expect: 4950              one line of stdout, in order
# expect-unordered: w1 done these lines, in any order among themselves
# expect-error: Timeout     the run fails with this kind in its report
# expect-exit: 3
"#,
];

#[test]
fn every_language_snippet_parses() {
    for snippet in LANGUAGE_SNIPPETS {
        let program = ok(snippet);
        assert_eq!(program.span.end as usize, snippet.len());
    }
}

// ---------------------------------------------------------------- AST shapes

use conc::ast::{Expr, Stmt};

fn only_stmt(source: &str) -> Stmt {
    let mut program = ok(source);
    assert_eq!(program.stmts.len(), 1, "{source:?}");
    program.stmts.remove(0)
}

fn expr(source: &str) -> Expr {
    match only_stmt(source).node {
        StmtKind::Expr(e) => e,
        other => panic!("{source:?}: not an expression statement: {other:?}"),
    }
}

/// A compact rendering of an expression's structure, e.g. `(+ 1 (* 2 3))`.
fn sexp(e: &Expr) -> String {
    match &e.node {
        ExprKind::Nil => "nil".into(),
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::Int(i) => i.to_string(),
        ExprKind::Float(f) => format!("{f:?}"),
        ExprKind::Str(s) => format!("{s:?}"),
        ExprKind::FString(pieces) => {
            let parts: Vec<String> = pieces
                .iter()
                .map(|p| match p {
                    FPiece::Text(t) => format!("{t:?}"),
                    FPiece::Field {
                        expr,
                        conversion,
                        spec,
                    } => format!("{{{} {conversion:?} {spec:?}}}", sexp(expr)),
                })
                .collect();
            format!("(f {})", parts.join(" "))
        }
        ExprKind::Var(v) => v.name.to_string(),
        ExprKind::List(items) => format!("[{}]", list(items)),
        ExprKind::Map(entries) => {
            let parts: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}: {}", sexp(k), sexp(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        ExprKind::Unary { op, operand } => {
            let op = if *op == UnaryOp::Neg { "neg" } else { "not" };
            format!("({op} {})", sexp(operand))
        }
        ExprKind::Binary { op, lhs, rhs } => {
            format!("({} {} {})", op.symbol(), sexp(lhs), sexp(rhs))
        }
        ExprKind::Index { target, index } => format!("(index {} {})", sexp(target), sexp(index)),
        ExprKind::Slice {
            target,
            start,
            end,
            step,
        } => {
            let part = |p: &Option<Box<Expr>>| p.as_ref().map_or("_".to_string(), |e| sexp(e));
            format!(
                "(slice {} {} {} {})",
                sexp(target),
                part(start),
                part(end),
                part(step)
            )
        }
        ExprKind::Field { target, name } => format!("(. {} {})", sexp(target), name.name),
        ExprKind::Call { callee, args } => format!("(call {} {})", sexp(callee), list(args)),
        ExprKind::MethodCall {
            target,
            method,
            args,
        } => format!("(method {} {} {})", sexp(target), method.name, list(args)),
        ExprKind::Fn(f) => format!("(fn {})", f.params.len()),
        ExprKind::Spawn(s) => {
            let body = match &s.body {
                SpawnBody::Call { callee, args } => {
                    format!("(call {} {})", sexp(callee), list(args))
                }
                SpawnBody::Block(f) => format!("(block {})", f.body.stmts.len()),
            };
            let name = s.name.as_ref().map_or("_".to_string(), sexp);
            format!("(spawn {:?} {} {body} {name})", s.kind, s.daemon)
        }
        ExprKind::Join { target, timeout } => timed("join", target, timeout),
        ExprKind::Get { target, timeout } => timed("get", target, timeout),
        ExprKind::Wait { target, timeout } => timed("wait", target, timeout),
        ExprKind::Submit { pool, callee, args } => {
            format!("(submit {} {} {})", sexp(pool), sexp(callee), list(args))
        }
    }
}

fn list(items: &[Expr]) -> String {
    items.iter().map(sexp).collect::<Vec<_>>().join(" ")
}

fn timed(what: &str, target: &Expr, timeout: &Option<Box<Expr>>) -> String {
    match timeout {
        Some(t) => format!("({what} {} {})", sexp(target), sexp(t)),
        None => format!("({what} {})", sexp(target)),
    }
}

#[test]
fn precedence_and_associativity() {
    for (source, shape) in [
        ("1 + 2 * 3", "(+ 1 (* 2 3))"),
        ("1 - 2 - 3", "(- (- 1 2) 3)"),
        ("a // b % c / d", "(/ (% (// a b) c) d)"),
        ("-2 ** 2", "(neg (** 2 2))"),
        ("2 ** -1", "(** 2 (neg 1))"),
        ("2 ** 3 ** 2", "(** 2 (** 3 2))"),
        ("2 ** -3 ** 2", "(** 2 (neg (** 3 2)))"),
        ("- -x", "(neg (neg x))"),
        ("a or b and not c == d", "(or a (and b (not (== c d))))"),
        ("not a and b", "(and (not a) b)"),
        ("x not in y", "(not in x y)"),
        ("x in y or z", "(or (in x y) z)"),
        ("a + b < c * d", "(< (+ a b) (* c d))"),
        ("get q + 1", "(+ (get q) 1)"),
        ("join t timeout 2.5", "(join t 2.5)"),
        ("wait e timeout -1", "(wait e (neg 1))"),
        ("get q timeout (a + b) * 2", "(* (get q (+ a b)) 2)"),
        ("join ts[0].h", "(join (. (index ts 0) h))"),
        (
            "f(1)(2)[3].x.y(4)",
            "(method (. (index (call (call f 1) 2) 3) x) y 4)",
        ),
        ("q.get()", "(method q get )"),
        (
            "p.map(work, range(10))",
            "(method p map work (call range 10))",
        ),
        ("lock()", "(call lock )"),
        ("xs[1:3]", "(slice xs 1 3 _)"),
        ("xs[::2]", "(slice xs _ _ 2)"),
        ("xs[:]", "(slice xs _ _ _)"),
        ("xs[a:]", "(slice xs a _ _)"),
        ("[1, [2], {}]", "[1 [2] {}]"),
        ("{\"a\": 1, 2: true,}", "{\"a\": 1, 2: true}"),
        ("nil", "nil"),
        ("1_000_000", "1000000"),
        ("2.5e-3", "0.0025"),
        ("1e3", "1000.0"),
        ("x.0 == 1", "(== (. x 0) 1)"),
    ] {
        // `x.0` is not valid: field names are words.
        if source.starts_with("x.0") {
            assert!(parse(source, SourceId(0)).is_err());
            continue;
        }
        assert_eq!(sexp(&expr(source)), shape, "{source:?}");
    }
}

#[test]
fn strings_decode_escapes() {
    let e = expr(r#""a\tb\n\\ \"q\" \r\0 \u{1F600}""#);
    assert_eq!(sexp(&e), format!("{:?}", "a\tb\n\\ \"q\" \r\0 \u{1F600}"));
    assert_eq!(sexp(&expr("\"# not a comment\"")), "\"# not a comment\"");
}

#[test]
fn fstrings_split_into_text_and_fields_with_spans_in_the_source() {
    for (source, shape) in [
        (
            r#"f"{name} took {t:.2f}s""#,
            r#"(f {name None ""} " took " {t None ".2f"} "s")"#,
        ),
        (
            r#"f"{{a}} {x!r:>5} {n + 1=}\n""#,
            r#"(f "{a} " {x Some('r') ">5"} " n + 1=" {(+ n 1) Some('r') ""} "\n")"#,
        ),
        (r#"f"{m["k"]}""#, r#"(f {(index m "k") None ""})"#),
        (r#"f"""#, r#"(f "")"#),
    ] {
        assert_eq!(sexp(&expr(source)), shape, "{source:?}");
    }
    // A field's expression keeps its place in the source.
    let e = expr(r#"f"ab{xs[0]}""#);
    let ExprKind::FString(pieces) = &e.node else {
        panic!("not an f-string: {e:?}");
    };
    let Some(FPiece::Field { expr, .. }) = pieces.get(1) else {
        panic!("no field: {pieces:?}");
    };
    assert_eq!((expr.span.start, expr.span.end), (5, 10));
}

#[test]
fn concurrency_expressions() {
    for (source, shape) in [
        (
            "spawn worker(1, 2)",
            "(spawn Thread false (call worker 1 2) _)",
        ),
        (
            "spawn thread worker(1)",
            "(spawn Thread false (call worker 1) _)",
        ),
        (
            "spawn process worker(1)",
            "(spawn Process false (call worker 1) _)",
        ),
        (
            "spawn daemon thread ticker()",
            "(spawn Thread true (call ticker ) _)",
        ),
        (
            "spawn daemon ticker()",
            "(spawn Thread true (call ticker ) _)",
        ),
        (
            "spawn daemon process t()",
            "(spawn Process true (call t ) _)",
        ),
        (
            "spawn obj.method(x)",
            "(spawn Thread false (call (. obj method) x) _)",
        ),
        ("spawn thread(1)", "(spawn Thread false (call thread 1) _)"),
        (
            "spawn thread worker(3) named \"w\" + str(i)",
            "(spawn Thread false (call worker 3) (+ \"w\" (call str i)))",
        ),
        (
            "spawn thread { print(1); return 2 }",
            "(spawn Thread false (block 2) _)",
        ),
        ("submit p, work(i)", "(submit p work i)"),
        ("submit pool, obj.m()", "(submit pool (. obj m) )"),
    ] {
        assert_eq!(sexp(&expr(source)), shape, "{source:?}");
    }
}

#[test]
fn statements() {
    assert!(matches!(
        only_stmt("x += 1").node,
        StmtKind::Assign {
            op: Some(BinOp::Add),
            ..
        }
    ));
    assert!(matches!(
        only_stmt("x /= 2").node,
        StmtKind::Assign {
            op: Some(BinOp::Div),
            ..
        }
    ));
    assert!(matches!(
        only_stmt("xs[0] = 1").node,
        StmtKind::Assign { op: None, .. }
    ));
    assert!(matches!(
        only_stmt("lock m { x() }").node,
        StmtKind::Lock { .. }
    ));
    assert!(matches!(only_stmt("lock(m)").node, StmtKind::Expr(_)));
    assert!(matches!(only_stmt("return").node, StmtKind::Return(None)));
    assert!(matches!(
        only_stmt("assert x").node,
        StmtKind::Assert { message: None, .. }
    ));
    assert!(matches!(
        only_stmt("put q, v timeout 1").node,
        StmtKind::Put {
            timeout: Some(_),
            ..
        }
    ));
    match only_stmt("let [a, [b, c]] = x").node {
        StmtKind::Let {
            target: Pattern::List(items, span),
            ..
        } => {
            assert_eq!(items.len(), 2);
            assert_eq!((span.start, span.end), (4, 15));
        }
        other => panic!("{other:?}"),
    }
    match only_stmt("if a { } else if b { x() }\nelse { }").node {
        StmtKind::If {
            branches,
            otherwise,
        } => {
            assert_eq!(branches.len(), 2);
            assert!(otherwise.is_some());
        }
        other => panic!("{other:?}"),
    }
    match only_stmt("try { f() }\ncatch { }").node {
        StmtKind::Try { name, .. } => assert!(name.is_none()),
        other => panic!("{other:?}"),
    }
    match only_stmt("fn add(a, b) { return a + b }").node {
        StmtKind::Fn { decl, func } => {
            assert_eq!(&*decl.ident.name, "add");
            assert_eq!(func.params.len(), 2);
            assert_eq!(func.display_name(), "add");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn select_cases() {
    let source = "select {\n  case x = get q1 { print(x) }\n  case get q3 { }\n  case put q2, 5 { }\n\n  case timeout 1 { }\n}";
    match only_stmt(source).node {
        StmtKind::Select { cases } => {
            assert_eq!(cases.len(), 4);
            assert!(matches!(
                &cases[0].kind,
                SelectKind::Get { name: Some(_), .. }
            ));
            assert!(matches!(&cases[1].kind, SelectKind::Get { name: None, .. }));
            assert!(matches!(&cases[2].kind, SelectKind::Put { .. }));
            assert!(matches!(&cases[3].kind, SelectKind::Timeout { .. }));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn newlines_and_separators() {
    assert_eq!(ok("a\nb;c\n\n;;d").stmts.len(), 4);
    assert_eq!(ok("").stmts.len(), 0);
    assert_eq!(ok("# only a comment\n").stmts.len(), 0);
    // Newlines that do not end a statement.
    assert_eq!(sexp(&expr("f(1,\n  2)")), "(call f 1 2)");
    match only_stmt("x = [1,\n 2\n]\n").node {
        StmtKind::Assign { value, .. } => assert_eq!(sexp(&value), "[1 2]"),
        other => panic!("{other:?}"),
    }
    assert_eq!(sexp(&expr("1 +  # more\n 2")), "(+ 1 2)");
    assert_eq!(sexp(&expr("a and\n b")), "(and a b)");
    assert_eq!(
        sexp(&expr("{\n  \"a\": 1,\n  \"b\": 2\n}")),
        "{\"a\": 1, \"b\": 2}"
    );
    // A block inside parentheses still separates its statements by newlines.
    match &expr("t.then(fn(r) {\n  print(r)\n  print(2)\n})").node {
        ExprKind::MethodCall { args, .. } => match &args[0].node {
            ExprKind::Fn(f) => assert_eq!(f.body.stmts.len(), 2),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

#[test]
fn spans() {
    let source = "let t = spawn w(1)\nprint(a + b * 2)\nif x {\n  y()\n}\n";
    let program = ok(source);
    assert_eq!(
        (program.span.start, program.span.end),
        (0, source.len() as u32)
    );
    let text = |s: conc::span::Span| &source[s.start as usize..s.end as usize];
    assert_eq!(text(program.stmts[0].span), "let t = spawn w(1)");
    let StmtKind::Expr(call) = &program.stmts[1].node else {
        panic!("not an expression")
    };
    assert_eq!(text(call.span), "print(a + b * 2)");
    let ExprKind::Call { args, .. } = &call.node else {
        panic!("not a call")
    };
    assert_eq!(text(args[0].span), "a + b * 2");
    let ExprKind::Binary { rhs, .. } = &args[0].node else {
        panic!("not binary")
    };
    assert_eq!(text(rhs.span), "b * 2");
    let StmtKind::If { branches, .. } = &program.stmts[2].node else {
        panic!("not an if")
    };
    assert_eq!(text(branches[0].1.span), "{\n  y()\n}");
    assert_eq!(text(program.stmts[2].span), "if x {\n  y()\n}");
    assert_eq!(text_of("-x ** 2"), "-x ** 2");
    assert_eq!(text_of("(a + b) * c"), "(a + b) * c");
    assert_eq!(text_of("obj.m(1, 2)"), "obj.m(1, 2)");
}

fn text_of(source: &str) -> String {
    let e = expr(source);
    source[e.span.start as usize..e.span.end as usize].to_string()
}

#[test]
fn source_id_is_kept() {
    let program = parse("x", SourceId(7)).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(program.stmts[0].span.src, SourceId(7));
    let e = parse("let", SourceId(7)).err().map(|e| e.span.src);
    assert_eq!(e, Some(SourceId(7)));
}

#[test]
fn inline_examples_and_a_large_program() {
    ok(r#"print("x", [1, "a", 2.5, nil, true], {"k": 1})"#);
    ok("lock m { while not ready { wait c }; work() }\nx = a not\n in b");
    let chunk = r#"
fn worker(q, n) {
    let total = 0
    for i in range(n) {
        let v = get q timeout 0.5
        if v == nil { break } else if v in [1, 2] { continue }
        total += v * 2 ** -1   # a comment
    }
    return total
}
let t = spawn thread worker(q, 10) named "w" + str(1)
"#;
    let program = ok(&chunk.repeat(500));
    assert_eq!(program.stmts.len(), 1000);
}

// ---------------------------------------------------------------- Python habits

/// Python written where conc was expected: (source, culprit, a fragment of
/// the message, a fragment of the help line, which shows the conc form).
const PYTHON_HABITS: &[(&str, &str, &str, &str)] = &[
    (
        "def add(a, b):\n    return a + b",
        "def",
        "`def` is Python",
        "`fn add(a, b) {",
    ),
    (
        "if x > 1:\n    print(x)",
        ":",
        "braces, not `:`",
        "`if x > 1 { ... }`",
    ),
    (
        "while n < 3:",
        ":",
        "braces, not `:`",
        "`while n < 3 { ... }`",
    ),
    (
        "for i in range(3):",
        ":",
        "braces, not `:`",
        "`for i in range(3) { ... }`",
    ),
    ("if x { }\nelse:", ":", "braces, not `:`", "`else { ... }`"),
    ("try:\n    f()", ":", "braces, not `:`", "`try { ... }`"),
    (
        "if x\n    print(1)",
        "\n",
        "not indentation",
        "`if x { ... }`",
    ),
    (
        "if x { } elif y { }",
        "elif",
        "`elif` is Python",
        "else if x < 0",
    ),
    ("elif y:", "elif", "`elif` is Python", "else if x < 0"),
    (
        "try { f() } except e { }",
        "except",
        "`except` is Python",
        "catch e {",
    ),
    ("print(True)", "True", "`True` is Python", "write `true`"),
    (
        "let done = False",
        "False",
        "`False` is Python",
        "write `false`",
    ),
    ("let x = None", "None", "`None` is Python", "write `nil`"),
    ("import threading", "import", "no `import`", "`spawn f(x)`"),
    (
        "from queue import Queue",
        "from",
        "no `import`",
        "`queue()`",
    ),
    ("class Counter:", "class", "no classes", "in a map"),
    (
        "with m:\n    n += 1",
        "with",
        "`with` is Python",
        "`lock m { counter += 1 }`",
    ),
    ("n++", "++", "`++` is not conc", "`n += 1`"),
    ("xs[0]--", "--", "`--` is not conc", "`xs[0] -= 1`"),
    ("if a && b { }", "&&", "`&&`", "`a and b`"),
    ("if a || b { }", "||", "`||`", "`a or b`"),
    ("if !done { }", "!", "`!` is not conc", "`not done`"),
    ("global n", "global", "no `global`", "`n = n + 1`"),
    (
        "let t = Thread(target=work)",
        "target=",
        "keyword arguments",
        "`let t = spawn worker(1, 2)`",
    ),
    (
        "print(x, end=\"\")",
        "end=",
        "keyword arguments",
        "without `end=`",
    ),
    (
        "fn f(x=1) { }",
        "x=",
        "keyword arguments",
        "no default values",
    ),
    (
        "let y = 1 if x else 2",
        "if",
        "conditional expression",
        "`if c { y = a }`",
    ),
    (
        "let ys = [x * 2 for x in xs]",
        "for",
        "list comprehensions",
        "`for x in xs {",
    ),
    ("if x is nil { }", "is", "`is` is Python", "`x == nil`"),
    (
        "let double = lambda x: x * 2",
        "lambda",
        "`lambda` is Python",
        "`let double = fn(x) {",
    ),
    (
        "print \"hi\"",
        "print",
        "`print` is a function",
        "`print(\"hello\", name)`",
    ),
    ("let n: int = 1", ":", "no type annotations", "`let x = 1`"),
    ("fn f() { pass }", "pass", "no `pass`", "`if x { }`"),
    (
        "raise ValueError(\"bad\")",
        "ValueError",
        "no exception classes",
        "`raise error(\"ValueError\"",
    ),
];

#[test]
fn python_habits_are_named_with_the_conc_form() {
    assert!(PYTHON_HABITS.len() >= 25);
    for &(source, culprit, message, help) in PYTHON_HABITS {
        let e = err(source);
        let at = source
            .find(culprit)
            .unwrap_or_else(|| panic!("{source:?}: culprit {culprit:?} not found"));
        let (start, end) = (e.span.start as usize, e.span.end as usize);
        assert!(
            start <= at + culprit.len() && end + 1 >= at,
            "{source:?}: span {start}..{end} is not at {culprit:?}; {e:?}"
        );
        assert!(
            e.message.contains(message),
            "{source:?}: message {:?}",
            e.message
        );
        let shown = e.help.as_deref().unwrap_or_default();
        assert!(
            shown.contains(help),
            "{source:?}: help {shown:?} should show {help:?}"
        );
        assert_eq!(e.label, "Python syntax", "{source:?}");
        assert!(!e.incomplete, "{source:?}");
        assert_worded(source, &e.message);
        assert_worded(source, shown);
    }
}

/// Python's words are only habits when the program does not define them,
/// and ordinary mistakes keep their ordinary messages.
#[test]
fn python_words_a_program_defines_are_its_own() {
    ok("let True = 1\nprint(True)");
    ok("fn ValueError(m) { return error(\"ValueError\", m) }\nraise ValueError(\"x\")");
    ok("let pass = 3\npass");
    ok("let is_ok = true\nif not is_ok { }");
    for (source, message) in [
        ("let x 5", "expected `=`"),
        ("print(1 2)", "expected `)` or `,`"),
    ] {
        let e = err(source);
        assert!(e.message.contains(message), "{source:?}: {e:?}");
        assert_ne!(e.label, "Python syntax");
    }
}
