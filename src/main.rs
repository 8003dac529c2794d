//! The `conc` command: arguments -> Session -> exit status.

use clap::{Parser, Subcommand};
use conc::diagnostics::ConcError;
use conc::runtime::engine::controlled::schedule::{script_hash, Schedule, Token};
use conc::runtime::engine::Rng;
use conc::runtime::process::spawner::{self, Role};
use conc::session::{Session, SessionOptions};
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

// std's `eprint!` panics when standard error is a closed pipe (`conc x.conc
// 2>&1 | head -1`); a report nobody can read is simply dropped instead.
macro_rules! eprint {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}
macro_rules! eprintln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Concurrency on real OS threads and processes, in a small scripting language.
#[derive(Parser)]
#[command(name = "conc", version, args_conflicts_with_subcommands = true)]
#[command(
    after_help = "Exit status: 0 ok, 1 runtime error, 2 syntax or usage error, 3 deadlock, \
70 internal error (a bug in conc).\n\
With no FILE and no -c, conc opens the REPL (or runs standard input when it is not a terminal).\n\
Environment: NO_COLOR; CONC_SSH, the ssh command for `spawn process ... on HOST` (default ssh); \
CONC_SPAWN_ON=HOST, every `spawn process` without `on` runs on HOST."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Run CODE instead of a file (arguments after it go to argv())
    #[arg(short = 'c', value_name = "CODE")]
    code: Option<String>,

    /// Never colour error reports
    #[arg(long)]
    no_color: bool,

    /// Seed random() and randint() so a run's random numbers repeat
    #[arg(long, value_name = "N")]
    seed: Option<u64>,

    /// Run under the controlled scheduler: one thread at a time, virtual
    /// time, an exact replay line when the run fails. SCHEDULE is random,
    /// random:SEED, pct:DEPTH, pct:DEPTH:SEED or replay:TOKEN. cpu_count()
    /// is 4 and getpid() is 1000 under control.
    #[arg(long, value_name = "SCHEDULE")]
    sched: Option<String>,

    /// Write the run as Chrome Trace Event JSON (Perfetto,
    /// chrome://tracing) to FILE: real time, or virtual with --sched
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,

    /// Write the run as swim lanes in one self-contained HTML page (zoom,
    /// hover for the source line) to FILE
    #[arg(long, value_name = "FILE")]
    timeline: Option<PathBuf>,

    /// Draw the run as swim lanes on stderr when it ends (real time
    /// without --sched: each thread's steps in the order they happened)
    #[arg(long)]
    lanes: bool,

    /// The script to run, then the arguments it sees in argv()
    #[arg(
        value_name = "FILE",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    script: Vec<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run fixtures: .conc files (or folders of them) whose comments state what must happen
    Test {
        /// Run each fixture under every schedule of SET instead of the OS
        /// engine, stopping at its first failure: `random:1..50`,
        /// `pct:2 x 100`, `random:1..20,pct:2:1..20`. A fixture's own
        /// `# schedule:` directive (or `# schedule: os`) wins.
        #[arg(long, value_name = "SET")]
        sched: Option<String>,
        /// Files or folders (default: the `tests` folder of the project, found from here upwards)
        paths: Vec<PathBuf>,
    },
    /// Run a script under many schedules on purpose: what can happen, the first failure shrunk, and how much was covered
    Explore {
        /// auto (exhaustive if small, else sampling), dpor (every class of
        /// interleavings once), dfs (every schedule; with --preemptions, every
        /// schedule with at most K), random, pct:DEPTH, pos
        #[arg(long, value_name = "STRATEGY", default_value = "auto")]
        strategy: String,
        /// With dfs: at most K preemptions per schedule
        #[arg(long, value_name = "K")]
        preemptions: Option<u32>,
        /// Run at most N schedules (sampling: N schedules; default 1000)
        #[arg(long, value_name = "N")]
        schedules: Option<u64>,
        /// Stop after this long (`30s`, `2m`); `adversarial`: a timeout may
        /// fire while threads can still run (`quiescent`, the default: time
        /// jumps only when none can). May be given twice.
        #[arg(long, value_name = "DURATION|adversarial|quiescent")]
        time: Vec<String>,
        /// Do not stop at the first failure: the whole outcome set
        #[arg(long)]
        all: bool,
        /// Run N schedules at a time, on N OS threads
        #[arg(long, value_name = "N", default_value_t = 1)]
        jobs: usize,
        /// A run that passes N scheduling points is stopped (an outcome of its own)
        #[arg(long, value_name = "N", default_value_t = 20_000)]
        max_steps: u64,
        /// Write the first failure's run (as shown) as Chrome Trace Event JSON to FILE
        #[arg(long, value_name = "FILE")]
        trace: Option<PathBuf>,
        /// Print one fact per line for `conc test` instead of the report
        #[arg(long, hide = true)]
        porcelain: bool,
        /// The script, then the arguments it sees in argv() (options may
        /// come before or after FILE; arguments that start with `-` go
        /// after `--`)
        #[arg(value_name = "FILE", required = true)]
        script: Vec<String>,
    },
}

