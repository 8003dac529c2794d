//! Schedules as users write them (`random:42`, `pct:3:7`, `replay:TOKEN`)
//! and the replay token a run under control leaves behind.
//!
//! A token is `STRATEGY.HASH.CHOICES`: the strategy with its seed (colons
//! written as dashes), eight hex digits of the script's hash, and the
//! decisions in URL-safe base64. Each decision between `n` threads takes
//! `ceil(log2 n)` bits (one bit between two threads), so 200 decisions fit
//! in about 40-70 characters. Replaying follows the decisions, not the
//! seed, so it reproduces the run even where the strategy would now decide
//! otherwise, and notices when the script no longer matches them.
//!
//! A fourth part, `.LINES`, holds the script line at which each decision
//! was made (each as the change from the one before, in an Elias gamma
//! code: 1 to 5 bits for most), so that a replay of an edited script can
//! say where the two runs part: the line in the recorded run and the line
//! now. It is left out when the token would grow past `MAX_TOKEN`
//! characters (a long run keeps a short token, without the lines).

use super::strategy::{AdversarialTime, Pct, RandomWalk, Replay, Strategy, ADVERSARIAL};

/// A schedule chosen on the command line or in a fixture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Schedule {
    Random {
        seed: u64,
    },
    Pct {
        depth: u32,
        seed: u64,
    },
    Replay(Token),
    /// `…:adv`: the same, with adversarial time (a timeout may fire while
    /// threads can still run).
    Adversarial(Box<Schedule>),
}

/// How many steps PCT spreads its change points over when nothing better
/// is known (exploration measures it first).
pub const PCT_HORIZON: u64 = 256;

impl Schedule {
    /// `random`, `random:SEED`, `pct:DEPTH`, `pct:DEPTH:SEED`,
    /// `replay:TOKEN`; a missing seed is drawn by `fresh_seed`.
    pub fn parse(text: &str, fresh_seed: impl FnOnce() -> u64) -> Result<Schedule, String> {
        if let Some(inner) = text.strip_suffix(ADVERSARIAL) {
            return match Schedule::parse(inner, fresh_seed)? {
                Schedule::Replay(_) => Err(format!(
                    "`{}`: a replay token already says how its time ran",
                    text
                )),
                s @ Schedule::Adversarial(_) => Ok(s),
                s => Ok(Schedule::Adversarial(Box::new(s))),
            };
        }
        let mut parts = text.split(':');
        let name = parts.next().unwrap_or_default();
        let rest: Vec<&str> = parts.collect();
        let number = |s: &str, what: &str| {
            s.parse::<u64>()
                .map_err(|_| format!("{} must be a whole number, not `{}`", what, s))
        };
        match (name, rest.as_slice()) {
            ("random", []) => Ok(Schedule::Random { seed: fresh_seed() }),
            ("random", [seed]) => Ok(Schedule::Random {
                seed: number(seed, "the seed")?,
            }),
            ("pct", [depth]) | ("pct", [depth, _]) => {
                let depth = number(depth, "the PCT depth")?;
                if !(1..=64).contains(&depth) {
                    return Err(format!("the PCT depth must be 1 to 64, not {}", depth));
                }
                let seed = match rest.get(1) {
                    Some(s) => number(s, "the seed")?,
                    None => fresh_seed(),
                };
                Ok(Schedule::Pct {
                    depth: depth as u32,
                    seed,
                })
            }
            ("replay", [token]) => Token::parse(token).map(Schedule::Replay),
            _ => Err(format!(
                "unknown schedule `{}`: use random, random:SEED, pct:DEPTH, pct:DEPTH:SEED or replay:TOKEN (`:adv` after any but replay: adversarial time)",
                text
            )),
        }
    }

