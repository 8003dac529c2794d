//! Python habits met at run time. conc's users know Python's `threading`,
//! `queue`, `multiprocessing` and `concurrent.futures`, so `t.start()`,
//! `q.get()`, `Lock()` or `time.sleep(1)` are what they write first. Each
//! parses as conc and fails only when it runs: a method the object does not
//! have, a name nothing defines. The error stays what it is; these tables
//! give it a help line with the conc form, in the words of the failing line
//! (`q.put(1)` is told `put q, 1`). Syntax habits are in `parser::python`.

/// How a failing method call was written: `q.put(1)` is `q` and `1`.
#[derive(Clone, Copy, Default)]
pub struct Written<'a> {
    pub target: &'a str,
    pub args: &'a str,
}

/// A method Python has and conc does not, on one or more kinds of object.
/// In `help`, `{t}` is the target as written (`qs[0]`), `{n}` the target
/// when it is a plain name, else a stand-in, for a `let {n} = ...`, and
/// `{a}` the arguments as written (`x` when there are none).
struct MethodHabit {
    kinds: &'static [&'static str],
    names: &'static [&'static str],
    help: &'static str,
}

const THREAD: &[&str] = &["thread"];
const PROCESS: &[&str] = &["process"];
const WORKERS: &[&str] = &["thread", "process"];
const TIMER: &[&str] = &["timer"];
const QUEUES: &[&str] = &["queue", "lifo", "priority", "pipe"];
const FIFOS: &[&str] = &["queue", "lifo", "priority"];
const PIPE: &[&str] = &["pipe"];
const EVENT: &[&str] = &["event"];
const CONDITION: &[&str] = &["condition"];
const BARRIER: &[&str] = &["barrier"];
const POOL: &[&str] = &["pool"];
const FUTURE: &[&str] = &["future"];

static METHODS: &[MethodHabit] = &[
    MethodHabit {
        kinds: THREAD,
        names: &["start"],
        help: "`spawn` starts the thread at once: `let {n} = spawn worker(1)`, then `join {n}`",
    },
    MethodHabit {
        kinds: PROCESS,
        names: &["start"],
        help: "`spawn process` starts it at once: `let {n} = spawn process worker(1)`, then `join {n}`",
    },
    MethodHabit {
        kinds: WORKERS,
        names: &["join"],
        help: "`join {t}` waits for it and gives its return value (`join {t} timeout 2` waits at most 2 s)",
    },
    MethodHabit {
        kinds: TIMER,
        names: &["start"],
        help: "`timer(...)` starts at once: `let {n} = timer(0.5, f)`; `{n}.cancel()` stops it",
    },
    MethodHabit {
        kinds: TIMER,
        names: &["join"],
        help: "`join {t}` waits until it has fired and finished (`join {t} timeout 2` waits at most 2 s)",
    },
    MethodHabit {
        kinds: QUEUES,
        names: &["get"],
        help: "take an item with the expression `get {t}` (`get {t} timeout 0.5` waits at most 0.5 s)",
    },
    MethodHabit {
        kinds: QUEUES,
        names: &["put"],
        help: "put an item with the statement `put {t}, {a}` (`put {t}, {a} timeout 2` waits at most 2 s)",
    },
    MethodHabit {
        kinds: QUEUES,
        names: &["get_nowait"],
        help: "`get {t} timeout 0` takes an item without waiting (a `Timeout` error if there is none)",
    },
    MethodHabit {
        kinds: QUEUES,
        names: &["put_nowait"],
        help: "`put {t}, {a} timeout 0` puts without waiting (a `Timeout` error if it is full)",
    },
    MethodHabit {
        kinds: FIFOS,
        names: &["task_done", "join"],
        help: "queues count no tasks: put one stop value per worker (`put {t}, nil`), then `join` them",
    },
    MethodHabit {
        kinds: PIPE,
        names: &["send"],
        help: "send with the statement `put {t}, {a}`; the other end takes it with `get`",
    },
    MethodHabit {
        kinds: PIPE,
        names: &["recv"],
        help: "receive with the expression `get {t}` (`get {t} timeout 0.5` waits at most 0.5 s)",
    },
    MethodHabit {
        kinds: EVENT,
        names: &["wait"],
        help: "wait with the expression `wait {t}` (`wait {t} timeout 0.5` gives false on a timeout)",
    },
    MethodHabit {
        kinds: CONDITION,
        names: &["wait"],
        help: "inside `lock {t} { }`, wait with `wait {t}` (`wait {t} timeout 0.5` gives false on a timeout)",
    },
    MethodHabit {
        kinds: CONDITION,
        names: &["wait_for"],
        help: "wait in a loop until the test holds: `lock {t} { while not ready() { wait {t} } }`",
    },
    MethodHabit {
        kinds: BARRIER,
        names: &["wait"],
        help: "wait with the expression `wait {t}`, which gives the arrival index (0 for the first)",
    },
    MethodHabit {
        kinds: POOL,
        names: &["apply_async"],
        help: "`{t}.submit(f, x)` or `submit {t}, f(x)` gives a future; `join` it for the result",
    },
    MethodHabit {
        kinds: POOL,
        names: &["close", "join"],
        help: "`{t}.shutdown()` waits for the queued work and stops the workers",
    },
    MethodHabit {
        kinds: FUTURE,
        names: &["add_done_callback"],
        help: "`{t}.then(callback)` calls it with the result, or the error, when it is done",
    },
    MethodHabit {
        kinds: FUTURE,
        names: &["exception"],
        help: "catch the error it raised: `try { join {t} } catch e { print(e.kind, e.message) }`",
    },
];