/// The interpreter recurses on the OS stack; give the main script as much
/// room as spawned threads get.
const MAIN_STACK: usize = conc::runtime::threads::THREAD_STACK;

fn main() -> ExitCode {
    crash::install_panic_hook();
    let first = std::env::args_os().nth(1);
    let is = |flag: &str| first.as_ref().is_some_and(|a| a == flag);
    let mut entry = if is(conc::remote::REMOTE_FLAG) {
        // While this process has its only thread: the supervisor ends here.
        if let Some(code) = conc::remote::split() {
            std::process::exit(code);
        }
        Entry::Remote
    } else if is(conc::child::CHILD_FLAG) {
        // A child reads its start message first, still with one thread.
        Entry::Child(conc::child::open())
    } else {
        Entry::Run(Cli::parse())
    };
    // While this process has its only thread: a run (or a child) that may
    // start processes makes the spawner they are cloned from. A clone is a
    // child with one thread too, and may make its own.
    loop {
        let may_spawn = match &entry {
            Entry::Child(Ok(opened)) => opened.may_spawn_processes(),
            Entry::Run(cli) => cli.may_spawn_processes(),
            _ => false,
        };
        // The spawner drops its copy of this process's entry (a child's
        // connection and arena): its clones are other children.
        if !may_spawn || spawner::start(|| entry = Entry::Child(Err(2))) == Role::Parent {
            break;
        }
        entry = Entry::Child(conc::child::open());
    }
    // Taken by whichever runs `start`: the big thread, or this one.
    let entry = std::sync::Arc::new(std::sync::Mutex::new(Some(entry)));
    let start = move || match entry.lock().ok().and_then(|mut e| e.take()) {
        Some(Entry::Child(Ok(opened))) => conc::child::run(opened),
        Some(Entry::Child(Err(code))) => code,
        Some(Entry::Remote) => conc::remote::run(),
        Some(Entry::Run(cli)) => run(cli),
        None => 2,
    };
    let runner = std::thread::Builder::new()
        .name("main".into())
        .stack_size(MAIN_STACK)
        .spawn(start.clone());
    let code = match runner {
        // The panic hook has already reported a panic and ended the process.
        Ok(handle) => handle.join().unwrap_or(crash::INTERNAL_ERROR),
        // No big thread to be had: run here, with the stack there is (deep
        // recursion of the evaluator then fails sooner).
        Err(_) => start(),
    };
    spawner::stop();
    // Daemon threads are abandoned: end the process without waiting for them.
    std::process::exit(code)
}

/// What this process is, decided in `main` while it has one thread.
enum Entry {
    /// `conc` as users run it.
    Run(Cli),
    /// A child process, with its start message (or the status to exit with).
    Child(Result<conc::child::Opened, i32>),
    /// A child on another machine, started by ssh.
    Remote,
}

impl Cli {
    /// A run of a script on the OS engine that may start processes (see
    /// `spawner::wanted`).
    fn may_spawn_processes(&self) -> bool {
        if self.command.is_some() || self.sched.is_some() {
            return false;
        }
        match (&self.code, self.script.first()) {
            (Some(code), _) => spawner::wanted(code),
            (None, Some(file)) => std::fs::read_to_string(file).is_ok_and(|t| spawner::wanted(&t)),
            (None, None) => false,
        }
    }
}