    /// The seed of the script's random numbers.
    pub fn seed(&self) -> u64 {
        match self {
            Schedule::Adversarial(s) => s.seed(),
            Schedule::Random { seed } | Schedule::Pct { seed, .. } => *seed,
            Schedule::Replay(t) => match Schedule::parse(&t.strategy, || 0) {
                Ok(Schedule::Replay(_)) | Err(_) => 0,
                Ok(s) => s.seed(),
            },
        }
    }

    /// As written on the command line, with the seed drawn.
    pub fn text(&self) -> String {
        match self {
            Schedule::Random { seed } => format!("random:{seed}"),
            Schedule::Pct { depth, seed } => format!("pct:{depth}:{seed}"),
            Schedule::Replay(t) => format!("replay:{t}"),
            Schedule::Adversarial(s) => format!("{}{ADVERSARIAL}", s.text()),
        }
    }

    pub fn strategy(&self) -> Box<dyn Strategy> {
        match self {
            Schedule::Adversarial(s) => Box::new(AdversarialTime::new(s.strategy())),
            Schedule::Random { seed } => Box::new(RandomWalk::new(*seed)),
            Schedule::Pct { depth, seed } => Box::new(Pct::new(*depth, *seed, PCT_HORIZON)),
            Schedule::Replay(t) => Box::new(Replay::new(
                t.strategy.clone(),
                t.decisions(),
                t.lines.clone(),
            )),
        }
    }
}

/// What replays a run: its strategy, its script's hash, its decisions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// As written on the command line ("random:42").
    pub strategy: String,
    pub script_hash: u32,
    /// The decisions: (index chosen, number of threads to choose from).
    bits: Vec<u8>,
    count: usize,
    /// The line of each decision in the recorded run (0: not in the script).
    pub lines: Option<Vec<u32>>,
}

/// A token with its lines stays this short; longer runs leave the lines
/// out (they cost about half a character a decision).
pub const MAX_TOKEN: usize = 120;

impl Token {
    pub fn new(strategy: &str, script_hash: u32, choices: &[(u32, u32)]) -> Token {
        let mut w = BitWriter::default();
        w.varint(choices.len() as u64);
        for &(i, n) in choices {
            w.bits(u64::from(i), width(n));
        }
        Token {
            strategy: strategy.to_string(),
            script_hash,
            bits: w.finish(),
            count: choices.len(),
            lines: None,
        }
    }

    /// The token with the line of each decision (one per decision), if
    /// it stays within `MAX_TOKEN` characters.
    pub fn with_lines(mut self, lines: Vec<u32>) -> Token {
        if lines.len() == self.count
            && self.to_string().len() + 1 + encode_lines(&lines).len() <= MAX_TOKEN
        {
            self.lines = Some(lines);
        }
        self
    }

    pub fn parse(text: &str) -> Result<Token, String> {
        let bad = || {
            format!(
                "`{}` is not a replay token (its parts: STRATEGY.HASH.CHOICES, then .LINES or nothing)",
                text
            )
        };
        let mut parts = text.split('.');
        let (Some(strategy), Some(hash), Some(choices), lines, None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(bad());
        };
        let strategy = strategy.replace('-', ":");
        let script_hash = u32::from_str_radix(hash, 16).map_err(|_| bad())?;
        let bits = base64_decode(choices).ok_or_else(bad)?;
        let mut r = BitReader::new(&bits);
        let count = r.varint().ok_or_else(bad)? as usize;
        let lines = match lines {
            Some(text) => Some(decode_lines(text, count).ok_or_else(bad)?),
            None => None,
        };
        Ok(Token {
            strategy,
            script_hash,
            bits,
            count,
            lines,
        })
    }

    /// The decisions, read as the replay makes them (each one's width
    /// depends on how many threads could run then).
    pub fn decisions(&self) -> Decisions {
        let mut reader = BitReader::new(&self.bits);
        let _ = reader.varint();
        Decisions {
            bits: self.bits.clone(),
            pos: reader.pos,
            left: self.count,
        }
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}.{:08x}.{}",
            self.strategy.replace(':', "-"),
            self.script_hash,
            base64_encode(&self.bits)
        )?;
        match &self.lines {
            Some(lines) => write!(f, ".{}", encode_lines(lines)),
            None => Ok(()),
        }
    }
}