/// A Python name that conc spells otherwise: a class of `threading`,
/// `queue`, `multiprocessing` or `concurrent.futures`, or what a module
/// holds that conc has as a builtin (`time.sleep` is `sleep`).
struct NameHabit {
    names: &'static [&'static str],
    help: &'static str,
}

static NAMES: &[NameHabit] = &[
    NameHabit {
        names: &["Thread"],
        help: "write `let t = spawn worker(1)`, then `join t`",
    },
    NameHabit {
        names: &["Process"],
        help: "write `let p = spawn process worker(1)`, then `join p`",
    },
    NameHabit {
        names: &["Lock"],
        help: "write `let m = lock()`, then `lock m { ... }`",
    },
    NameHabit {
        names: &["RLock"],
        help: "write `let r = rlock()`, then `lock r { ... }`",
    },
    NameHabit {
        names: &["Semaphore", "BoundedSemaphore"],
        help: "write `let s = semaphore(2)`, then `lock s { ... }`",
    },
    NameHabit {
        names: &["Event"],
        help: "write `let e = event()`, then `e.set()` and `wait e`",
    },
    NameHabit {
        names: &["Condition"],
        help: "write `condition()` or `condition(m)`, then `lock c { wait c }`",
    },
    NameHabit {
        names: &["Barrier"],
        help: "write `barrier(3)`, then `wait b` in each of the 3 threads",
    },
    NameHabit {
        names: &["Queue", "SimpleQueue", "JoinableQueue"],
        help: "write `queue()` (or `queue(10)`), then `put q, x` and `get q`",
    },
    NameHabit {
        names: &["LifoQueue"],
        help: "write `lifo()`, then `put s, x` and `get s`",
    },
    NameHabit {
        names: &["PriorityQueue"],
        help: "write `priority()`, then `put h, [1, \"job\"]`, smallest first",
    },
    NameHabit {
        names: &["Pipe"],
        help: "write `let [a, b] = pipe()`, then `put a, x` and `get b`",
    },
    NameHabit {
        names: &["Timer"],
        help: "write `timer(0.5, f, x)`: it calls `f(x)` on a new thread in 0.5 s",
    },
    NameHabit {
        names: &["ThreadPoolExecutor"],
        help: "write `thread_pool(4)`, then `p.submit(f, x)` or `p.map(f, xs)`",
    },
    NameHabit {
        names: &["ProcessPoolExecutor", "Pool"],
        help: "write `process_pool(4)`, then `p.submit(f, x)` or `p.map(f, xs)`",
    },
    NameHabit {
        names: &["current_thread", "current_process"],
        help: "write `current()`: `current().name`",
    },
    NameHabit {
        names: &["active_count"],
        help: "write `len(threads())`",
    },
    NameHabit {
        names: &["as_completed"],
        help: "join the futures in turn: `for f in futures { print(join f) }`",
    },
];