/// How a script is run, from the flags.
struct RunOptions {
    color: bool,
    seed: Option<u64>,
    schedule: Option<Schedule>,
    trace: Option<PathBuf>,
    timeline: Option<PathBuf>,
    lanes: bool,
}

fn run(cli: Cli) -> i32 {
    let color =
        !cli.no_color && std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    match cli.command {
        Some(Command::Test { paths, sched }) => return run_tests(paths, sched),
        Some(Command::Explore {
            strategy,
            preemptions,
            schedules,
            time,
            all,
            jobs,
            max_steps,
            trace,
            porcelain,
            script,
        }) => {
            let how = match conc::explore::How::parse(&strategy) {
                Ok(conc::explore::How::Dfs { .. }) => conc::explore::How::Dfs { preemptions },
                Ok(_) if preemptions.is_some() => {
                    eprintln!("conc explore: --preemptions goes with --strategy dfs");
                    return 2;
                }
                Ok(how) => how,
                Err(e) => {
                    eprintln!("conc explore: --strategy: {}", e);
                    return 2;
                }
            };
            let (mut limit, mut adversarial) = (None, false);
            for t in &time {
                match t.as_str() {
                    "adversarial" => adversarial = true,
                    "quiescent" => adversarial = false,
                    d => match parse_duration(d) {
                        Ok(d) => limit = Some(d),
                        Err(e) => {
                            eprintln!("conc explore: --time: {}", e);
                            return 2;
                        }
                    },
                }
            }
            let time = limit;
            let options = conc::explore::Options {
                how,
                schedules,
                time,
                all,
                jobs: jobs.max(1),
                max_steps,
                show_failure: !porcelain,
                trace: trace.is_some(),
                adversarial,
            };
            return explore_command(&script, &options, color, porcelain, trace.as_deref());
        }
        None => {}
    }
    let schedule = match cli
        .sched
        .as_deref()
        .map(|s| Schedule::parse(s, Rng::fresh_seed))
    {
        None => None,
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => {
            eprintln!("conc: --sched: {}", e);
            return 2;
        }
    };
    let options = RunOptions {
        color,
        seed: cli.seed,
        schedule,
        trace: cli.trace,
        timeline: cli.timeline,
        lanes: cli.lanes,
    };
    let (name, source, argv) = match (cli.code, cli.script.split_first()) {
        (Some(code), _) => ("<-c>".to_string(), code, cli.script.clone()),
        (None, Some((file, rest))) => match std::fs::read_to_string(file) {
            Ok(text) => (file.clone(), text, rest.to_vec()),
            Err(e) => {
                eprintln!("conc: cannot read {}: {}", file, e);
                return 2;
            }
        },
        (None, None) => return run_stdin_or_repl(options),
    };
    let outputs = [("trace", &options.trace), ("timeline", &options.timeline)];
    for (what, path) in outputs {
        if path.as_deref().is_some_and(|p| !can_write("conc", what, p)) {
            return 2;
        }
    }
    run_script(&name, &source, argv, options)
}

/// Whether the `what` file at `path` can be written, found out before a
/// run rather than after it (a file that was not there is not left
/// behind); if not, `who` says so.
fn can_write(who: &str, what: &str, path: &std::path::Path) -> bool {
    let existed = path.exists();
    let opened = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path);
    match opened {
        Ok(_) => {
            if !existed {
                let _ = std::fs::remove_file(path);
            }
            true
        }
        Err(e) => {
            eprintln!(
                "{}: cannot write the {} to {}: {}",
                who,
                what,
                path.display(),
                e
            );
            false
        }
    }
}

/// `--lanes`: the drawing on stderr, coloured on a terminal.
fn show_lanes(lanes: &str, color: bool) {
    if color {
        eprint!("{}", conc::explore::paint(lanes));
    } else {
        eprint!("{}", lanes);
    }
}

/// Write the run's trace and timeline where the options ask for them.
fn write_traces(
    (trace, timeline): (Option<&PathBuf>, Option<&PathBuf>),
    json: impl FnOnce(&std::path::Path) -> std::io::Result<()>,
    page: impl FnOnce() -> String,
) {
    if let Some(path) = trace {
        if let Err(e) = json(path) {
            eprintln!("conc: cannot write the trace to {}: {}", path.display(), e);
        }
    }
    if let Some(path) = timeline {
        if let Err(e) = std::fs::write(path, page()) {
            eprintln!(
                "conc: cannot write the timeline to {}: {}",
                path.display(),
                e
            );
        }
    }
}

