//! The system `ssh` client, as conc uses it to start children on other
//! machines (as git, rsync and Ansible do): the user's `~/.ssh/config`,
//! agent, keys, jump hosts and known hosts all apply, and conc adds only
//! what keeps a run safe and bounded. No prompt can appear (`BatchMode`), an
//! unknown host key is an error, nothing is forwarded, and a host that stops
//! answering is given up within seconds.
//!
//! The first spawn to a host logs in once, as a connection master; later
//! spawns open a session over it (`ControlPath`), so only the first pays
//! for the login. Every `ssh` this process starts is started by one keeper
//! thread that lives as long as the process, with "end when the parent
//! does" set: even a conc killed with SIGKILL leaves no `ssh` behind.

use crate::diagnostics::{kind, RuntimeError};
use crate::runtime::value::{Key, Value};
use parking_lot::{Condvar, Mutex};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::{Duration, Instant};

/// How long a login (or a session over an existing one) may take.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(20);
/// How long conc there may take to greet once logged in (it takes ms).
pub const GREETING_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a process runs, from the value after `on`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    /// What `ssh` is given: `user@host`, `host`, or a `Host` alias.
    pub dest: String,
    pub user: Option<String>,
    pub port: Option<u16>,
    /// The conc binary there; by default the path this one has here.
    pub exe: Option<String>,
}

const SHAPE: &str = "a host is a string like \"alice@node1\" or a map like {\"host\": \"node1\", \"user\": \"alice\", \"port\": 22, \"exe\": \"/opt/conc/bin/conc\"}";

fn bad(message: String) -> RuntimeError {
    RuntimeError::new(kind::VALUE, message).with_help(SHAPE)
}

impl Host {
    pub fn from_value(v: &Value) -> Result<Host, RuntimeError> {
        match v {
            Value::Str(s) => Host::named(s),
            Value::Map(m) => {
                let entries = m.lock().clone();
                let mut host = None;
                let (mut user, mut port, mut exe) = (None, None, None);
                for (key, value) in entries.iter() {
                    let name = match key {
                        Key::Str(s) => s.to_string(),
                        other => return Err(bad(format!("a host map has no key {:?}", other))),
                    };
                    let text = || match value {
                        Value::Str(s) if s.is_empty() => {
                            Err(bad(format!("the host's \"{}\" is empty", name)))
                        }
                        Value::Str(s) => Ok(s.to_string()),
                        other => Err(bad(format!(
                            "the host's \"{}\" must be a non-empty string, not {}",
                            name,
                            other.type_name()
                        ))),
                    };
                    match name.as_str() {
                        "host" => host = Some(text()?),
                        "user" => user = Some(checked("user", text()?)?),
                        "exe" => exe = Some(text()?),
                        "port" => match value {
                            Value::Int(p) if (1..=65535).contains(p) => port = Some(*p as u16),
                            other => {
                                return Err(bad(format!(
                                    "the host's \"port\" must be 1 to 65535, not {}",
                                    other.to_display()
                                )))
                            }
                        },
                        other => return Err(bad(format!("a host map has no key \"{}\"", other))),
                    }
                }
                let Some(dest) = host else {
                    return Err(bad("the host map has no \"host\"".into()));
                };
                Ok(Host {
                    user,
                    port,
                    exe,
                    ..Host::named(&dest)?
                })
            }
            other => Err(RuntimeError::new(
                kind::TYPE,
                format!("`on` needs a host, not {}", other.type_name()),
            )
            .with_help(SHAPE)),
        }
    }

    fn named(dest: &str) -> Result<Host, RuntimeError> {
        Ok(Host {
            dest: checked("host", dest.to_string())?,
            user: None,
            port: None,
            exe: None,
        })
    }

    /// `CONC_SPAWN_ON`: every `spawn process` without `on` goes there (how
    /// the suite reruns its fixtures with children on another host).
    pub fn from_env() -> Option<Result<Host, RuntimeError>> {
        let dest = std::env::var("CONC_SPAWN_ON")
            .ok()
            .filter(|d| !d.is_empty())?;
        Some(Host::named(&dest))
    }

