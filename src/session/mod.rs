//! `Session`: the one API the CLI, the REPL and the fixture runner share.
//! Parse + resolve + run a file or a REPL entry, keeping globals, sources
//! and threads between entries.

use crate::diagnostics::{self, ConcError, RuntimeError};
use crate::eval::{builtins, Interp};
use crate::runtime::engine::controlled::schedule::{script_hash, Schedule, Token};
use crate::runtime::engine::controlled::strategy::Strategy;
use crate::runtime::engine::Engine;
use crate::runtime::output::{Output, Stdout};
use crate::runtime::threads::{self, ThreadRef};
use crate::runtime::value::globals::Globals;
use crate::runtime::value::Value;
use crate::runtime::waits::{DeadlockPolicy, Registry};
use crate::runtime::Context;
use crate::span::{SourceMap, Span};
use std::sync::Arc;

pub mod child;

pub struct SessionOptions {
    pub argv: Vec<String>,
    pub out: Arc<dyn Output>,
    /// Script mode: a deadlock ends the run; every thread is interrupted
    /// and the run gives the report back as its error (the CLI prints it
    /// and exits with status 3). Otherwise (REPL) only the threads involved
    /// get the Deadlock error.
    pub deadlock_exits: bool,
    /// Seeds `random()` (`--seed`); a fresh seed when `None`.
    pub seed: Option<u64>,
    /// Run under the controlled engine with this schedule (`--sched`).
    pub schedule: Option<Schedule>,
    /// Run under the controlled engine with this strategy (exploration);
    /// wins over `schedule`.
    pub strategy: Option<Box<dyn Strategy>>,
    /// Render reports with colour.
    pub color: bool,
    /// The name of the thread that runs the script ("main"; a child
    /// process's main thread has the process's name).
    pub main_name: String,
    /// This is a daemon process (it may not spawn processes).
    pub daemon_process: bool,
    /// On the OS engine: note every thread's steps for a trace.
    pub record: bool,
    /// A child process simulated under its parent's scheduler: its engine
    /// (wins over `schedule` and `strategy`) and its main thread, which
    /// already runs.
    pub simulated: Option<(Engine, ThreadRef)>,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            argv: Vec::new(),
            out: Arc::new(Stdout),
            deadlock_exits: true,
            seed: None,
            schedule: None,
            strategy: None,
            color: false,
            main_name: "main".to_string(),
            daemon_process: false,
            record: false,
            simulated: None,
        }
    }
}

pub struct Session {
    ctx: Arc<Context>,
    main: ThreadRef,
    interp: Interp,
    color: bool,
}

impl Session {
    pub fn new(options: SessionOptions) -> Session {
        Session::build(options, None)
    }