fn run_script(name: &str, source: &str, argv: Vec<String>, options: RunOptions) -> i32 {
    if let Some(Schedule::Replay(token)) = &options.schedule {
        if token.script_hash != script_hash(source) {
            eprintln!(
                "replay: {} has changed since this token was made; following its schedule as far as it fits",
                name
            );
        }
    }
    let controlled = options.schedule.is_some();
    let watching = options.trace.is_some() || options.timeline.is_some() || options.lanes;
    let (watched, strategy) = match (&options.schedule, watching) {
        (Some(s), true) => {
            let (w, strategy) = conc::explore::Watched::new(s.strategy());
            (Some(w), Some(strategy))
        }
        _ => (None, None),
    };
    let seed = options
        .seed
        .or_else(|| options.schedule.as_ref().map(Schedule::seed));
    let record =
        !controlled && (options.trace.is_some() || options.timeline.is_some() || options.lanes);
    let mut session = Session::new(SessionOptions {
        argv: argv.clone(),
        color: options.color,
        seed,
        schedule: options.schedule,
        strategy,
        record,
        ..Default::default()
    });
    let result = session
        .run(name, source)
        .map(|_| ())
        .and_then(|_| session.finish());
    // A partial line `write` left is the program's last output: out before
    // any report on standard error.
    session.context().out.flush();
    let texts = conc::explore::Texts::of(name, &session.context().sources);
    if let Some(w) = &watched {
        if let Some(s) = session.context().engine().scheduler() {
            s.close_open();
        }
        write_traces(
            (options.trace.as_ref(), options.timeline.as_ref()),
            |path| w.write_trace(&texts, path),
            || w.timeline(&texts),
        );
        if options.lanes {
            show_lanes(&w.lanes(&texts, 80), options.color);
        }
    }
    if let Some(recorded) = conc::explore::Recorded::of(&session, name, false) {
        write_traces(
            (options.trace.as_ref(), options.timeline.as_ref()),
            |path| recorded.write_trace(&texts, path),
            || recorded.timeline(&texts),
        );
        if options.lanes {
            show_lanes(&recorded.lanes(&texts, 80), options.color);
        }
    }
    if let Some(why) = session.replay_divergence() {
        eprintln!(
            "replay: the run no longer follows the recorded schedule: {}",
            why
        );
    }
    match result {
        Ok(()) => 0,
        // `exit(code)`: the run ends with that status and prints nothing;
        // child processes are stopped as after an uncaught error.
        Err(ConcError::Runtime(e)) if e.exit_status().is_some() => {
            session.abandon_children();
            e.exit_status().unwrap_or(1)
        }
        Err(e) => {
            eprint!("{}", session.render(&e));
            if controlled {
                if let Some(token) = session.replay_token() {
                    eprintln!("replay: {}", replay_command(&token, name, source, &argv));
                }
            }
            session.abandon_children();
            e.exit_code()
        }
    }
}

/// The command line that replays this run exactly.
fn replay_command(token: &Token, name: &str, source: &str, argv: &[String]) -> String {
    let what = match name {
        "<-c>" => format!("-c {}", shell_quote(source)),
        "<stdin>" => "- < (the same standard input)".to_string(),
        file => shell_quote(file),
    };
    let args: Vec<String> = argv.iter().map(|a| shell_quote(a)).collect();
    format!("conc --sched replay:{} {} {}", token, what, args.join(" "))
        .trim_end()
        .to_string()
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn run_stdin_or_repl(options: RunOptions) -> i32 {
    if std::io::stdin().is_terminal() {
        return conc::repl::run(options.color);
    }
    let mut source = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut source) {
        eprintln!("conc: cannot read standard input: {}", e);
        return 2;
    }
    run_script("<stdin>", &source, Vec::new(), options)
}

/// `30s`, `2m`, `1.5s`, `500ms`, or plain seconds.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("`{}`: write it as 30s, 2m, 500ms or 1h", text)),
    };
    match number.parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 && n * scale < 1e9 => {
            Ok(std::time::Duration::from_secs_f64(n * scale))
        }
        _ => Err(format!("`{}`: write it as 30s, 2m, 500ms or 1h", text)),
    }
}