    /// The host as reports name it.
    pub fn label(&self) -> String {
        match &self.user {
            Some(u) => format!("{}@{}", u, self.dest),
            None => self.dest.clone(),
        }
    }

    /// One connection master per distinct login.
    fn key(&self) -> String {
        format!("{}|{:?}|{:?}", self.dest, self.user, self.port)
    }
}

/// A host or user name must reach ssh as exactly one plain argument.
fn checked(what: &str, text: String) -> Result<String, RuntimeError> {
    if text.is_empty() {
        return Err(bad(format!("the {} is empty", what)));
    }
    if text.starts_with('-') {
        return Err(bad(format!(
            "the {} {:?} starts with `-`: ssh would read it as an option",
            what, text
        )));
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad(format!(
            "the {} {:?} has a space or control character",
            what, text
        )));
    }
    Ok(text)
}

/// `ssh` with the options conc always sets, then the user's from
/// `CONC_SSH` (the program and options to use, as `GIT_SSH_COMMAND`). ssh
/// keeps the first value of an option, so conc's can't be turned off.
fn ssh(host: &Host) -> Command {
    let custom = std::env::var("CONC_SSH").unwrap_or_default();
    let mut words = custom.split_whitespace();
    let mut cmd = Command::new(words.next().unwrap_or("ssh"));
    for option in [
        "BatchMode=yes",
        "StrictHostKeyChecking=yes",
        "ForwardAgent=no",
        "ForwardX11=no",
        "ClearAllForwardings=yes",
        "ConnectTimeout=5",
        "ServerAliveInterval=1",
        "ServerAliveCountMax=4",
        "LogLevel=ERROR",
    ] {
        cmd.arg("-o").arg(option);
    }
    cmd.args(words);
    if let Some(user) = &host.user {
        cmd.arg("-l").arg(user);
    }
    if let Some(port) = host.port {
        cmd.arg("-p").arg(port.to_string());
    }
    cmd
}

type Launch = Box<dyn FnOnce() + Send>;

/// End an `ssh` we started and wait for it (no zombie).
pub fn end(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Start `cmd` from the keeper thread, with SIGKILL set to come when that
/// thread (so: this process) ends.
pub fn start(mut cmd: Command) -> std::io::Result<Child> {
    static KEEPER: OnceLock<mpsc::Sender<Launch>> = OnceLock::new();
    let keeper = KEEPER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Launch>();
        let _ = std::thread::Builder::new()
            .name("ssh-keeper".into())
            .spawn(move || {
                for launch in rx {
                    launch();
                }
            });
        tx
    });
    // SAFETY: prctl is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let (tx, rx) = mpsc::channel();
    let launch: Launch = Box::new(move || {
        let _ = tx.send(cmd.spawn());
    });
    let no_keeper = || std::io::Error::other("cannot start the thread that starts ssh");
    keeper.send(launch).map_err(|_| no_keeper())?;
    rx.recv().map_err(|_| no_keeper())?
}

/// What an `ssh` wrote on standard error, read as it comes: kept (the last
/// part) to explain a failure, or passed on to ours once the remote child
/// runs; the exit status the remote supervisor reports there is taken out.
pub struct Stderr {
    state: Mutex<StderrState>,
    ended: Condvar,
}

#[derive(Default)]
struct StderrState {
    kept: String,
    pass_on: bool,
    exit: Option<i32>,
    eof: bool,
}

/// The line the remote supervisor writes once its child has ended.
pub const EXIT_MARK: &str = "conc-remote-exit ";
const KEEP: usize = 4096;

impl Stderr {
    pub fn watch(from: ChildStderr) -> Arc<Stderr> {
        let me = Arc::new(Stderr {
            state: Mutex::new(StderrState::default()),
            ended: Condvar::new(),
        });
        let reader = me.clone();
        let started = std::thread::Builder::new()
            .name("ssh-stderr".into())
            .spawn(move || reader.read(from));
        if started.is_err() {
            me.state.lock().eof = true;
        }
        me
    }