/// What a module holds that conc has as a builtin, with example arguments.
static BUILTINS: &[(&str, &str)] = &[
    ("sleep", "0.5"),
    ("time", ""),
    ("monotonic", ""),
    ("perf_counter", ""),
    ("random", ""),
    ("randint", "1, 6"),
    ("getpid", ""),
    ("getppid", ""),
    ("cpu_count", ""),
    ("argv", ""),
];

/// Python modules a script may still name after its `import` line went.
static MODULES: &[&str] = &["threading", "multiprocessing", "concurrent", "os", "sys"];

/// Whether `kind` lacks `name` only because `name` is Python's spelling:
/// such a call need not be asked of another process's object.
pub fn is_method_habit(kind: &str, name: &str) -> bool {
    find_method(kind, name).is_some()
}

/// The help for `target.name(args)` on an object of `kind` that has no
/// method `name`, when Python would have had it.
pub fn method_help(kind: &str, name: &str, written: Written) -> Option<String> {
    if let Some(h) = find_method(kind, name) {
        return Some(fill(h.help, written, kind));
    }
    // `time.sleep(1)`, `queue.Queue()`: a builtin standing where a module was.
    if kind == "function" {
        return attribute_help(name, written.args).map(|h| format!("conc has no modules: {}", h));
    }
    None
}

/// The help for reading `name` when nothing defines it; `attrs` are the
/// names after it when it is written `name.a.b` (`threading.Lock`).
pub fn name_help(name: &str, attrs: &[&str]) -> Option<String> {
    if MODULES.contains(&name) {
        let found = attrs.iter().rev().find_map(|a| attribute_help(a, ""));
        return Some(format!(
            "conc has no modules: {}",
            found.unwrap_or_else(|| {
                "`spawn f(x)`, `queue()`, `lock()`, `thread_pool(4)` are built in".to_string()
            })
        ));
    }
    find_name(name).map(str::to_string)
}

/// The help for `name = value` when no `let` declared `name`.
pub fn undeclared_help(name: &str, value: &str) -> String {
    let value = one_line(value);
    let value = if value.is_empty() || value.len() > 40 {
        "..."
    } else {
        &value
    };
    format!("declare it with `let` first: `let {} = {}`", name, value)
}

fn find_method(kind: &str, name: &str) -> Option<&'static MethodHabit> {
    METHODS
        .iter()
        .find(|h| h.kinds.contains(&kind) && h.names.contains(&name))
}

fn find_name(name: &str) -> Option<&'static str> {
    NAMES
        .iter()
        .find(|h| h.names.contains(&name))
        .map(|h| h.help)
}

/// `sleep` of `time.sleep(0.5)`, `Lock` of `threading.Lock()`.
fn attribute_help(attr: &str, args: &str) -> Option<String> {
    if let Some(help) = find_name(attr) {
        return Some(help.to_string());
    }
    let (name, example) = BUILTINS.iter().find(|(n, _)| *n == attr)?;
    let name = match *name {
        "monotonic" | "perf_counter" => "time",
        n => n,
    };
    let args = one_line(args);
    let args = if args.is_empty() { *example } else { &args };
    Some(format!("write `{}({})`", name, args))
}