/// Each line as the change from the one before (zigzag, plus one), in an
/// Elias gamma code.
fn encode_lines(lines: &[u32]) -> String {
    let mut w = BitWriter::default();
    let mut last = 0i64;
    for &line in lines {
        let d = i64::from(line) - last;
        last = i64::from(line);
        let zigzag = ((d << 1) ^ (d >> 63)) as u64;
        w.gamma(zigzag + 1);
    }
    base64_encode(&w.finish())
}

fn decode_lines(text: &str, count: usize) -> Option<Vec<u32>> {
    let bytes = base64_decode(text)?;
    let mut r = BitReader::new(&bytes);
    let mut last = 0i64;
    let mut lines = Vec::with_capacity(count.min(MAX_TOKEN * 3));
    for _ in 0..count {
        let zigzag = r.gamma()? - 1;
        let d = (zigzag >> 1) as i64 ^ -((zigzag & 1) as i64);
        last += d;
        lines.push(u32::try_from(last).ok()?);
    }
    Some(lines)
}

/// The recorded decisions, read one at a time.
pub struct Decisions {
    bits: Vec<u8>,
    pos: usize,
    left: usize,
}

impl Decisions {
    /// The next decision among `n` threads; `None` when none is left.
    pub fn next(&mut self, n: u32) -> Option<u32> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let mut r = BitReader {
            bytes: &self.bits,
            pos: self.pos,
        };
        let v = r.bits(width(n))?;
        self.pos = r.pos;
        Some(v as u32)
    }

    pub fn left(&self) -> usize {
        self.left
    }
}

/// The hash a token carries: FNV-1a over the script's text.
pub fn script_hash(text: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in text.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Bits for a choice among `n`.
fn width(n: u32) -> u32 {
    32 - n.saturating_sub(1).leading_zeros()
}

#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    used: u32,
}

impl BitWriter {
    fn bits(&mut self, v: u64, width: u32) {
        for i in (0..width).rev() {
            if self.used.is_multiple_of(8) {
                self.bytes.push(0);
            }
            let bit = ((v >> i) & 1) as u8;
            if let Some(last) = self.bytes.last_mut() {
                *last |= bit << (7 - self.used % 8);
            }
            self.used += 1;
        }
    }

    fn varint(&mut self, mut v: u64) {
        loop {
            let more = v >= 0x80;
            self.bits((v & 0x7f) | if more { 0x80 } else { 0 }, 8);
            v >>= 7;
            if !more {
                break;
            }
        }
    }

    /// `v` (at least 1): as many zeros as it has bits after the first,
    /// then its bits.
    fn gamma(&mut self, v: u64) {
        let n = 64 - v.leading_zeros();
        self.bits(0, n - 1);
        self.bits(v, n);
    }

    fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

struct BitReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        BitReader { bytes, pos: 0 }
    }

    fn bits(&mut self, width: u32) -> Option<u64> {
        let mut v = 0u64;
        for _ in 0..width {
            let byte = *self.bytes.get(self.pos / 8)?;
            v = (v << 1) | u64::from((byte >> (7 - self.pos % 8)) & 1);
            self.pos += 1;
        }
        Some(v)
    }

    fn gamma(&mut self) -> Option<u64> {
        let mut zeros = 0;
        while self.bits(1)? == 0 {
            zeros += 1;
            if zeros > 63 {
                return None;
            }
        }
        let rest = self.bits(zeros)?;
        Some((1 << zeros) | rest)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.bits(8)?;
            v |= (b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 2);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut n) = (0u32, 0u32);
    for c in text.bytes() {
        let v = B64.iter().position(|b| *b == c)? as u32;
        acc = (acc << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((acc >> n) as u8);
            acc &= (1 << n) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_parse() {
        let seven = || 7;
        assert_eq!(
            Schedule::parse("random", seven),
            Ok(Schedule::Random { seed: 7 })
        );
        assert_eq!(
            Schedule::parse("random:42", seven),
            Ok(Schedule::Random { seed: 42 })
        );
        assert_eq!(
            Schedule::parse("pct:3", seven),
            Ok(Schedule::Pct { depth: 3, seed: 7 })
        );
        assert_eq!(
            Schedule::parse("pct:3:9", seven),
            Ok(Schedule::Pct { depth: 3, seed: 9 })
        );
        for bad in [
            "",
            "rand",
            "random:x",
            "pct",
            "pct:0",
            "pct:2:1:1",
            "replay:zz",
        ] {
            assert!(Schedule::parse(bad, seven).is_err(), "{bad}");
        }
    }

    #[test]
    fn adversarial_time_rides_on_any_schedule_but_a_replay() {
        let s = Schedule::parse("pct:3:adv", || 9).expect("parses");
        assert_eq!(s.text(), "pct:3:9:adv");
        assert_eq!(s.seed(), 9);
        assert_eq!(s.strategy().describe(), "pct:3:9:adv");
        assert!(s.strategy().adversarial_time());
        assert!(!Schedule::parse("random:4", || 0)
            .expect("parses")
            .strategy()
            .adversarial_time());
        assert!(Schedule::parse("replay:x:adv", || 0).is_err());
        // A token of an adversarial run replays adversarially.
        let token = Token::new("random:4:adv", script_hash(""), &[(1, 2)]);
        let again = Schedule::parse(&format!("replay:{token}"), || 0).expect("parses");
        assert!(again.strategy().adversarial_time());
        assert_eq!(again.seed(), 4);
    }

    #[test]
    fn a_token_round_trips_and_stays_short() {
        let choices: Vec<(u32, u32)> = (0..200u32).map(|i| (i % 3 % 2, 2 + i % 2)).collect();
        let token = Token::new("pct:3:12345", script_hash("let x = 1"), &choices);
        let text = token.to_string();
        assert!(text.len() <= 120, "{} characters: {}", text.len(), text);
        let back = Token::parse(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, token);
        assert_eq!(back.strategy, "pct:3:12345");
        let mut d = back.decisions();
        for &(i, n) in &choices {
            assert_eq!(d.next(n), Some(i));
        }
        assert_eq!(d.next(2), None);
    }

    #[test]
    fn lines_ride_along_compactly() {
        let choices: Vec<(u32, u32)> = (0..100u32).map(|i| (i % 2, 2)).collect();
        // Two threads taking turns in a loop body, and a jump back.
        let lines: Vec<u32> = (0..100u32)
            .map(|i| if i == 50 { 1 } else { 4 + i % 2 })
            .collect();
        let token = Token::new("random:1", 7, &choices).with_lines(lines.clone());
        let text = token.to_string();
        let back = Token::parse(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.lines, Some(lines));
        // 3 bits a decision here: about half a character.
        assert!(text.len() <= 90, "{} characters: {}", text.len(), text);
        // A long run keeps its token short, without the lines.
        let many: Vec<(u32, u32)> = (0..400u32).map(|i| (i % 2, 2)).collect();
        let long = Token::new("random:1", 7, &many).with_lines(vec![3; 400]);
        assert_eq!(long.lines, None);
        // A token without lines still reads (and one with too few fails).
        let short = Token::new("random:1", 7, &choices);
        assert_eq!(Token::parse(&short.to_string()).map(|t| t.lines), Ok(None));
        assert!(Token::parse(&format!("{}.A", short)).is_err());
    }

    #[test]
    fn base64_round_trips() {
        for n in 0..10 {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(base64_decode(&base64_encode(&bytes)), Some(bytes));
        }
    }
}