    /// A session under other options that goes on from `carried`: the same
    /// globals, sources and functions (so definitions stay), numbering on
    /// where it stopped. The REPL's `:sched` and `:trace on` switch engines
    /// this way.
    fn build(options: SessionOptions, carried: Option<&Context>) -> Session {
        let (sources, globals, functions, names) = match carried {
            Some(c) => (
                c.sources.clone(),
                c.globals.clone(),
                c.functions.copy(),
                c.names.lock().clone(),
            ),
            None => {
                // The builtins, and as many globals again for the script.
                let builtins = builtins::CORE.len() + crate::eval::concurrency_builtins().count();
                let globals = Globals::with_room(2 * builtins);
                for b in builtins::CORE
                    .iter()
                    .chain(crate::eval::concurrency_builtins())
                {
                    globals.define(b.name, Value::Builtin(b));
                }
                (
                    SourceMap::default(),
                    globals,
                    Default::default(),
                    Default::default(),
                )
            }
        };
        let color = options.color;
        let reporter_sources = sources.clone();
        let reporter_out = options.out.clone();
        let (engine, simulated_main) = match options.simulated {
            Some((engine, main)) => (engine, Some(main)),
            None => (
                match (options.strategy, &options.schedule) {
                    (Some(strategy), _) => Engine::controlled(strategy, options.seed.unwrap_or(0)),
                    (None, None) if options.record => Engine::os_recording(options.seed),
                    (None, None) => Engine::os(options.seed),
                    (None, Some(s)) => {
                        Engine::controlled(s.strategy(), options.seed.unwrap_or(s.seed()))
                    }
                },
                None,
            ),
        };
        let ctx = Arc::new(Context {
            globals,
            sources,
            out: options.out,
            argv: options.argv,
            registry: Registry::new(engine),
            reporter: Box::new(move |thread, err| {
                let rendered =
                    diagnostics::render(&ConcError::Runtime(err.clone()), &reporter_sources, color);
                reporter_out.report(&format!(
                    "error in thread {} (no join was waiting for it):\n{}",
                    thread, rendered
                ));
            }),
            names: parking_lot::Mutex::new(names),
            pools: Default::default(),
            functions,
            builtins: crate::eval::all_builtins().collect(),
            daemon_process: options.daemon_process,
            color,
            arena: Default::default(),
            child_entry: child::simulated,
            links: Default::default(),
        });
        if let Some(c) = carried {
            ctx.registry.continue_numbering(&c.registry);
        }
        ctx.registry.set_sources(ctx.sources.clone());
        if options.deadlock_exits {
            ctx.registry.set_deadlock_policy(DeadlockPolicy::EndRun);
        } else {
            // The REPL goes on after a deadlock: one among background
            // threads is shown when it forms, as their errors are.
            let (out, sources) = (ctx.out.clone(), ctx.sources.clone());
            ctx.registry.set_deadlock_handler(Some(Box::new(move |err| {
                let text = diagnostics::render(&ConcError::Runtime(err.clone()), &sources, color);
                out.report(&format!("deadlock among background threads:\n{}", text));
            })));
        }
        // A simulated child's main thread is already one of the run's.
        let main = match simulated_main {
            Some(main) => {
                // It has the process's first thread id.
                let _ = ctx.registry.next_thread_id();
                main
            }
            None => {
                let main = ctx.registry.new_thread(options.main_name, false);
                ctx.engine().adopt(&main);
                main
            }
        };
        ctx.registry.set_main(main.id);
        ctx.registry.register(main.clone());
        let interp = Interp::new(ctx.clone(), main.clone());
        Session {
            ctx,
            main,
            interp,
            color,
        }
    }

    /// Go on under other options (another engine, tracing on or off):
    /// definitions stay, the engine is new. Refused while a thread of this
    /// session other than the main one is alive, since it belongs to the
    /// engine it was started under.
    pub fn switch(&mut self, options: SessionOptions) -> Result<(), String> {
        let main = self.main.id;
        let alive: Vec<String> = (self.ctx.registry.snapshot().into_iter())
            .filter(|i| i.thread.id != main && i.thread.alive())
            .map(|i| i.thread.name.clone())
            .collect();
        if !alive.is_empty() {
            return Err(format!(
                "{} still running ({}): switch once they are done (join them), or :reset first",
                plural(alive.len(), "thread is", "threads are"),
                alive.join(", ")
            ));
        }
        if !crate::runtime::process::children(&self.ctx).is_empty() {
            return Err(
                "child processes are still running: switch once they are done, or :reset first"
                    .to_string(),
            );
        }
        *self = Session::build(options, Some(&self.ctx));
        Ok(())
    }

    /// Under control, after a REPL entry: the threads it started run until
    /// each has ended or waits for something only a later entry can give
    /// (daemon threads run only as long as others do). No-op on the OS
    /// engine, where they run on their own.
    pub fn settle(&mut self) -> Result<(), ConcError> {
        let Some(s) = self.ctx.engine().scheduler() else {
            return Ok(());
        };
        let s = s.clone();
        entered(&self.ctx, &self.main, || s.settle(&self.main))?;
        // Ctrl-C cut it short: the others stay where they are.
        match self.main.take_interrupt() {
            Some(e) => Err(ConcError::Runtime(e)),
            None => Ok(()),
        }
    }

    pub fn context(&self) -> &Arc<Context> {
        &self.ctx
    }