fn fill(template: &str, written: Written, kind: &str) -> String {
    let target = one_line(written.target);
    let args = one_line(written.args);
    let plain = !target.is_empty()
        && target.chars().all(|c| c.is_alphanumeric() || c == '_')
        && !target.starts_with(|c: char| c.is_ascii_digit());
    let stand_in = kind.get(..1).unwrap_or("x");
    let name = if plain { target.as_str() } else { stand_in };
    let target = if target.is_empty() { stand_in } else { &target };
    let args = if args.is_empty() { "x" } else { &args };
    template
        .replace("{t}", target)
        .replace("{n}", name)
        .replace("{a}", args)
}

/// Source text on one line, runs of white space as one space.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written<'a>(target: &'a str, args: &'a str) -> Written<'a> {
        Written { target, args }
    }

    #[test]
    fn a_method_habit_is_told_in_the_words_of_the_call() {
        let help = method_help("queue", "put", written("q", "1")).unwrap_or_default();
        assert_eq!(
            help,
            "put an item with the statement `put q, 1` (`put q, 1 timeout 2` waits at most 2 s)"
        );
        let help = method_help("thread", "join", written("ts[0]", "")).unwrap_or_default();
        assert!(help.contains("`join ts[0]`"), "{help}");
        let help = method_help("thread", "start", written("ts[0]", "")).unwrap_or_default();
        assert!(help.contains("`let t = spawn worker(1)`"), "{help}");
        let help = method_help("pipe", "send", written("a", "\"ping\",\n   2")).unwrap_or_default();
        assert!(help.contains("`put a, \"ping\", 2`"), "{help}");
    }

    #[test]
    fn only_the_kinds_python_had_it_on() {
        assert!(method_help("lock", "get", Written::default()).is_none());
        assert!(method_help("list", "join", Written::default()).is_none());
        assert!(!is_method_habit("queue", "size"));
        assert!(is_method_habit("priority", "get"));
    }

    #[test]
    fn a_builtin_where_a_module_was() {
        let help = method_help("function", "sleep", written("time", "1")).unwrap_or_default();
        assert_eq!(help, "conc has no modules: write `sleep(1)`");
        let help = method_help("function", "Queue", written("queue", "")).unwrap_or_default();
        assert!(help.contains("`queue()`"), "{help}");
        assert!(method_help("function", "upper", Written::default()).is_none());
    }

    #[test]
    fn names_and_modules() {
        assert!(name_help("Lock", &[]).is_some_and(|h| h.contains("`let m = lock()`")));
        assert!(name_help("lock_count", &[]).is_none());
        let help = name_help("concurrent", &["futures", "ThreadPoolExecutor"]).unwrap_or_default();
        assert!(help.contains("`thread_pool(4)`"), "{help}");
        let help = name_help("os", &["getpid"]).unwrap_or_default();
        assert_eq!(help, "conc has no modules: write `getpid()`");
        let help = name_help("threading", &[]).unwrap_or_default();
        assert!(help.contains("built in"), "{help}");
    }

    /// A report is 100 columns wide; miette wraps a help line longer than
    /// 87 characters, and a fixture can then no longer find it.
    #[test]
    fn each_help_fits_on_one_line_for_a_short_name() {
        let short = written("q", "x");
        let mut helps: Vec<String> = METHODS
            .iter()
            .map(|h| fill(h.help, short, h.kinds[0]))
            .collect();
        for h in NAMES {
            helps.push(format!("conc has no modules: {}", h.help));
        }
        for (name, _) in BUILTINS {
            helps.extend(method_help("function", name, short));
        }
        helps.extend(name_help("threading", &[]));
        let long: Vec<String> = helps
            .into_iter()
            .filter(|h| h.chars().count() > 87)
            .collect();
        assert!(long.is_empty(), "too long: {long:#?}");
    }

    #[test]
    fn a_missing_let_shows_the_value_when_it_is_short() {
        assert_eq!(
            undeclared_help("total", "0"),
            "declare it with `let` first: `let total = 0`"
        );
        let long = "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]";
        assert!(undeclared_help("xs", long).ends_with("`let xs = ...`"));
    }
}
