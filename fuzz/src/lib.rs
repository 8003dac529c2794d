//! The fuzz targets' bodies, shared by the libFuzzer binaries
//! (`fuzz_targets/*.rs`, `cargo fuzz run NAME`) and by the plain test
//! `tests/fuzz_regressions.rs`, which feeds every corpus and crash input
//! through these same functions without libFuzzer (it includes this file
//! as a module, so keep it one file that needs only `conc` and `arbitrary`).
//!
//! A target returns normally for every outcome the language allows (a
//! value, a syntax or runtime error, a deadlock, a script stopped by the
//! time limit) and panics only for what conc must never do: a panic of its
//! own, a report without its location, threads left behind.

use arbitrary::Unstructured;
use conc::diagnostics::{kind, ConcError, RuntimeError};
use conc::runtime::engine::controlled::schedule::Schedule;
use conc::runtime::output::Output;
use conc::runtime::process::wire;
use conc::session::{Session, SessionOptions};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The file name errors are reported in.
const NAME: &str = "fuzz.conc";

/// How long one script may run before its threads are interrupted: the
/// generator's scripts end well within it; mutated real scripts may loop
/// or sleep, and get less.
const TIME_LIMIT: Duration = Duration::from_secs(3);
const RAW_TIME_LIMIT: Duration = Duration::from_millis(50);

/// Source text -> parse and resolve; a failure must render as a located
/// report.
pub fn parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut session = new_session(None);
    if let Err(e) = session.load(NAME, text) {
        let report = session.render(&e);
        check_report(&e, &report, text);
    }
}

/// The whole pipeline on a script that runs: the first byte chooses
/// between a generated program (the rest drives `gen::program`) and the
/// rest as source text (the seed corpus's real scripts, mutated), and the
/// OS engine or the controlled one.
pub fn pipeline(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let sched = sched_of(mode);
    if mode & 1 == 0 {
        let text = gen::program(&mut Unstructured::new(rest));
        run_script(&text, sched, TIME_LIMIT);
    } else {
        let Ok(text) = std::str::from_utf8(rest) else {
            return;
        };
        // A child process would re-run this binary (libFuzzer's main, not
        // conc's): processes are left to tests/processes.rs.
        if text.contains("process") {
            return;
        }
        // Real scripts sleep for real: a short limit keeps the fuzzer fast
        // (being stopped is an outcome like any other).
        run_script(text, sched, RAW_TIME_LIMIT);
    }
}

/// What `pipeline` makes of an input, as text: the engine, then the
/// program (generated) or the script.
pub fn describe_pipeline_input(data: &[u8]) -> String {
    let Some((&mode, rest)) = data.split_first() else {
        return "(empty: nothing runs)".into();
    };
    let engine = match sched_of(mode) {
        Some(seed) => format!("--sched random:{seed}"),
        None => "the OS engine".into(),
    };
    let text = match mode & 1 {
        0 => gen::program(&mut Unstructured::new(rest)),
        _ => String::from_utf8_lossy(rest).into_owned(),
    };
    format!("# mode byte {mode:#04x}: {engine}\n{text}")
}

/// Whether bit 1 of the mode byte runs a script on the controlled engine
/// (`--sched random:SEED`, the seed from the bits above). It was off while
/// that engine left threads behind after a run (they piled up across runs
/// until memory ran out); its threads are fibers now, dropped with the run.
const CONTROLLED_ENGINE: bool = true;

/// The `--sched random` seed a mode byte runs under, or `None` for the OS
/// engine.
fn sched_of(mode: u8) -> Option<u64> {
    (CONTROLLED_ENGINE && mode & 2 != 0).then_some(u64::from(mode >> 2))
}