    pub fn main_thread(&self) -> &ThreadRef {
        &self.main
    }

    /// Parse, resolve and run one source text (a file, `-c` code, a REPL
    /// entry). Gives the value of a final expression statement.
    pub fn run(&mut self, name: &str, source: &str) -> Result<Option<Value>, ConcError> {
        let program = self.load(name, source)?;
        self.main.clear_interrupt();
        let interp = &mut self.interp;
        let result = entered(&self.ctx, &self.main, || interp.run_program(&program))?;
        result.map_err(|e| ConcError::Runtime(*e))
    }

    /// Run a program parsed earlier from `source` as the session's first
    /// source (an explorer runs one script thousands of times: it parses
    /// it once). Falls back to parsing when the session has sources.
    pub fn run_parsed(
        &mut self,
        name: &str,
        source: &str,
        parsed: &crate::ast::Program,
    ) -> Result<Option<Value>, ConcError> {
        if !self.ctx.sources.all().is_empty() {
            return self.run(name, source);
        }
        let id = self.ctx.sources.add(name, source);
        debug_assert_eq!(id.0, 0);
        let mut program = parsed.clone();
        crate::resolve::resolve(&mut program, &self.ctx.globals)?;
        self.ctx.functions.add(&program.functions);
        self.main.clear_interrupt();
        let interp = &mut self.interp;
        let result = entered(&self.ctx, &self.main, || interp.run_program(&program))?;
        result.map_err(|e| ConcError::Runtime(*e))
    }

    /// Parse and resolve a source without running it (a child process
    /// loads its parent's sources this way before it is handed a call).
    pub fn load(&mut self, name: &str, source: &str) -> Result<crate::ast::Program, ConcError> {
        let id = self.ctx.sources.add(name, source);
        let mut program = crate::parser::parse(source, id)?;
        crate::resolve::resolve(&mut program, &self.ctx.globals)?;
        self.ctx.functions.add(&program.functions);
        Ok(program)
    }

    /// Call a function value on the main thread (a child process's work).
    pub fn call(
        &mut self,
        callee: &Value,
        args: Vec<Value>,
        span: Span,
    ) -> Result<Value, RuntimeError> {
        let interp = &mut self.interp;
        let result = entered(&self.ctx, &self.main, || {
            interp.call_value(callee, args, span)
        });
        match result {
            Ok(done) => done.map_err(|e| *e),
            Err(ConcError::Runtime(e)) => Err(e),
            Err(ConcError::Syntax(e)) => {
                Err(RuntimeError::new(diagnostics::kind::ERROR, e.message))
            }
        }
    }

    /// An uncaught error ends the program: stop every child process now
    /// (SIGTERM, then SIGKILL) and wait for them, so none is left behind.
    pub fn abandon_children(&self) {
        let children = crate::runtime::process::children(&self.ctx);
        if children.is_empty() {
            return;
        }
        let _ = entered(&self.ctx, &self.main, || {
            crate::runtime::process::stop_children(
                &self.ctx,
                &self.main,
                &children,
                libc::SIGTERM,
                std::time::Duration::from_secs(2),
            )
        });
    }

    /// The end of a script: drain every pool (as Python's executors do at
    /// exit), wait for every non-daemon thread and process, then stop the
    /// daemon processes (daemon threads are simply abandoned).
    pub fn finish(&mut self) -> Result<(), ConcError> {
        entered(&self.ctx, &self.main, || self.wait_for_the_rest())??;
        // A deadlock among other threads may have ended the run while this
        // one was finishing: that is the run's outcome.
        if let Some(deadlock) = self.ctx.registry.ended() {
            return Err(ConcError::Runtime(deadlock));
        }
        self.abandon_children();
        Ok(())
    }

    /// Drain the pools, then wait for every non-daemon thread and process.
    fn wait_for_the_rest(&self) -> Result<(), ConcError> {
        let end = Span::default();
        let pools: Vec<_> = self
            .ctx
            .pools
            .lock()
            .drain(..)
            .filter_map(|p| p.upgrade())
            .collect();
        for pool in pools {
            pool.shutdown(&self.ctx, &self.main, None)
                .map_err(ConcError::Runtime)?;
        }
        threads::join_non_daemon(&self.ctx, &self.main, end).map_err(ConcError::Runtime)
    }

