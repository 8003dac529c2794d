//! The wire format between a conc process and the processes it spawned:
//! length-prefixed postcard frames, one `Msg` each. Values travel as
//! `Packet`s, built and read by `codec.rs`.

use crate::diagnostics::{Note, RuntimeError};
use crate::span::{SourceId, Span};
use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};

/// Frames bigger than this are refused, by the sender as well (a start
/// message carries every source and global, so it may be big, but a frame
/// past this is a corrupt length or a runaway value).
pub const MAX_FRAME: usize = 1 << 30;

/// A frame's body is read in steps of at most this much, so memory grows
/// with the bytes that really arrive, never with what a length claims.
const READ_STEP: usize = 64 * 1024;

#[derive(Serialize, Deserialize, Debug, Clone, Copy)]
pub struct WireSpan {
    pub src: u32,
    pub start: u32,
    pub end: u32,
}

impl From<Span> for WireSpan {
    fn from(s: Span) -> Self {
        WireSpan {
            src: s.src.0,
            start: s.start,
            end: s.end,
        }
    }
}

impl From<WireSpan> for Span {
    fn from(s: WireSpan) -> Self {
        Span {
            src: SourceId(s.src),
            start: s.start,
            end: s.end,
        }
    }
}

/// A runtime error with its spans: both processes hold the same sources,
/// so a child's error is reported at the child's own location.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct WireError {
    pub kind: String,
    pub message: String,
    pub span: Option<WireSpan>,
    pub help: Option<String>,
    pub notes: Vec<(String, Option<WireSpan>)>,
}

impl From<&RuntimeError> for WireError {
    fn from(e: &RuntimeError) -> Self {
        WireError {
            kind: e.kind.to_string(),
            message: e.message.clone(),
            span: e.span.map(Into::into),
            help: e.help.clone(),
            notes: e
                .notes
                .iter()
                .map(|n| (n.message.clone(), n.span.map(Into::into)))
                .collect(),
        }
    }
}