/// Child-mode input: frames -> messages. Whatever the bytes, reading must
/// end in a message, an error or the end, never a panic or a huge
/// allocation; every message read must survive a round trip.
pub fn wire(data: &[u8]) {
    let mut input = data;
    for _ in 0..64 {
        match wire::read_msg(&mut input) {
            Ok(Some(msg)) => {
                if let wire::Msg::Start(start) = &msg {
                    let _ = start.check();
                }
                let mut again = Vec::new();
                wire::write_msg(&mut again, &msg).expect("a message read can be written");
                let back = wire::read_msg(&mut &again[..])
                    .expect("a message written can be read")
                    .expect("and is there");
                assert_eq!(format!("{back:?}"), format!("{msg:?}"));
            }
            Ok(None) | Err(_) => return,
        }
    }
}

/// One encoded frame of every kind of message (the wire target's seeds).
pub fn wire_seeds() -> Vec<Vec<u8>> {
    use wire::{
        Msg, Op, Packet, Request, SharedValue, Start, WireError, WireMark, WireProcess, WireSpan,
        WireTrace, WireTrack, WireValue,
    };
    let span = WireSpan {
        src: 0,
        start: 0,
        end: 5,
    };
    let packet = Packet {
        table: vec![
            SharedValue::List(vec![WireValue::Int(-5), WireValue::Shared(1)]),
            SharedValue::Map(vec![(WireValue::Str("k".into()), WireValue::Float(0.5))]),
            SharedValue::Cell(WireValue::Bool(true)),
        ],
        values: vec![
            WireValue::Shared(0),
            WireValue::Str("é".into()),
            WireValue::Nil,
            WireValue::Func {
                src: 0,
                start: 0,
                upvals: vec![2],
            },
            WireValue::Builtin("print".into()),
            WireValue::Object {
                id: 3,
                kind: "queue".into(),
                label: "queue#3 (q)".into(),
                unbounded: true,
                words: None,
            },
            WireValue::Object {
                id: 5,
                kind: "lock".into(),
                label: "lock#5 (m)".into(),
                unbounded: false,
                words: Some(7),
            },
            WireValue::Yours(4),
        ],
    };
    let error = WireError {
        kind: "ValueError".into(),
        message: "bad".into(),
        span: Some(span),
        help: Some("fix it".into()),
        notes: vec![("called from here".into(), Some(span))],
    };
    let request = |op| {
        Msg::Request(Box::new(Request {
            req: 7,
            tid: 2,
            thread: "main".into(),
            target: 3,
            op,
            what: "an item from queue#3".into(),
            span: Some(span),
        }))
    };
    let messages = vec![
        Msg::Start(Box::new(Start {
            sources: vec![("a.conc".into(), "fn f(x) { return x }\n".into())],
            argv: vec!["arg".into()],
            name: "f-1".into(),
            daemon: false,
            color: false,
            seed: 42,
            record: true,
            globals: vec!["g".into()],
            left_out: vec![("t".into(), "a thread handle cannot cross".into())],
            payload: packet.clone(),
            call_span: span,
        })),
        request(Op::Get { timeout: Some(0.5) }),
        request(Op::Take {
            timeout: None,
            max: 1024,
        }),
        request(Op::Put {
            item: packet.clone(),
            timeout: Some(0.0),
        }),
        request(Op::Acquire { timeout: None }),
        request(Op::Release),
        request(Op::Wait { timeout: Some(1.0) }),
        request(Op::Select {
            arms: vec![(3, None), (4, Some(packet.clone()))],
            timeout: Some(0.1),
        }),
        request(Op::Method {
            name: "size".into(),
            args: Packet::default(),
        }),
        Msg::Reply {
            req: 7,
            result: Ok(packet.clone()),
        },
        Msg::Reply {
            req: 8,
            result: Err(error.clone()),
        },
        Msg::Cancel { req: 7 },
        Msg::Print("hello".into()),
        Msg::Report("error in thread w".into()),
        Msg::Deadlock(error.clone()),
        Msg::Probe,
        Msg::Trace(Box::new(WireTrace {
            processes: vec![WireProcess {
                pid: 42,
                name: "process w-1 (pid 42)".into(),
                threads: vec![WireTrack {
                    thread: 1,
                    name: "w-1".into(),
                    marks: vec![WireMark {
                        op: Some(conc::runtime::engine::Op::Get),
                        object: 3,
                        span: Some(span),
                        at: 1_000,
                        parked: Some((1_500, 9_000)),
                        spawned_by: None,
                        ended: true,
                        home: Some(41),
                    }],
                }],
            }],
        })),
        Msg::Quiet {
            replies_seen: 3,
            waits: vec!["main waits".into()],
        },
        Msg::Done(Ok(packet)),
        Msg::Done(Err(error)),
    ];
    messages
        .iter()
        .map(|m| {
            let mut frame = Vec::new();
            wire::write_msg(&mut frame, m).expect("a seed message encodes");
            frame
        })
        .collect()
}

