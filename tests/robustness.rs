//! What must hold whatever a script does (the adversarial issue): a broken
//! stdout ends the run quietly, running out of memory is a report, a panic
//! is an internal error with its own status, child mode trusts no input,
//! long lists parse in linear time, children never outlive the parent.
//! Scripts that fit in a fixture are in tests/fixtures/robustness/.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

fn conc() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_conc"));
    cmd.env("NO_COLOR", "1").stdin(Stdio::null());
    cmd
}

/// The status, or a failed test if the process is still running after `limit`.
fn wait_within(child: &mut Child, limit: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut err, &mut text);
    }
    text
}

/// Limit the address space of the process about to start.
fn with_memory_limit(cmd: &mut Command, bytes: u64) {
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the
    // child between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[test]
fn a_broken_stdout_ends_the_run_like_a_filter() {
    for script in [
        "while true { print(1) }",
        "for i in range(3) { spawn { while true { print(i) } } }",
    ] {
        let mut child = conc()
            .args(["-c", script])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("conc starts");
        let mut first = String::new();
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        out.read_line(&mut first).expect("a line");
        drop(out);
        let status = wait_within(&mut child, Duration::from_secs(10));
        assert_eq!(status.signal(), Some(libc::SIGPIPE), "{script}: {status:?}");
        assert_eq!(stderr_of(&mut child), "", "{script}: quietly");
    }
}

#[test]
fn out_of_memory_is_a_memory_error_not_an_abort() {
    let mut cmd = conc();
    cmd.args(["-c", "let s = \"a\"\nwhile true { s = s + s }"])
        .stderr(Stdio::piped());
    with_memory_limit(&mut cmd, 3 << 30);
    let mut child = cmd.spawn().expect("conc starts");
    let status = wait_within(&mut child, Duration::from_secs(60));
    let err = stderr_of(&mut child);
    assert_eq!(status.code(), Some(1), "{status:?} {err}");
    assert!(err.contains("MemoryError: out of memory"), "{err}");
}

/// A NUL byte in a thread name is (today) a panic inside conc: it must be
/// reported as a bug in conc with status 70, never as a script error (1)
/// or Rust's 101. Once the runtime rejects the name, it is a ValueError.
#[test]
fn a_panic_is_an_internal_error_with_its_own_status() {
    let out = conc()
        .args(["-c", "spawn { } named \"\\u{0}\""])
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("conc runs");
    let err = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(70) => assert!(
            err.contains("internal error (a bug in conc, not in your script)")
                && err.contains("please report it"),
            "{err}"
        ),
        Some(1) => assert!(err.contains("ValueError"), "{err}"),
        _ => panic!("{:?}: {err}", out.status),
    }
}

#[test]
fn child_mode_takes_only_a_start_message_on_a_socket() {
    // A file, or nothing, on standard input.
    let out = conc().arg("--conc-child").output().expect("conc runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("only for processes conc starts"));
    // A frame that claims 1 GiB and brings 3 bytes, under a 512 MiB limit:
    // refused without trying to allocate the gigabyte.
    let (mut ours, theirs) = std::os::unix::net::UnixStream::pair().expect("a socket pair");
    let mut cmd = conc();
    cmd.arg("--conc-child")
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
        .stderr(Stdio::piped());
    with_memory_limit(&mut cmd, 512 << 20);
    let mut child = cmd.spawn().expect("conc starts");
    ours.write_all(&[0, 0, 0, 0x40, 1, 2, 3])
        .expect("the frame");
    drop(ours);
    let status = wait_within(&mut child, Duration::from_secs(10));
    assert_eq!(
        status.code(),
        Some(2),
        "{status:?} {}",
        stderr_of(&mut child)
    );
}

/// Each shape, at a size where quadratic work would take tens of seconds.
#[test]
fn long_lists_and_chains_parse_in_linear_time() {
    let n = 100_000;
    let names: Vec<String> = (0..n).map(|i| format!("a{i}")).collect();
    let ones = vec!["1"; n].join(", ");
    let shapes = [
        format!("fn f({}) {{ }}", names.join(", ")),
        format!("let xs = [{ones}]\nprint(len(xs))"),
        format!("print(len([{ones}]))"),
        format!(
            "let m = {{{}}}",
            (0..n)
                .map(|i| format!("{i}: {i}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (0..n)
            .map(|i| format!("let x{i} = {i}"))
            .collect::<Vec<_>>()
            .join("\n"),
        format!(
            "let x = 1\nif x == 0 {{ }}{}",
            " else if x == 2 { }".repeat(n / 4)
        ),
        format!("let [{}] = range({n})", names.join(", ")),
    ];
    for (i, source) in shapes.iter().enumerate() {
        let start = Instant::now();
        // On standard input: too long for an argument.
        let mut child = conc()
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("conc runs");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(source.as_bytes()).expect("the script");
        drop(stdin);
        let out = child.wait_with_output().expect("conc ends");
        assert!(
            out.status.success(),
            "shape {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let took = start.elapsed();
        assert!(took < Duration::from_secs(10), "shape {i} took {took:?}");
    }
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.split_whitespace().nth(2).is_none_or(|s| s != "Z"))
}

/// The parent ends (a deadlock among its threads, SIGTERM): its child
/// process, asleep, must not live on.
#[test]
fn children_do_not_outlive_the_parent() {
    let child_then = |tail: &str| {
        format!("fn nap() {{ sleep(30) }}\nlet p = spawn process nap()\nprint(p.pid)\n{tail}")
    };
    let deadlock = child_then(
        "let a = lock(); let b = lock()\n\
         fn one() { lock a { sleep(0.1); lock b { } } }\n\
         fn two() { lock b { sleep(0.1); lock a { } } }\n\
         let t1 = spawn one(); let t2 = spawn two()\njoin t1",
    );
    for (script, signal) in [
        (deadlock, None),
        (child_then("sleep(30)"), Some(libc::SIGTERM)),
    ] {
        let mut parent = conc()
            .args(["-c", &script])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("conc starts");
        let mut line = String::new();
        BufReader::new(parent.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the pid");
        let pid: i32 = line.trim().parse().expect("a pid");
        if let Some(signal) = signal {
            // SAFETY: signals our own child process.
            unsafe { libc::kill(parent.id() as i32, signal) };
        }
        let status = wait_within(&mut parent, Duration::from_secs(20));
        let start = Instant::now();
        while alive(pid) && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let still = alive(pid);
        if still {
            // SAFETY: the leftover is our grandchild.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        assert!(!still, "child {pid} outlived its parent ({status:?})");
    }
}