/// `conc explore FILE`: the outcome set, the first failure, the coverage.
fn explore_command(
    script: &[String],
    options: &conc::explore::Options,
    color: bool,
    porcelain: bool,
    trace: Option<&std::path::Path>,
) -> i32 {
    let Some((file, argv)) = script.split_first() else {
        eprintln!("conc explore: name the script to explore");
        return 2;
    };
    let source = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("conc explore: cannot read {}: {}", file, e);
            return 2;
        }
    };
    if trace.is_some_and(|p| !can_write("conc explore", "trace", p)) {
        return 2;
    }
    // A syntax error is the script's, not a schedule's: say it once.
    let mut check = Session::new(SessionOptions {
        color,
        ..Default::default()
    });
    if let Err(e) = check.load(file, &source) {
        eprint!("{}", check.render(&e));
        return e.exit_code();
    }
    drop(check);
    if let Err(e) = ctrlc::set_handler(|| {
        conc::explore::interrupt_flag().store(true, std::sync::atomic::Ordering::Relaxed)
    }) {
        eprintln!("conc explore: cannot catch Ctrl-C: {}", e);
    }
    let script = conc::explore::Script::new(file.clone(), source, argv.to_vec());
    let report = conc::explore::explore(&script, options);
    if porcelain {
        let _ = std::io::Write::write_all(&mut std::io::stdout(), report.porcelain().as_bytes());
        return 0;
    }
    let mut out = String::new();
    if let Some(f) = &report.first_failure {
        out.push_str(&format!(
            "FAILED: {}

{}",
            f.outcome.label(),
            f.report
        ));
        if !f.report.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!(
            "\nthe shortest schedule found: {} preemption{}, {} shared step{}\n{}",
            f.preemptions,
            if f.preemptions == 1 { "" } else { "s" },
            f.shared_steps,
            if f.shared_steps == 1 { "" } else { "s" },
            if color && std::io::stdout().is_terminal() {
                conc::explore::paint(&f.lanes)
            } else {
                f.lanes.clone()
            }
        ));
        if let (Some(path), Some(json)) = (trace, &f.trace) {
            match std::fs::write(path, json) {
                Ok(()) => out.push_str(&format!("trace: {}\n", path.display())),
                Err(e) => eprintln!("conc explore: cannot write {}: {}", path.display(), e),
            }
        }
        let args: Vec<String> = argv.iter().map(|a| shell_quote(a)).collect();
        out.push_str(&format!(
            "replay: {}\n\n",
            format!(
                "conc --sched {} {} {}",
                f.schedule,
                shell_quote(file),
                args.join(" ")
            )
            .trim_end()
        ));
    }
    if report.nondeterministic {
        out.push_str("the script ran differently under the same decisions (does it read the real time, files or other processes?)\n");
    }
    out.push_str(&report.outcome_line());
    out.push('\n');
    out.push_str(&report.coverage.line(&report.how));
    out.push('\n');
    let _ = std::io::Write::write_all(&mut std::io::stdout(), out.as_bytes());
    i32::from(report.failed())
}

/// `conc test`: each fixture runs in its own `conc` process (this binary).
fn run_tests(paths: Vec<PathBuf>, sched: Option<String>) -> i32 {
    let sweep = match sched.map(|s| conc::fixture::parse_schedules(&s, false)) {
        None => None,
        Some(Ok(conc::fixture::Schedules::Listed(list))) => Some(list),
        Some(Ok(conc::fixture::Schedules::OsOnly)) => None,
        Some(Err(e)) => {
            eprintln!("conc test: --sched: {e}");
            return 2;
        }
    };
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("conc test: cannot find the conc binary: {}", e);
            return 2;
        }
    };
    let paths = match fixture_paths(paths, &exe) {
        Ok(paths) => paths,
        Err(message) => {
            eprintln!("conc test: {message}");
            return 2;
        }
    };
    let (_, failed) =
        conc::fixture::run_all(&paths, &exe, sweep.as_deref(), &mut std::io::stdout());
    i32::from(failed > 0)
}