/// Where a fuzzed script's output goes: nowhere (a script may print a lot),
/// but every line and report must be whole text.
struct Sink;

impl Output for Sink {
    fn line(&self, text: &str) {
        std::hint::black_box(text.len());
    }

    fn report(&self, text: &str) {
        assert!(!text.is_empty(), "an empty report of a thread's error");
    }
}

fn new_session(sched: Option<u64>) -> Session {
    Session::new(SessionOptions {
        out: Arc::new(Sink),
        seed: Some(7),
        schedule: sched.map(|seed| Schedule::Random { seed }),
        ..Default::default()
    })
}

/// Run one script to its end (as `conc FILE` would, less the process
/// exit), interrupting it at the time limit.
pub fn run_script(text: &str, sched: Option<u64>, limit: Duration) {
    static BASELINE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let baseline = *BASELINE.get_or_init(live_threads);
    let mut session = new_session(sched);
    let ctx = session.context().clone();
    let done = Arc::new((Mutex::new(false), Condvar::new()));
    let watch = done.clone();
    let watchdog = std::thread::spawn(move || {
        let (lock, cv) = &*watch;
        let mut finished = lock.lock().unwrap_or_else(|e| e.into_inner());
        let deadline = Instant::now() + limit;
        while !*finished {
            let now = Instant::now();
            if now >= deadline {
                // The script's own endless loop or a long sleep: stop
                // every thread as Ctrl-C in the REPL would, until it ends.
                for info in ctx.registry.snapshot() {
                    ctx.registry.interrupt(
                        &info.thread,
                        RuntimeError::new(kind::INTERRUPTED, "the fuzz time limit"),
                    );
                }
            }
            let wait = deadline
                .saturating_duration_since(now)
                .max(Duration::from_millis(10));
            finished = cv
                .wait_timeout(finished, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    });
    // After an error too, the end of the script waits for the threads it
    // started and shuts its pools down (deadlock detection ends those
    // blocked for good): the CLI leaves them to the process exit, but
    // here they would pile up across runs.
    let ran = session.run(NAME, text).map(|_| ());
    let finished = session.finish();
    if let Err(e) = ran.and(finished) {
        let e = &e;
        let report = session.render(e);
        check_report(e, &report, text);
    }
    session.abandon_children();
    {
        let (lock, cv) = &*done;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
    }
    let _ = watchdog.join();
    drop(session);
    check_no_pile_up(baseline);
}

/// Every report names its kind; a syntax error (always located) and a
/// runtime error with a span name the file, line and column.
fn check_report(e: &ConcError, report: &str, text: &str) {
    assert!(!report.is_empty(), "an empty report for {e:?}");
    assert!(
        report.contains(e.kind()),
        "the report does not name its kind {}:\n{report}",
        e.kind()
    );
    let located = match e {
        ConcError::Syntax(_) => true,
        ConcError::Runtime(r) => r.span.is_some_and(|s| s.src.0 == 0),
    };
    if located && !text.is_empty() {
        assert!(
            report.contains(&format!("[{NAME}:")),
            "a report without its location for {e:?}:\n{report}"
        );
    }
}

/// The runtime keeps up to 256 idle OS threads for reuse, and ended
/// threads take a moment to leave; more than that after a run that has
/// ended is threads piling up across runs.
fn check_no_pile_up(baseline: usize) {
    const SLACK: usize = 300;
    let deadline = Instant::now() + Duration::from_secs(10);
    while live_threads() > baseline + SLACK {
        assert!(
            Instant::now() < deadline,
            "threads pile up: {} live after the run, {} before",
            live_threads(),
            baseline
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn live_threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// Well-formed programs with threads, locks, queues, events, conditions,
/// barriers, pools and timers, driven by fuzz bytes. Every loop is
/// bounded and most blocking operations have a timeout, so a program ends
/// by itself: in a value, an error, or a deadlock that conc must detect.
///
/// Order comparisons and `sorted` take any values (a list that holds the
/// same list twice hung once), and thread names include a NUL byte (it
/// panicked once): both are fixtures in tests/fixtures/robustness/ now.
pub mod gen {
    use arbitrary::Unstructured;

    /// Globals every program starts with, and what they are.
    const PRELUDE: &str = "\
let q0 = queue()
let q1 = queue(2)
let st = lifo()
let pq = priority()
let [pa, pb] = pipe()
let m0 = lock()
let m1 = lock()
let r0 = rlock()
let s0 = semaphore(2)
let e0 = event()
let c0 = condition()
let b0 = barrier(2)
let p0 = thread_pool(2)
let xs = [1, 2, 3]
let mp = {\"a\": 1, \"b\": [2]}
let n = 0
let out = []
";

    const QUEUES: &[&str] = &["q0", "q1", "st", "pa", "pb"];
    const LOCKS: &[&str] = &["m0", "m1", "r0", "s0", "c0"];
    const NAMES: &[&str] = &[
        "\"w\"",
        "\"worker\"",
        "\"é\"",
        "\"a b\"",
        "\"\"",
        "\"\\u{0}\"",
    ];
    const INTS: &[&str] = &[
        "0",
        "1",
        "2",
        "3",
        "-1",
        "7",
        "100",
        "9223372036854775807",
        "-9223372036854775807",
    ];
    const FLOATS: &[&str] = &["0.5", "0.0", "-0.0", "1e300", "2.5", "0.001"];
    const STRINGS: &[&str] = &[
        "\"\"",
        "\"a\"",
        "\"é\"",
        "\"x\\ny\"",
        "\"\\t\\\"q\\\"\"",
        "\"\\u{0}\"",
        "\"3\"",
    ];
    // Small: a timeout that expires or a sleep costs its time on the OS
    // engine, and the fuzzer wants many runs a second.
    const TIMEOUTS: &[&str] = &["0", "0.0005", "0.001"];
    const SLEEPS: &[&str] = &["0", "0.0002"];
    /// For a join that may wait on a thread that blocks for good.
    const JOIN_TIMEOUTS: &[&str] = &["0.001", "0.005"];
    const ERROR_KINDS: &[&str] = &["\"ValueError\"", "\"Custom\"", "\"TypeError\""];

    struct Gen<'a, 'b> {
        u: &'a mut Unstructured<'b>,
        out: String,
        indent: usize,
        /// Statements left to write: keeps every program small.
        budget: usize,
        /// Worker functions defined so far (a function calls only
        /// earlier ones: no unbounded recursion).
        fns: usize,
        /// Local names that may be read here.
        locals: Vec<String>,
        in_loop: bool,
        in_fn: bool,
        fresh: usize,
    }

    /// A program from the bytes; the empty input gives a small one too.
    pub fn program(u: &mut Unstructured<'_>) -> String {
        let mut g = Gen {
            u,
            out: String::from(PRELUDE),
            indent: 0,
            budget: 80,
            fns: 0,
            locals: Vec::new(),
            in_loop: false,
            in_fn: false,
            fresh: 0,
        };
        g.line("fn rec(a) { if a > 0 { return rec(a - 1) }; return 0 }");
        let fns = g.int(0, 3);
        for _ in 0..fns {
            g.function();
        }
        let threads = g.int(0, 3);
        let mut handles = Vec::new();
        for _ in 0..threads {
            handles.push(g.spawn());
        }
        let stmts = g.int(0, 8);
        for _ in 0..stmts {
            g.stmt(3);
        }
        for h in handles {
            if g.flip() {
                let t = g.pick(JOIN_TIMEOUTS);
                g.line(&format!(
                    "try {{ join {h} timeout {t} }} catch e {{ print(e.kind) }}"
                ));
            } else {
                g.line(&format!("join {h}"));
            }
        }
        g.out
    }

    impl Gen<'_, '_> {
        fn int(&mut self, lo: usize, hi: usize) -> usize {
            self.u.int_in_range(lo..=hi).unwrap_or(lo)
        }

        fn flip(&mut self) -> bool {
            self.u.arbitrary().unwrap_or(false)
        }

        fn pick<'s>(&mut self, from: &[&'s str]) -> &'s str {
            from[self.int(0, from.len() - 1)]
        }

        fn name(&mut self, prefix: &str) -> String {
            self.fresh += 1;
            format!("{prefix}{}", self.fresh)
        }

        fn line(&mut self, text: &str) {
            for _ in 0..self.indent {
                self.out.push_str("  ");
            }
            self.out.push_str(text);
            self.out.push('\n');
        }

        fn open(&mut self, head: &str) {
            self.line(&format!("{head} {{"));
            self.indent += 1;
        }

        fn close(&mut self) {
            self.indent -= 1;
            self.line("}");
        }

        /// Up to three statements; names declared in them go out of scope.
        fn body(&mut self, depth: usize) {
            let count = self.int(0, 3);
            let scope = self.locals.len();
            for _ in 0..count {
                self.stmt(depth);
            }
            self.locals.truncate(scope);
        }

        /// `HEAD { ... }`.
        fn block(&mut self, head: &str, depth: usize) {
            self.open(head);
            self.body(depth);
            self.close();
        }

        fn function(&mut self) {
            let name = format!("f{}", self.fns);
            let locals = std::mem::replace(&mut self.locals, vec!["a".to_string()]);
            self.in_fn = true;
            self.open(&format!("fn {name}(a)"));
            self.body(2);
            let value = self.expr(2);
            self.line(&format!("return {value}"));
            self.close();
            self.in_fn = false;
            self.locals = locals;
            self.fns += 1;
        }

        /// A spawned thread, a pool job or a timer; gives the handle's name.
        fn spawn(&mut self) -> String {
            let h = self.name("t");
            let call = self.call();
            let spawn = match self.int(0, 5) {
                0 => format!("let {h} = spawn {call}"),
                1 => format!("let {h} = spawn {call} named {}", self.pick(NAMES)),
                2 => format!("let {h} = submit p0, {call}"),
                3 => {
                    let f = self.callee();
                    let arg = self.expr(1);
                    format!("let {h} = timer({}, {f}, {arg})", self.pick(SLEEPS))
                }
                4 => format!(
                    "let {h} = spawn daemon thread {{ sleep({}) }}",
                    self.pick(SLEEPS)
                ),
                _ => {
                    // A block body.
                    let head = format!("let {h} = spawn");
                    let in_loop = std::mem::replace(&mut self.in_loop, false);
                    self.block(&head, 2);
                    self.in_loop = in_loop;
                    return h;
                }
            };
            self.line(&spawn);
            h
        }

        fn callee(&mut self) -> String {
            if self.fns > 0 && self.flip() {
                format!("f{}", self.int(0, self.fns - 1))
            } else {
                self.pick(&["print", "abs", "len", "str", "rec"])
                    .to_string()
            }
        }

        fn call(&mut self) -> String {
            let f = self.callee();
            let arg = match f.as_str() {
                "rec" => self.pick(&["0", "3", "50", "2500"]).to_string(),
                _ => self.expr(1),
            };
            format!("{f}({arg})")
        }

        fn stmt(&mut self, depth: usize) {
            if self.budget == 0 {
                return;
            }
            self.budget -= 1;
            let nested = depth > 0;
            let choice = self.int(0, if nested { 34 } else { 22 });
            match choice {
                0 => {
                    let (q, v, t) = (self.pick(QUEUES), self.expr(2), self.pick(TIMEOUTS));
                    self.line(&format!("put {q}, {v} timeout {t}"));
                }
                1 => {
                    let v = self.expr(2);
                    self.line(&format!("put q0, {v}"));
                }
                2 => {
                    let (x, q, t) = (self.name("v"), self.pick(QUEUES), self.pick(TIMEOUTS));
                    self.line(&format!("let {x} = get {q} timeout {t}"));
                    self.locals.push(x);
                }
                3 => {
                    // May block for good: a deadlock conc must report.
                    let q = self.pick(QUEUES);
                    self.line(&format!("print(get {q})"));
                }
                4 => {
                    let t = self.pick(TIMEOUTS);
                    self.line(&format!("print(wait e0 timeout {t})"));
                }
                5 => self.line("e0.set()"),
                6 => {
                    let w = self.pick(SLEEPS);
                    self.line(&format!("sleep({w})"));
                }
                7 => {
                    let v = self.expr(2);
                    self.line(&format!("n = n + {v}"));
                }
                8 => {
                    let v = self.expr(2);
                    self.line(&format!("append(out, {v})"));
                }
                9 => {
                    let v = self.expr(3);
                    self.line(&format!("print({v})"));
                }
                10 => {
                    let (x, v) = (self.name("v"), self.expr(3));
                    self.line(&format!("let {x} = {v}"));
                    self.locals.push(x);
                }
                11 => {
                    let (i, v) = (self.expr(1), self.expr(2));
                    self.line(&format!("xs[{i}] = {v}"));
                }
                12 => {
                    let (k, v) = (self.pick(STRINGS), self.expr(2));
                    self.line(&format!("mp[{k}] = {v}"));
                }
                13 => {
                    let m = self.pick(LOCKS);
                    let w = self.pick(TIMEOUTS);
                    self.line(&format!("if {m}.acquire({w}) {{ {m}.release() }}"));
                }
                14 => {
                    let m = self.pick(LOCKS);
                    self.line(&format!(
                        "try {{ {m}.release() }} catch e {{ print(e.kind) }}"
                    ));
                }
                15 => {
                    let t = self.pick(TIMEOUTS);
                    self.line(&format!(
                        "try {{ print(wait b0 timeout {t}) }} catch e {{ print(e.kind) }}"
                    ));
                }
                16 => {
                    let t = self.pick(TIMEOUTS);
                    self.line(&format!(
                        "lock c0 {{ c0.notify_all(); print(wait c0 timeout {t}) }}"
                    ));
                }
                17 => {
                    let call = self.call();
                    self.line(&format!("print({call})"));
                }
                18 => {
                    let v = self.expr(2);
                    self.line(&format!("assert {v}, \"assertion\""));
                }
                19 => {
                    let (k, v) = (self.pick(ERROR_KINDS), self.expr(1));
                    self.line(&format!("raise error({k}, str({v}))"));
                }
                20 => {
                    let f = self.callee();
                    self.line(&format!("print(p0.map({f}, [1, -2, 3]))"));
                }
                21 => self.line("print(len(threads()) > 0, current().name)"),
                22 => {
                    if self.in_loop {
                        let brk = self.pick(&["break", "continue"]);
                        self.line(brk);
                    } else if self.in_fn {
                        let v = self.expr(2);
                        self.line(&format!("return {v}"));
                    } else {
                        self.line("n += 1");
                    }
                }
                // Compound statements (only with depth left).
                23 => {
                    let m = self.pick(LOCKS);
                    self.block(&format!("lock {m}"), depth - 1);
                }
                24 => {
                    let c = self.expr(2);
                    self.block(&format!("if {c}"), depth - 1);
                    if self.flip() {
                        self.block("else", depth - 1);
                    }
                }
                25 => {
                    let i = self.name("i");
                    let k = self.int(0, 4);
                    let in_loop = std::mem::replace(&mut self.in_loop, true);
                    self.locals.push(i.clone());
                    self.block(&format!("for {i} in range({k})"), depth - 1);
                    self.locals.pop();
                    self.in_loop = in_loop;
                }
                26 => {
                    let k = self.name("k");
                    self.line(&format!("let {k} = 0"));
                    let in_loop = std::mem::replace(&mut self.in_loop, true);
                    let limit = self.int(0, 4);
                    self.open(&format!("while {k} < {limit}"));
                    self.line(&format!("{k} += 1"));
                    self.body(depth - 1);
                    self.close();
                    self.in_loop = in_loop;
                }
                27 => {
                    self.block("try", depth - 1);
                    let e = self.name("e");
                    self.locals.push(e.clone());
                    self.line(&format!("catch {e} {{ print({e}.kind, {e}.message) }}"));
                    self.locals.pop();
                }
                28 => {
                    let h = self.spawn();
                    if self.flip() {
                        let t = self.pick(JOIN_TIMEOUTS);
                        self.line(&format!(
                            "try {{ print(join {h} timeout {t}) }} catch e {{ print(e.kind) }}"
                        ));
                    }
                }
                29 => {
                    let (a, b) = (self.pick(QUEUES), self.pick(QUEUES));
                    let v = self.expr(1);
                    let x = self.name("v");
                    self.line("select {");
                    self.line(&format!("  case {x} = get {a} {{ print({x}) }}"));
                    self.line(&format!("  case put {b}, {v} {{ n += 1 }}"));
                    if self.int(0, 3) > 0 {
                        let w = self.pick(TIMEOUTS);
                        self.line(&format!("  case timeout {w} {{ }}"));
                    }
                    self.line("}");
                }
                30 => {
                    let (a, b) = (self.pick(LOCKS), self.pick(LOCKS));
                    // Nested in either order across threads: a lock cycle.
                    let w = self.pick(SLEEPS);
                    self.line(&format!("lock {a} {{ sleep({w}); lock {b} {{ n += 1 }} }}"));
                }
                31 => {
                    let f = self.name("g");
                    let v = self.expr(2);
                    self.line(&format!("let {f} = fn(a) {{ return {v} }}"));
                    self.locals.push(f.clone());
                    let arg = self.expr(1);
                    self.line(&format!("print({f}({arg}))"));
                }
                32 => {
                    let x = self.name("v");
                    let f = self.callee();
                    let arg = self.expr(1);
                    self.line(&format!("let {x} = submit p0, {f}({arg})"));
                    self.line(&format!("{x}.then(fn(r) {{ append(out, r) }})"));
                    self.line(&format!(
                        "try {{ print(join {x} timeout 0.005) }} catch e {{ print(e.kind) }}"
                    ));
                }
                33 => self.line("print(wait b0)"),
                _ => {
                    let x = self.name("t");
                    let w = self.pick(SLEEPS);
                    self.line(&format!("let {x} = timer({w}, print, \"fired\")"));
                    if self.flip() {
                        self.line(&format!("{x}.cancel()"));
                    }
                    self.line(&format!("join {x}"));
                }
            }
        }

        /// A value that is an int (or raises): safe for order comparisons.
        fn number(&mut self, depth: usize) -> String {
            match self.int(0, if depth == 0 { 2 } else { 6 }) {
                0 => self.pick(INTS).to_string(),
                1 => "n".to_string(),
                2 => self
                    .pick(&["len(xs)", "len(out)", "q0.size()", "len(mp)"])
                    .to_string(),
                3 => {
                    let (a, b) = (self.number(depth - 1), self.number(depth - 1));
                    let op = self.pick(&["+", "-", "*", "//", "%", "**"]);
                    format!("({a} {op} {b})")
                }
                4 => format!("(-{})", self.number(depth - 1)),
                5 => format!("abs({})", self.number(depth - 1)),
                _ => format!("randint(0, {})", self.pick(&["1", "5"])),
            }
        }

        fn expr(&mut self, depth: usize) -> String {
            let max = if depth == 0 { 5 } else { 22 };
            match self.int(0, max) {
                0 => self.pick(INTS).to_string(),
                1 => self.pick(FLOATS).to_string(),
                2 => self.pick(STRINGS).to_string(),
                3 => self.pick(&["nil", "true", "false"]).to_string(),
                4 => self.pick(&["n", "xs", "mp", "out"]).to_string(),
                5 => {
                    if self.locals.is_empty() {
                        "n".to_string()
                    } else {
                        let i = self.int(0, self.locals.len() - 1);
                        self.locals[i].clone()
                    }
                }
                6 => {
                    let (a, b) = (self.expr(depth - 1), self.expr(depth - 1));
                    let op = self.pick(&[
                        "+", "-", "*", "/", "%", "==", "!=", "and", "or", "in", "not in",
                    ]);
                    format!("({a} {op} {b})")
                }
                7 => {
                    let (a, b) = match self.flip() {
                        true => (self.number(depth - 1), self.number(depth - 1)),
                        false => (self.expr(depth - 1), self.expr(depth - 1)),
                    };
                    let op = self.pick(&["<", "<=", ">", ">="]);
                    format!("({a} {op} {b})")
                }
                8 => format!("(not {})", self.expr(depth - 1)),
                9 => self.number(depth),
                10 => {
                    let k = self.int(0, 3);
                    let items: Vec<String> = (0..k).map(|_| self.expr(depth - 1)).collect();
                    format!("[{}]", items.join(", "))
                }
                11 => {
                    let (k, v) = (self.pick(STRINGS), self.expr(depth - 1));
                    format!("{{{k}: {v}}}")
                }
                12 => {
                    let (t, i) = (self.expr(depth - 1), self.number(depth - 1));
                    format!("({t})[{i}]")
                }
                13 => {
                    let t = self.expr(depth - 1);
                    let (a, b) = (self.pick(INTS), self.pick(&["", "1", "-1", "2"]));
                    format!("({t})[{a}:{b}]")
                }
                14 => {
                    let f = self.pick(&[
                        "len", "str", "repr", "type", "bool", "int", "float", "reversed", "keys",
                        "values", "items",
                    ]);
                    format!("{f}({})", self.expr(depth - 1))
                }
                15 => {
                    let k = self.int(0, 3);
                    let items: Vec<String> = (0..k).map(|_| self.expr(depth - 1)).collect();
                    format!("sorted([{}])", items.join(", "))
                }
                16 => format!(
                    "min({}, {})",
                    self.number(depth - 1),
                    self.number(depth - 1)
                ),
                17 => format!("(get q0 timeout {})", self.pick(TIMEOUTS)),
                18 => {
                    let t = self.expr(depth - 1);
                    let m = self.pick(&[
                        "upper()",
                        "split(\",\")",
                        "copy()",
                        "index(1)",
                        "join([\"a\"])",
                        "get(\"a\")",
                        "nope()",
                    ]);
                    format!("({t}).{m}")
                }
                19 => "pop(out)".to_string(),
                20 => "e0.is_set()".to_string(),
                21 => format!(
                    "sum([{}, {}])",
                    self.number(depth - 1),
                    self.number(depth - 1)
                ),
                _ => self.call(),
            }
        }
    }
}
