//! `docs/language.md` against the interpreter: every builtin and method it
//! has is listed there (and nothing else), every example in it runs, and
//! no link in the repository's documents points outside it.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};

const REFERENCE: &str = include_str!("../docs/language.md");

/// The fields and methods of each kind, as the evaluator dispatches them
/// (by `match` on the name today). Keep in step with `src/eval/methods.rs`
/// and `src/eval/concurrency.rs`; once the object kinds have a registry,
/// this list should be read from it instead.
const FIELDS_AND_METHODS: &[(&str, &[&str])] = &[
    (
        "string",
        &[
            "upper",
            "lower",
            "strip",
            "len",
            "split",
            "join",
            "replace",
            "startswith",
            "endswith",
            "find",
            "format",
        ],
    ),
    (
        "list",
        &[
            "append", "push", "pop", "insert", "remove", "index", "count", "extend", "sort",
            "reverse", "copy", "len", "clear",
        ],
    ),
    (
        "map",
        &[
            "get", "keys", "values", "items", "pop", "update", "copy", "len",
        ],
    ),
    ("function", &["call"]),
    ("error", &["kind", "message", "line"]),
    (
        "thread",
        &[
            "name",
            "ident",
            "native_id",
            "daemon",
            "alive",
            "is_alive",
            "terminate",
            "kill",
        ],
    ),
    ("process", &["pid", "exitcode", "host", "terminate", "kill"]),
    ("lock handle", &["acquire", "release", "locked"]),
    ("event handle", &["set", "clear", "is_set"]),
    (
        "condition handle",
        &["notify", "notify_all", "acquire", "release", "locked"],
    ),
    ("barrier handle", &["parties", "waiting"]),
    (
        "queue handle",
        &["size", "qsize", "empty", "full", "capacity"],
    ),
    ("pipe end", &["size", "qsize", "empty", "full"]),
    ("pool", &["size", "map", "submit", "shutdown"]),
    ("future", &["then", "done", "result"]),
    ("timer handle", &["name", "cancel", "alive", "is_alive"]),
];

/// One `###` entry: the `##` chapter it is in, its heading, its text.
struct Entry {
    chapter: String,
    heading: String,
    body: String,
}

fn entries() -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    let mut chapter = String::new();
    for line in REFERENCE.lines() {
        if let Some(h) = line.strip_prefix("### ") {
            out.push(Entry {
                chapter: chapter.clone(),
                heading: h.trim().to_string(),
                body: String::new(),
            });
        } else if let Some(c) = line.strip_prefix("## ") {
            chapter = c.trim().to_string();
        } else if let Some(entry) = out.last_mut() {
            if entry.chapter == chapter {
                entry.body.push_str(line);
                entry.body.push('\n');
            }
        }
    }
    out
}

fn registered_builtins() -> BTreeSet<String> {
    conc::eval::builtins::CORE
        .iter()
        .chain(conc::eval::concurrency_builtins())
        .map(|b| b.name.to_string())
        .collect()
}

#[test]
fn every_builtin_has_an_entry_and_every_entry_is_a_builtin() {
    let documented: BTreeSet<String> = entries()
        .into_iter()
        .filter(|e| e.chapter == "Builtins")
        .map(|e| e.heading)
        .collect();
    let registered = registered_builtins();
    let missing: Vec<_> = registered.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&registered).collect();
    assert!(
        missing.is_empty(),
        "builtins missing from docs/language.md: {missing:?}"
    );
    assert!(
        unknown.is_empty(),
        "docs/language.md lists builtins that do not exist: {unknown:?}"
    );
}

/// `` `.name` `` and `` `.name(...)` `` in an entry's prose (code blocks
/// are examples, not the list).
fn dotted_names(body: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut in_code = false;
    for line in body.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        for piece in line.split("`.").skip(1) {
            let name: String = piece
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                names.insert(name);
            }
        }
    }
    names
}

#[test]
fn every_method_and_field_is_listed_under_its_kind() {
    let entries = entries();
    for (kind, names) in FIELDS_AND_METHODS {
        let entry = entries
            .iter()
            .find(|e| e.heading == *kind)
            .unwrap_or_else(|| panic!("docs/language.md has no `### {kind}` entry"));
        let listed = dotted_names(&entry.body);
        let known: BTreeSet<String> = names.iter().map(|n| n.to_string()).collect();
        let missing: Vec<_> = known.difference(&listed).collect();
        let unknown: Vec<_> = listed.difference(&known).collect();
        assert!(missing.is_empty(), "`### {kind}` does not list {missing:?}");
        assert!(
            unknown.is_empty(),
            "`### {kind}` lists {unknown:?}, which {kind} does not have"
        );
    }
}

/// Every example block runs on its own and exits 0.
#[test]
fn every_example_runs() {
    let mut failures = Vec::new();
    let mut count = 0;
    for entry in entries() {
        for code in code_blocks(&entry.body) {
            count += 1;
            let out = Command::new(env!("CARGO_BIN_EXE_conc"))
                .args(["-c", &code])
                .env("NO_COLOR", "1")
                .stdin(Stdio::null())
                .output()
                .expect("conc runs");
            if !out.status.success() {
                failures.push(format!(
                    "### {}:\n{code}\n{}",
                    entry.heading,
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
    }
    assert!(count > 80, "only {count} examples found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn code_blocks(body: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in body.lines() {
        if line.starts_with("```") {
            match current.take() {
                Some(block) => blocks.push(block),
                None => current = Some(String::new()),
            }
        } else if let Some(block) = current.as_mut() {
            block.push_str(line);
            block.push('\n');
        }
    }
    blocks
}

/// Markdown links in the repository's documents name files inside it.
#[test]
fn no_link_points_outside_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut documents = vec![root.join("README.md")];
    for dir in ["docs"] {
        if let Ok(read) = std::fs::read_dir(root.join(dir)) {
            documents.extend(
                read.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "md")),
            );
        }
    }
    for doc in documents {
        let text = std::fs::read_to_string(&doc).unwrap_or_default();
        for target in text
            .split("](")
            .skip(1)
            .filter_map(|rest| rest.split(')').next())
        {
            let target = target.split('#').next().unwrap_or(target);
            let local = doc.parent().unwrap_or(root).join(target);
            let inside = local
                .canonicalize()
                .is_ok_and(|path| path.starts_with(root.canonicalize().unwrap_or_default()));
            assert!(
                !target.contains("://") && inside,
                "{}: link to {target:?} points outside the repository",
                doc.display()
            );
        }
    }
}