    /// Under control: the token that replays this run so far.
    pub fn replay_token(&self) -> Option<Token> {
        let record = self.ctx.engine().scheduler()?.record();
        let first = self.ctx.sources.all().first().map(|s| s.text.to_string());
        let hash = script_hash(&first.unwrap_or_default());
        let lines = self.script_lines(&record.spans);
        Some(Token::new(&record.strategy, hash, &record.choices).with_lines(lines))
    }

    /// The line of each span in the script (0 for none, or another source).
    fn script_lines(&self, spans: &[Option<crate::span::Span>]) -> Vec<u32> {
        let all = self.ctx.sources.all();
        let Some(script) = all.first() else {
            return vec![0; spans.len()];
        };
        let lines = crate::span::LineIndex::new(&script.text);
        spans
            .iter()
            .map(|at| match at {
                Some(at)
                    if self
                        .ctx
                        .sources
                        .get(at.src)
                        .is_some_and(|s| Arc::ptr_eq(&s, script)) =>
                {
                    lines.line(at.start) as u32
                }
                _ => 0,
            })
            .collect()
    }

    /// Under a replay: why it stopped matching the script, if it did, and
    /// (when the token has the recorded lines) where the two runs parted.
    pub fn replay_divergence(&self) -> Option<String> {
        let record = self.ctx.engine().scheduler()?.record();
        let why = record.divergence.clone()?;
        let mut said = match record.divergence_at {
            Some(at) => format!(
                "{} (the run was at {} in the script as it is now)",
                why,
                self.ctx.sources.location(at)
            ),
            None => why,
        };
        if let Some(recorded) = &record.recorded_lines {
            let now = self.script_lines(&record.spans);
            let parted = recorded
                .iter()
                .zip(&now)
                .position(|(r, n)| *r != 0 && *n != 0 && r != n);
            if let Some(k) = parted {
                let name = self.ctx.sources.all().first().map(|s| s.name.clone());
                said.push_str(&format!(
                    "; the runs parted at decision {}: the recorded run was at line {} of {} as it was then, this run at line {}",
                    k + 1,
                    recorded[k],
                    name.unwrap_or_default(),
                    now[k]
                ));
            }
        }
        Some(said)
    }

    pub fn render(&self, err: &ConcError) -> String {
        diagnostics::render(err, &self.ctx.sources, self.color)
    }

    /// Ask the main thread's running entry to stop (Ctrl-C in the REPL).
    pub fn interrupt_handle(&self) -> Interrupter {
        Interrupter {
            ctx: self.ctx.clone(),
            main: self.main.clone(),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(s) = self
            .ctx
            .engine()
            .scheduler()
            .filter(|_| self.ctx.engine().owns_scheduler())
        {
            s.shut_down();
        }
    }
}

/// Sendable handle that interrupts the session's main thread.
#[derive(Clone)]
pub struct Interrupter {
    ctx: Arc<Context>,
    main: ThreadRef,
}

impl Interrupter {
    pub fn interrupt(&self) {
        let err = RuntimeError::new(diagnostics::kind::INTERRUPTED, "interrupted (Ctrl-C)");
        self.ctx.registry.interrupt(&self.main, err);
    }
}

/// Run `body` as the session's main thread (under control, as the first
/// fiber, with the other threads taking their turns).
fn entered<R>(ctx: &Context, main: &ThreadRef, body: impl FnOnce() -> R) -> Result<R, ConcError> {
    ctx.engine()
        .enter(main, threads::THREAD_STACK, body)
        .map_err(|e| {
            ConcError::Runtime(RuntimeError::new(
                diagnostics::kind::ERROR,
                format!("cannot run the controlled session: {}", e),
            ))
        })
}

/// "1 thread is" / "2 threads are".
fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {}", one)
    } else {
        format!("{} {}", n, many)
    }
}
