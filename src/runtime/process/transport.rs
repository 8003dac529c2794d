//! How a link's messages travel: over a socket between two OS processes,
//! over the two pipes a remote child has from `ssh`, or, under the
//! controlled engine, through a channel in memory between a
//! process and the simulated child it runs in the same OS process.
//!
//! Both carry the same frames (`wire::write_msg`), so a simulated child
//! decodes exactly what a real one would. A channel's reader is a conc
//! thread of the controlled run: it parks through the scheduler until a
//! frame comes, and every frame it takes is a scheduling point of its own,
//! so the strategy decides when each message arrives.

use super::wire::{self, Msg};
use crate::runtime::engine::controlled::Scheduler;
use crate::runtime::engine::{Op, Step};
use crate::runtime::footprint;
use crate::runtime::threads::ThreadRef;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The sending half of a link.
pub enum Transport {
    Socket(Mutex<UnixStream>),
    /// A remote child's standard output, which `ssh` carries to its parent;
    /// `None` once closed.
    Pipe(Mutex<Option<File>>),
    Memory(Arc<Channel>),
}

impl Transport {
    pub fn socket(stream: UnixStream) -> Transport {
        Transport::Socket(Mutex::new(stream))
    }

    pub fn send(&self, msg: &Msg) -> io::Result<()> {
        match self {
            Transport::Socket(w) => wire::write_msg(&mut *w.lock(), msg),
            Transport::Pipe(w) => match &mut *w.lock() {
                Some(file) => wire::write_msg(file, msg),
                None => Err(io::Error::new(io::ErrorKind::BrokenPipe, "closed")),
            },
            Transport::Memory(c) => {
                let mut frame = Vec::new();
                wire::write_msg(&mut frame, msg)?;
                c.send(frame)
            }
        }
    }

    /// This side will send nothing more (the other side reads what is
    /// queued, then sees the end).
    pub fn close(&self) {
        match self {
            Transport::Socket(w) => {
                let _ = w.lock().shutdown(std::net::Shutdown::Write);
            }
            Transport::Pipe(w) => drop(w.lock().take()),
            Transport::Memory(c) => c.close(false),
        }
    }
}

/// The receiving half of a link.
pub enum Inbox {
    /// A socket, or a remote child's standard input.
    Stream(BufReader<Box<dyn Read + Send>>),
    /// Read by the conc thread `me` of a controlled run.
    Memory { from: Arc<Channel>, me: ThreadRef },
}

impl Inbox {
    pub fn socket(stream: UnixStream) -> Inbox {
        Inbox::stream(Box::new(stream))
    }

    pub fn stream(from: Box<dyn Read + Send>) -> Inbox {
        Inbox::Stream(BufReader::with_capacity(64 * 1024, from))
    }

    /// The next message; `None` once the other side has closed.
    pub fn receive(&mut self) -> io::Result<Option<Msg>> {
        match self {
            Inbox::Stream(r) => wire::read_msg(r),
            Inbox::Memory { from, me } => match from.receive(me) {
                Some(frame) => wire::read_msg(&mut frame.as_slice()),
                None => Ok(None),
            },
        }
    }

    /// The thread that reads, for an inbox in memory.
    pub fn reader(&self) -> Option<&ThreadRef> {
        match self {
            Inbox::Stream(_) => None,
            Inbox::Memory { me, .. } => Some(me),
        }
    }
}

/// Frames on their way in one direction, in memory.
pub struct Channel {
    state: Mutex<ChannelState>,
    /// What exploration sees a send or a receive touch.
    key: u64,
    sched: Arc<Scheduler>,
}

#[derive(Default)]
struct ChannelState {
    frames: VecDeque<Vec<u8>>,
    closed: bool,
    /// The reader, parked until a frame comes.
    parked: Option<ThreadRef>,
}

impl Channel {
    pub fn new(sched: Arc<Scheduler>) -> Arc<Channel> {
        Arc::new(Channel {
            state: Mutex::new(ChannelState::default()),
            key: footprint::new_key(),
            sched,
        })
    }

    fn send(&self, frame: Vec<u8>) -> io::Result<()> {
        let mut st = self.state.lock();
        if st.closed {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "it exited"));
        }
        footprint::touch(self.key, true);
        st.frames.push_back(frame);
        if let Some(reader) = st.parked.take() {
            self.sched.unpark(&reader);
        }
        Ok(())
    }

    /// The next frame, parking until one comes; `None` once the channel is
    /// closed and empty. Taking a frame is a scheduling point of `me`; an
    /// empty channel is not: the reader simply cannot run until a frame
    /// (or the end) comes, so exploration never tries "looked too early".
    fn receive(&self, me: &ThreadRef) -> Option<Vec<u8>> {
        loop {
            let mut st = self.state.lock();
            if st.frames.is_empty() && !st.closed {
                st.parked = Some(me.clone());
                drop(st);
                self.sched.park(me, None);
                continue;
            }
            drop(st);
            self.sched.point(me, Step::new(Op::Get, self.key, None));
            footprint::touch(self.key, true);
            // Only this reader takes frames, so what it saw is still there
            // (unless its process was ended meanwhile: then it sees the end).
            return self.state.lock().frames.pop_front();
        }
    }

    /// No more frames will come. `discard`: what is queued is dropped too
    /// (its reader's process is gone and reads nothing more).
    pub fn close(&self, discard: bool) {
        footprint::touch(self.key, true);
        let mut st = self.state.lock();
        st.closed = true;
        if discard {
            st.frames.clear();
        }
        if let Some(reader) = st.parked.take() {
            self.sched.unpark(&reader);
        }
    }
}

/// When anything last arrived on a connection: how a remote link tells a
/// quiet peer from a lost one.
pub struct LastHeard {
    at_ms: AtomicU64,
    since: Instant,
}

impl LastHeard {
    pub fn new() -> Arc<LastHeard> {
        Arc::new(LastHeard {
            at_ms: AtomicU64::new(0),
            since: Instant::now(),
        })
    }

    fn note(&self) {
        let now = self.since.elapsed().as_millis() as u64;
        self.at_ms.store(now, Ordering::Release);
    }

    /// How long nothing has arrived.
    pub fn silence(&self) -> Duration {
        let now = self.since.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.at_ms.load(Ordering::Acquire)))
    }
}

/// A reader that notes when something arrives.
pub struct Heard<R> {
    pub from: R,
    pub last: Arc<LastHeard>,
}

impl<R: Read> Read for Heard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.from.read(buf)?;
        if n > 0 {
            self.last.note();
        }
        Ok(n)
    }
}
