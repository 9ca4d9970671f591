//! What every scenario shares: send instants, latency statistics, error tallies, edits.

use super::*;

/// Send instants of one writer's transactions, indexed by transaction
/// counter (1-based), in nanoseconds since a shared base instant (+1, so 0
/// means "not sent").
#[derive(Debug)]
pub(crate) struct SendTimes {
    pub(crate) base: Instant,
    pub(crate) ns: Vec<AtomicU64>,
}

impl SendTimes {
    pub(crate) fn new(base: Instant, n: u64) -> SendTimes {
        SendTimes {
            base,
            ns: (0..=n).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub(crate) fn record(&self, counter: u64, at: Instant) {
        if let Some(slot) = self.ns.get(counter as usize) {
            let ns = at.duration_since(self.base).as_nanos() as u64 + 1;
            slot.store(ns, Ordering::Release);
        }
    }

    /// Microseconds from the send of `counter` to `at`.
    pub(crate) fn latency_us(&self, counter: u64, at: Instant) -> Option<u64> {
        let ns = self.ns.get(counter as usize)?.load(Ordering::Acquire);
        if ns == 0 {
            return None;
        }
        let sent = self.base + Duration::from_nanos(ns - 1);
        Some(at.saturating_duration_since(sent).as_micros() as u64)
    }
}

#[derive(Debug, Default, Clone)]
pub(crate) struct Stats {
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
    pub(crate) n: usize,
}

pub(crate) fn stats(mut us: Vec<u64>) -> Stats {
    if us.is_empty() {
        return Stats::default();
    }
    us.sort_unstable();
    let q = |p: f64| {
        let i = ((p * us.len() as f64).ceil() as usize).clamp(1, us.len()) - 1;
        us[i] as f64 / 1e3
    };
    Stats {
        p50_ms: q(0.50),
        p99_ms: q(0.99),
        max_ms: *us.last().unwrap_or(&0) as f64 / 1e3,
        n: us.len(),
    }
}

pub(crate) fn fmt_dur(d: Option<Duration>) -> String {
    match d {
        Some(d) => format!("{:.3} s", d.as_secs_f64()),
        None => "n/a".into(),
    }
}

pub(crate) fn cpu_delta(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    Some(b?.saturating_sub(a?))
}

/// Error frames seen, by code name.
pub(crate) type Errors = HashMap<String, u64>;

pub(crate) fn note_error(errors: &mut Errors, code: ErrorCode) {
    *errors
        .entry(format!("{}({})", code.name(), code.code()))
        .or_default() += 1;
}

pub(crate) fn merge_errors(into: &mut Errors, from: Errors) {
    for (k, v) in from {
        *into.entry(k).or_default() += v;
    }
}

pub(crate) fn fmt_errors(e: &Errors) -> String {
    if e.is_empty() {
        return "none".into();
    }
    let mut v: Vec<_> = e.iter().map(|(k, n)| format!("{k}×{n}")).collect();
    v.sort();
    v.join(" ")
}

/// A document edit whose text encodes `n` (exactly `chars` characters).
pub(crate) fn marker(n: u64, chars: usize) -> String {
    let s = format!("{n:0width$}|", width = chars.saturating_sub(1));
    s[s.len() - chars..].to_string()
}

pub(crate) fn insert_at(doc: &mut Doc, pos: Option<u64>, text: &str) -> Res<Vec<u8>> {
    Ok(doc.transact(|tx| {
        let mut t = tx.text("body")?;
        let len = t.len();
        let at = match pos {
            Some(p) => (p % (len as u64 + 1)) as usize,
            None => len,
        };
        t.insert(at, text)
    })?)
}

/// Where a client task reports once it is subscribed (or failed to).
pub(crate) type Ready = mpsc::UnboundedSender<Result<(), String>>;