    fn read(&self, from: ChildStderr) {
        let mut lines = BufReader::new(from);
        let mut line = Vec::new();
        loop {
            line.clear();
            match lines.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => self.line(&String::from_utf8_lossy(&line)),
            }
        }
        self.state.lock().eof = true;
        self.ended.notify_all();
    }

    fn line(&self, text: &str) {
        let mut st = self.state.lock();
        let text = match text.find(EXIT_MARK) {
            Some(at) => {
                st.exit = text[at + EXIT_MARK.len()..].trim().parse().ok();
                &text[..at]
            }
            None => text,
        };
        if text.is_empty() {
            return;
        }
        if st.pass_on {
            let _ = std::io::stderr().write_all(text.as_bytes());
        } else {
            st.kept.push_str(text);
            if st.kept.len() > KEEP {
                let cut = st.kept.len() - KEEP;
                let cut = (cut..st.kept.len())
                    .find(|&i| st.kept.is_char_boundary(i))
                    .unwrap_or(0);
                st.kept.drain(..cut);
            }
        }
    }

    /// From now on what comes is passed on to our standard error.
    pub fn pass_on(&self) {
        let mut st = self.state.lock();
        st.pass_on = true;
        let kept = std::mem::take(&mut st.kept);
        let _ = std::io::stderr().write_all(kept.as_bytes());
    }

    /// What was kept, once ssh has closed its standard error (or `wait`
    /// has passed), trimmed.
    pub fn text(&self, wait: Duration) -> String {
        let deadline = Instant::now() + wait;
        let mut st = self.state.lock();
        while !st.eof && !self.ended.wait_until(&mut st, deadline).timed_out() {}
        st.kept.trim().to_string()
    }

    /// The remote child's exit code, as its supervisor reported it.
    pub fn exit(&self, wait: Duration) -> Option<i32> {
        let deadline = Instant::now() + wait;
        let mut st = self.state.lock();
        while st.exit.is_none() && !st.eof && !self.ended.wait_until(&mut st, deadline).timed_out()
        {
        }
        st.exit
    }
}

/// A logged-in connection to one host that sessions share.
struct Master {
    socket: PathBuf,
    child: Child,
    stderr: Arc<Stderr>,
}

impl Drop for Master {
    fn drop(&mut self) {
        end(&mut self.child);
    }
}

/// Each login's master, once started; locked while it logs in.
type MasterSlot = Arc<Mutex<Option<Master>>>;

fn masters() -> &'static Mutex<HashMap<String, MasterSlot>> {
    static MASTERS: OnceLock<Mutex<HashMap<String, MasterSlot>>> = OnceLock::new();
    MASTERS.get_or_init(Default::default)
}

/// The folder for this process's control sockets: private to this user.
fn socket_dir() -> Result<PathBuf, RuntimeError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    let dir = std::env::temp_dir().join(format!("conc-ssh-{}", uid));
    let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    let meta = std::fs::symlink_metadata(&dir)
        .map_err(|e| process_error(format!("cannot make {}: {}", dir.display(), e)))?;
    if !meta.is_dir() || meta.uid() != uid || meta.permissions().mode() & 0o077 != 0 {
        return Err(process_error(format!(
            "{} is not a private folder of this user: conc keeps ssh's connection sockets there",
            dir.display()
        )));
    }
    Ok(dir)
}

fn process_error(message: String) -> RuntimeError {
    RuntimeError::new(kind::PROCESS, message)
}