impl From<WireError> for RuntimeError {
    fn from(w: WireError) -> Self {
        let mut e = RuntimeError::new(&w.kind, w.message);
        e.span = w.span.map(Into::into);
        e.help = w.help;
        e.notes = w
            .notes
            .into_iter()
            .map(|(message, span)| Note {
                message,
                span: span.map(Into::into),
            })
            .collect();
        e
    }
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub enum WireValue {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A list, map or captured variable: an index into the packet's table,
    /// so aliasing and cycles survive the copy.
    Shared(u32),
    /// A function is its declaration (source and offset, the same in every
    /// process) plus copies of the variables it captured (table indices).
    Func {
        src: u32,
        start: u32,
        upvals: Vec<u32>,
    },
    Builtin(String),
    Error(Box<WireError>),
    /// A shared object the sender owns (or reaches through its own proxy):
    /// the receiver gets a proxy that sends operations back to the sender.
    Object {
        id: u64,
        kind: String,
        label: String,
        /// A queue or pipe end without a capacity: a put never blocks, so
        /// it is sent without waiting for a reply.
        unbounded: bool,
        /// A plain lock's block in the sender's arena (`arena.rs`): the
        /// receiver, its child, may take and free it there directly.
        words: Option<u32>,
    },
    /// One of the receiver's own objects, coming back through a proxy.
    Yours(u64),
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub enum SharedValue {
    List(Vec<WireValue>),
    Map(Vec<(WireValue, WireValue)>),
    Cell(WireValue),
}

/// Values copied together, sharing one table (one `let` of two globals that
/// name the same list still name one list in the child).
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct Packet {
    pub table: Vec<SharedValue>,
    pub values: Vec<WireValue>,
}

/// What a new child process needs to run: the program, the copied state and
/// the call to make.
#[derive(Serialize, Deserialize, Debug)]
pub struct Start {
    pub sources: Vec<(String, String)>,
    pub argv: Vec<String>,
    pub name: String,
    pub daemon: bool,
    pub color: bool,
    /// Seeds the child's `random()`: drawn from the parent's generator, so
    /// a seeded run seeds its children too.
    pub seed: u64,
    /// The run is traced: the child notes its steps and sends them back.
    pub record: bool,
    /// Names of the first `globals.len()` values of `payload`; then the
    /// callee, then its arguments.
    pub globals: Vec<String>,
    /// Globals that could not be copied, with why (a thread handle ...).
    pub left_out: Vec<(String, String)>,
    pub payload: Packet,
    /// The `spawn` in the parent: the call chain of an error starts there.
    pub call_span: WireSpan,
}

impl Start {
    /// Whether this can be a start message a conc parent sent: the child
    /// trusts nothing it was not given in a consistent form.
    pub fn check(&self) -> Result<(), String> {
        if self.sources.is_empty() {
            return Err("no program".into());
        }
        if let Some((name, _)) = self
            .sources
            .iter()
            .find(|(_, text)| text.len() > u32::MAX as usize)
        {
            return Err(format!("source {name} is too large"));
        }
        let span = self.call_span;
        match self.sources.get(span.src as usize) {
            Some((_, text)) if span.start <= span.end && span.end as usize <= text.len() => {}
            _ => return Err("the call's location is not in the program".into()),
        }
        // The globals' values, then the callee, then its arguments.
        if self.payload.values.len() <= self.globals.len() {
            return Err("no function to call".into());
        }
        if let Some(bad) = self.globals.iter().find(|g| !is_name(g)) {
            return Err(format!("{bad:?} is not a global's name"));
        }
        Ok(())
    }
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The steps of a traced process and of its own children, on the machine's
/// monotonic clock (nanoseconds).
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct WireTrace {
    pub processes: Vec<WireProcess>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct WireProcess {
    pub pid: u32,
    pub name: String,
    pub threads: Vec<WireTrack>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct WireTrack {
    pub thread: u64,
    pub name: String,
    pub marks: Vec<WireMark>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct WireMark {
    pub op: Option<crate::runtime::engine::Op>,
    pub object: u64,
    pub span: Option<WireSpan>,
    pub at: u64,
    pub parked: Option<(u64, u64)>,
    pub spawned_by: Option<u64>,
    pub ended: bool,
    pub home: Option<u32>,
}

/// An operation on a shared object, performed by the process that owns it.
/// Timeouts are seconds left when the operation was sent.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub enum Op {
    Get {
        timeout: Option<f64>,
    },
    /// A get that may also lease up to `max - 1` more items already
    /// waiting, for the caller's process to use next (unbounded FIFO
    /// queues and pipe ends only; see `lease.rs`). The reply is the lease's
    /// ticket (an int, or nil for no lease) and the items, or nothing at
    /// the timeout.
    Take {
        timeout: Option<f64>,
        max: u32,
    },
    Put {
        item: Packet,
        timeout: Option<f64>,
    },
    Acquire {
        timeout: Option<f64>,
    },
    Release,
    Wait {
        timeout: Option<f64>,
    },
    /// Arms are (object, value to put or none to get), all the receiver's.
    Select {
        arms: Vec<(u64, Option<Packet>)>,
        timeout: Option<f64>,
    },
    /// A method or field that never blocks (`size()`, `set()`, `str()` ...).
    Method {
        name: String,
        args: Packet,
    },
}

/// A blocking operation as the owner records it: which thread of which
/// process waits, for what, and where in the (shared) source.
#[derive(Serialize, Deserialize, Debug)]
pub struct Request {
    /// 0: no reply wanted (a put that cannot block).
    pub req: u64,
    pub tid: u64,
    pub thread: String,
    pub target: u64,
    pub op: Op,
    pub what: String,
    pub span: Option<WireSpan>,
}

#[derive(Serialize, Deserialize, Debug)]
pub enum Msg {
    Start(Box<Start>),
    Request(Box<Request>),
    Reply {
        req: u64,
        result: Result<Packet, WireError>,
    },
    /// The requesting thread gave up (interrupted): stop waiting for it.
    Cancel {
        req: u64,
    },
    /// A whole line of output (`print`), or a report for standard error.
    Print(String),
    Report(String),
    /// The child found a deadlock among its own threads.
    Deadlock(WireError),
    /// The parent's threads are all blocked: is the child quiet too?
    Probe,
    /// The answer, once true: every thread of the child waits and only the
    /// parent can wake one; with the number of replies it had received, and
    /// its own (local) waits.
    Quiet {
        replies_seen: u64,
        waits: Vec<String>,
    },
    /// The child's function finished (after the child's own threads).
    Done(Result<Packet, WireError>),
    /// A traced child's part of the trace, sent just before `Done`.
    Trace(Box<WireTrace>),
    /// Output that need not end a line (`write`): the parent holds it with
    /// its own partial line, so what reaches stdout is still whole lines.
    Text(String),
    /// A remote link's heartbeat: the other side is still there.
    Beat,
    /// Deliver this signal to the remote child (`terminate`, `kill`).
    Signal(i32),
}

pub fn write_msg(w: &mut impl Write, msg: &Msg) -> io::Result<()> {
    let body = postcard::to_stdvec(msg).map_err(io::Error::other)?;
    if body.len() > MAX_FRAME {
        return Err(io::Error::other(format!(
            "a message of {} bytes is more than one frame can carry ({} bytes)",
            body.len(),
            MAX_FRAME
        )));
    }
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(&body);
    w.write_all(&frame)?;
    w.flush()
}

/// The next message, or `None` when the other side closed the connection.
pub fn read_msg(r: &mut impl Read) -> io::Result<Option<Msg>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::other(format!("a frame of {} bytes", len)));
    }
    let mut body = Vec::with_capacity(len.min(READ_STEP));
    r.take(len as u64).read_to_end(&mut body)?;
    if body.len() < len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("a frame of {} bytes ended after {}", len, body.len()),
        ));
    }
    postcard::from_bytes(&body)
        .map(Some)
        .map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_through_frames() {
        let msg = Msg::Request(Box::new(Request {
            req: 7,
            tid: 3,
            thread: "main".into(),
            target: 42,
            op: Op::Put {
                item: Packet {
                    table: vec![SharedValue::List(vec![WireValue::Int(-5)])],
                    values: vec![WireValue::Shared(0), WireValue::Str("é".into())],
                },
                timeout: Some(0.5),
            },
            what: "room in queue#42".into(),
            span: Some(WireSpan {
                src: 0,
                start: 10,
                end: 14,
            }),
        }));
        let mut buf = Vec::new();
        write_msg(&mut buf, &msg).unwrap();
        write_msg(&mut buf, &Msg::Print("hi".into())).unwrap();
        let mut r = &buf[..];
        let back = read_msg(&mut r).unwrap().unwrap();
        assert_eq!(format!("{:?}", back), format!("{:?}", msg));
        assert!(matches!(read_msg(&mut r).unwrap(), Some(Msg::Print(s)) if s == "hi"));
        assert!(read_msg(&mut r).unwrap().is_none());
    }

    #[test]
    fn a_corrupt_length_is_an_error_not_an_allocation() {
        let buf = [0xffu8, 0xff, 0xff, 0xff, 0];
        assert!(read_msg(&mut &buf[..]).is_err());
    }

    #[test]
    fn a_length_is_not_trusted_before_its_bytes_arrive() {
        // Claims 1 GiB, brings 3 bytes: an error, and no 1 GiB buffer.
        let buf = [0x00u8, 0x00, 0x00, 0x40, 1, 2, 3];
        let err = read_msg(&mut &buf[..]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn only_a_consistent_start_is_accepted() {
        let good = Start {
            sources: vec![("a.conc".into(), "fn f() { }\n".into())],
            argv: vec![],
            name: "p".into(),
            daemon: false,
            color: false,
            seed: 1,
            record: false,
            globals: vec!["x".into()],
            left_out: vec![],
            payload: Packet {
                table: vec![],
                values: vec![WireValue::Int(1), WireValue::Nil],
            },
            call_span: WireSpan {
                src: 0,
                start: 0,
                end: 4,
            },
        };
        assert!(good.check().is_ok());
        let mut no_callee = Start {
            globals: vec!["x".into(), "y".into()],
            ..good
        };
        assert!(no_callee.check().is_err());
        no_callee.globals = vec!["1x".into()];
        assert!(no_callee.check().is_err());
        no_callee.globals = vec![];
        no_callee.call_span.end = 99;
        assert!(no_callee.check().is_err());
    }

    #[test]
    fn errors_keep_their_spans_and_notes() {
        let e = RuntimeError::new("ValueError", "bad")
            .at(Span::new(SourceId(2), 3, 9))
            .with_help("fix it")
            .note("called from here", Some(Span::new(SourceId(2), 20, 25)));
        let back = RuntimeError::from(WireError::from(&e));
        assert_eq!(back, e);
    }
}