/// The paths given, each checked; without any, the project's `tests` folder.
fn fixture_paths(paths: Vec<PathBuf>, exe: &std::path::Path) -> Result<Vec<PathBuf>, String> {
    const HOW: &str = "name them: conc test FILE.conc ... or conc test FOLDER ...";
    if let Some(missing) = paths.iter().find(|p| !p.exists()) {
        return Err(format!("{} does not exist; {HOW}", missing.display()));
    }
    if !paths.is_empty() {
        if conc::fixture::expand_paths(&paths).is_empty() {
            return Err(format!("no .conc files in the paths given; {HOW}"));
        }
        return Ok(paths);
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    match conc::fixture::default_fixture_folder(&cwd, exe) {
        Some(folder) => Ok(vec![folder]),
        None => Err(format!(
            "no `tests` folder with .conc files in {} or above it; {HOW}",
            cwd.display()
        )),
    }
}

/// What a bug in conc itself does: a panic (on any thread) or a failed
/// allocation is reported as such and ends the process with its own
/// status, never mistaken for a script's error (1).
mod crash {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// sysexits' EX_SOFTWARE, "internal software error".
    pub const INTERNAL_ERROR: i32 = 70;

    static ENDING: AtomicBool = AtomicBool::new(false);

    /// A panic anywhere ends the process at once with `INTERNAL_ERROR`:
    /// a worker thread that panicked never finishes, so whoever joins it
    /// would wait forever, and nothing it shares can be trusted any more.
    pub fn install_panic_hook() {
        std::panic::set_hook(Box::new(|info| {
            if ENDING.swap(true, Ordering::SeqCst) {
                // Another thread is reporting and ending the process.
                loop {
                    std::thread::park();
                }
            }
            let message = info.payload_as_str().unwrap_or("(no message)");
            let location = info
                .location()
                .map_or_else(String::new, |l| format!(" at {}:{}", l.file(), l.line()));
            let thread = std::thread::current();
            let backtrace = std::backtrace::Backtrace::capture();
            let backtrace = match backtrace.status() {
                std::backtrace::BacktraceStatus::Captured => format!("\n{backtrace}"),
                _ => "\n(RUST_BACKTRACE=1 shows where)".to_string(),
            };
            let _ = write!(
                std::io::stderr(),
                "conc: internal error (a bug in conc, not in your script): {message}\n  \
                 in thread '{}'{location}\n  please report it, with the script that \
                 caused it{backtrace}\n",
                thread.name().unwrap_or("?"),
            );
            std::process::exit(INTERNAL_ERROR)
        }));
    }

    /// The system allocator, except that running out of memory is a
    /// one-line MemoryError report and status 1 (a runtime error), not
    /// std's abort (SIGABRT, which looks like a crash). There is no
    /// script location here: the allocation can come from anywhere.
    pub struct Allocator;

    #[cold]
    fn out_of_memory(size: usize) -> ! {
        if !ENDING.swap(true, Ordering::SeqCst) {
            // No allocation from here on: format into a buffer on the stack.
            let mut buf = [0u8; 160];
            let mut out = &mut buf[..];
            let _ = writeln!(
                out,
                "conc: MemoryError: out of memory (a request for {size} bytes failed)"
            );
            let len = 160 - out.len();
            // SAFETY: writes `len` initialised bytes of `buf` to fd 2.
            unsafe { libc::write(2, buf.as_ptr().cast(), len) };
        }
        // SAFETY: ends the process without running anything that allocates.
        unsafe { libc::_exit(1) }
    }

    // SAFETY: every method is `System`'s, except that a null result ends
    // the process instead of being returned. Only fallible reservations
    // (`try_reserve`) would have handled a null, and conc makes none; code
    // that adds one to raise a MemoryError itself must know this first.
    unsafe impl GlobalAlloc for Allocator {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let p = unsafe { System.alloc(layout) };
            if p.is_null() {
                out_of_memory(layout.size())
            }
            p
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            let p = unsafe { System.alloc_zeroed(layout) };
            if p.is_null() {
                out_of_memory(layout.size())
            }
            p
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let p = unsafe { System.realloc(ptr, layout, new_size) };
            if p.is_null() {
                out_of_memory(new_size)
            }
            p
        }
    }
}

#[global_allocator]
static ALLOCATOR: crash::Allocator = crash::Allocator;