/// The control socket of a master logged in to `host`, logging in first if
/// there is none (or the last one has ended).
fn master(host: &Host) -> Result<PathBuf, RuntimeError> {
    let slot = masters().lock().entry(host.key()).or_default().clone();
    let mut slot = slot.lock();
    if let Some(m) = slot.as_mut() {
        if matches!(m.child.try_wait(), Ok(None)) && m.socket.exists() {
            return Ok(m.socket.clone());
        }
        *slot = None;
    }
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let socket = socket_dir()?.join(format!("{}-{}", std::process::id(), n));
    let _ = std::fs::remove_file(&socket);
    let mut cmd = ssh(host);
    cmd.args(["-M", "-N", "-o", "ControlPersist=no", "-S"])
        .arg(&socket)
        .arg("--")
        .arg(&host.dest)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = start(cmd).map_err(|e| cannot_run_ssh(host, e))?;
    let stderr = match child.stderr.take() {
        Some(s) => Stderr::watch(s),
        None => return Err(process_error("ssh gave no standard error to read".into())),
    };
    let mut m = Master {
        socket,
        child,
        stderr,
    };
    let deadline = Instant::now() + LOGIN_TIMEOUT;
    loop {
        if m.socket.exists() {
            let socket = m.socket.clone();
            *slot = Some(m);
            return Ok(socket);
        }
        if let Ok(Some(status)) = m.child.try_wait() {
            let said = m.stderr.text(Duration::from_secs(1));
            return Err(login_failed(host, &said, status.code()));
        }
        if Instant::now() >= deadline {
            return Err(process_error(format!(
                "ssh did not log in to {} within {} s",
                host.label(),
                LOGIN_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn cannot_run_ssh(host: &Host, e: std::io::Error) -> RuntimeError {
    process_error(format!(
        "cannot run ssh to reach {}: {}",
        host.label(),
        e
    ))
    .with_help("conc starts processes on other machines with the system `ssh` client (or the one `CONC_SSH` names)")
}

/// Why a login failed, in plain words, from what ssh said.
fn login_failed(host: &Host, said: &str, status: Option<i32>) -> RuntimeError {
    let said_line = said.lines().last().unwrap_or("").trim();
    let what = if said.is_empty() {
        format!(
            "ssh could not log in to {} (exit status {})",
            host.label(),
            status.map_or("unknown".into(), |s| s.to_string())
        )
    } else {
        format!("ssh could not log in to {}: {}", host.label(), said_line)
    };
    let help = if said.contains("Host key verification failed") || said.contains("host key") {
        "conc never skips the host-key check: add the host's key to known_hosts first (for example by logging in once with `ssh` by hand)"
    } else if said.contains("Permission denied") {
        "conc runs ssh with BatchMode=yes, so no password can be asked for: use a key (or an agent) this host accepts"
    } else {
        "conc runs the system `ssh` with your ~/.ssh/config; `ssh HOST true` by hand shows the same problem"
    };
    process_error(what).with_help(help)
}

/// A session to `host` running `conc --conc-remote` there, with `stdio` as
/// its standard input and output.
pub fn session(
    host: &Host,
    stdio: std::os::fd::OwnedFd,
) -> Result<(Child, Arc<Stderr>), RuntimeError> {
    let socket = master(host)?;
    let exe = match &host.exe {
        Some(exe) => exe.clone(),
        None => std::env::current_exe()
            .map_err(|e| process_error(format!("cannot find the conc binary: {}", e)))?
            .to_string_lossy()
            .into_owned(),
    };
    let input = stdio
        .try_clone()
        .map_err(|e| process_error(format!("cannot connect to ssh: {}", e)))?;
    let mut cmd = ssh(host);
    cmd.args(["-T", "-o", "ControlMaster=no", "-S"])
        .arg(&socket)
        .arg("--")
        .arg(&host.dest)
        // Our pid: the child's `getppid()`.
        .arg(format!(
            "{} {} {}",
            shell_quote(&exe),
            REMOTE_FLAG,
            std::process::id()
        ))
        .stdin(Stdio::from(input))
        .stdout(Stdio::from(stdio))
        .stderr(Stdio::piped());
    let mut child = start(cmd).map_err(|e| cannot_run_ssh(host, e))?;
    match child.stderr.take() {
        Some(s) => Ok((child, Stderr::watch(s))),
        None => {
            end(&mut child);
            Err(process_error("ssh gave no standard error to read".into()))
        }
    }
}

/// The hidden first argument that starts `conc` as a remote child.
pub const REMOTE_FLAG: &str = "--conc-remote";

/// The first line a remote child writes: the protocol it speaks, its conc
/// version, its pid and the time on its machine's monotonic clock (so a
/// trace can put its steps on the parent's clock).
pub fn greeting(pid: u32, monotonic: u64) -> String {
    format!(
        "{}{} {} {} {}\n",
        GREETING,
        PROTOCOL,
        env!("CARGO_PKG_VERSION"),
        pid,
        monotonic
    )
}

/// What a greeting says.
#[derive(Debug, PartialEq, Eq)]
pub struct Greeting {
    pub pid: u32,
    /// The remote machine's monotonic clock when it greeted.
    pub monotonic: u64,
}

const GREETING: &str = "conc-remote/";
/// Changed whenever the link's messages change.
pub const PROTOCOL: u32 = 2;

/// Read the greeting from a remote child on `from` (a socket with a read
/// timeout set), or why it isn't a conc remote child (empty: nothing came).
pub fn read_greeting(host: &Host, from: &mut impl Read) -> Result<Greeting, String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    let mismatch = |line: &[u8]| {
        let n = line.len().min(GREETING.len());
        line[..n] != GREETING.as_bytes()[..n]
    };
    loop {
        match from.read(&mut byte) {
            Ok(0) => {
                return Err(if line.is_empty() {
                    String::new()
                } else {
                    banner(host, &line)
                })
            }
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => line.push(byte[0]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(if line.is_empty() {
                    format!(
                        "conc on {} did not answer within {} s",
                        host.label(),
                        GREETING_TIMEOUT.as_secs()
                    )
                } else {
                    banner(host, &line)
                })
            }
            Err(e) => return Err(format!("cannot read from ssh: {}", e)),
        }
        if mismatch(&line) || line.len() > 200 {
            // Read a little more of what it printed, to show it.
            let mut more = [0u8; 200];
            if let Ok(n) = from.read(&mut more) {
                line.extend_from_slice(&more[..n]);
            }
            return Err(banner(host, &line));
        }
    }
    let text = String::from_utf8_lossy(&line);
    let rest = text.strip_prefix(GREETING).unwrap_or("");
    let mut words = rest.split(' ');
    let (protocol, version) = (words.next(), words.next());
    let ours = env!("CARGO_PKG_VERSION");
    if protocol != Some(&PROTOCOL.to_string()) || version != Some(ours) {
        return Err(format!(
            "{} runs conc {} (protocol {}), this is conc {} (protocol {}): install the same version there, or point the host's \"exe\" at one",
            host.label(),
            version.unwrap_or("?"),
            protocol.unwrap_or("?"),
            ours,
            PROTOCOL
        ));
    }
    let pid = words.next().and_then(|p| p.parse().ok());
    let monotonic = words.next().and_then(|m| m.parse().ok());
    match (pid, monotonic) {
        (Some(pid), Some(monotonic)) => Ok(Greeting { pid, monotonic }),
        _ => Err(format!("conc on {} sent a damaged greeting", host.label())),
    }
}

fn banner(host: &Host, printed: &[u8]) -> String {
    let text = String::from_utf8_lossy(printed);
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    format!(
        "the shell on {} printed {:?} before conc started: a remote child needs a quiet non-interactive login (print banners only in interactive shells)",
        host.label(),
        first.trim()
    )
}

/// `text` as one word for a POSIX shell.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_checked() {
        assert!(Host::named("alice@node1").is_ok());
        assert!(Host::named("-oProxyCommand=x").is_err());
        assert!(Host::named("a b").is_err());
        assert!(Host::named("").is_err());
    }

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(shell_quote("/opt/it's/conc"), "'/opt/it'\\''s/conc'");
    }

    #[test]
    fn greetings_are_read_and_checked() {
        let host = Host::named("node1").unwrap_or_else(|e| panic!("{}", e.message));
        let good = greeting(42, 7);
        let read = read_greeting(&host, &mut good.as_bytes());
        assert_eq!(
            read,
            Ok(Greeting {
                pid: 42,
                monotonic: 7
            })
        );
        let banner = read_greeting(&host, &mut "Welcome to node1!\n".as_bytes());
        assert!(banner.is_err_and(|e| e.contains("Welcome to node1!")));
        let old = format!("{}{} 0.0.1 7\n", GREETING, PROTOCOL);
        assert!(read_greeting(&host, &mut old.as_bytes()).is_err_and(|e| e.contains("0.0.1")));
        assert_eq!(read_greeting(&host, &mut "".as_bytes()), Err(String::new()));
    }
}
