//! What each component costs the host: instances run, the CPU their instances' code and host
//! calls took, SQLite statements (how many of them wrote, and the write transactions, with how
//! long they waited for and held their database's write gate), and Redis commands; and the Redis
//! trigger's messages and the time it was busy with them. Benchmarks read these through
//! `up --stats-file`: on SIGUSR1 the host writes them there as JSON, so a benchmark can take the
//! difference across a phase of load.
//!
//! CPU is the calling thread's CPU time (user and system) across each poll of an instance's
//! future, plus the time SQLite statements take on the blocking pool. A write transaction is
//! counted when it ends, so one left open when its instance ends (rolled back) is not. What is not counted here
//! (accepting connections, parsing HTTP, pub/sub, the runtime's scheduling) is the host's own.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use anyhow::{Context, Result};

/// The counters of one component id, shared by every build of it that `watch` swaps in.
#[derive(Default)]
pub struct ComponentStats {
    instances: AtomicU64,
    cpu_ns: AtomicU64,
    sqlite_statements: AtomicU64,
    sqlite_writes: AtomicU64,
    write_transactions: AtomicU64,
    /// How long its writers waited for a database's write gate, and held it.
    gate_wait_ns: AtomicU64,
    gate_hold_ns: AtomicU64,
    redis_commands: AtomicU64,
}

/// The Redis trigger's messages, and the time it spent handling them (which it does one at a
/// time per server, so this is how busy that queue was).
#[derive(Default)]
struct TriggerStats {
    messages: AtomicU64,
    busy_ns: AtomicU64,
}

static TRIGGER: TriggerStats = TriggerStats {
    messages: AtomicU64::new(0),
    busy_ns: AtomicU64::new(0),
};

/// Counts one message of the Redis trigger, handled in `busy`.
pub fn count_message(busy: std::time::Duration) {
    TRIGGER.messages.fetch_add(1, Ordering::Relaxed);
    TRIGGER.busy_ns.fetch_add(nanos(busy), Ordering::Relaxed);
}

fn nanos(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

static COMPONENTS: LazyLock<Mutex<BTreeMap<String, Arc<ComponentStats>>>> =
    LazyLock::new(Mutex::default);

impl ComponentStats {
    /// The counters of component `id`, made on first use.
    pub fn of(id: &str) -> Arc<Self> {
        let mut components = COMPONENTS
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        components.entry(id.to_owned()).or_default().clone()
    }

    pub fn count_instance(&self) {
        self.instances.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_sqlite(&self, wrote: bool) {
        self.sqlite_statements.fetch_add(1, Ordering::Relaxed);
        if wrote {
            self.sqlite_writes.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A write to a database ended (its transaction, or the one statement, committed or rolled
    /// back) after holding the database's one writer, its write gate, for `held`.
    pub fn count_write_transaction(&self, held: std::time::Duration) {
        self.write_transactions.fetch_add(1, Ordering::Relaxed);
        self.gate_hold_ns.fetch_add(nanos(held), Ordering::Relaxed);
    }

    /// A writer waited `waited` for a database's write gate.
    pub fn count_gate_wait(&self, waited: std::time::Duration) {
        self.gate_wait_ns
            .fetch_add(nanos(waited), Ordering::Relaxed);
    }

    pub fn count_redis(&self) {
        self.redis_commands.fetch_add(1, Ordering::Relaxed);
    }

    /// Runs `work` on this thread, counting its CPU time.
    pub fn timed<T>(&self, work: impl FnOnce() -> T) -> T {
        let started = thread_cpu_ns();
        let result = work();
        self.add_cpu(started);
        result
    }

    /// Runs `future`, counting the CPU time of every poll of it.
    pub async fn metered<F: Future>(&self, future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        std::future::poll_fn(|context| self.timed(|| future.as_mut().poll(context))).await
    }

    fn add_cpu(&self, started_ns: u64) {
        let spent = thread_cpu_ns().saturating_sub(started_ns);
        self.cpu_ns.fetch_add(spent, Ordering::Relaxed);
    }

    fn to_json(&self) -> serde_json::Value {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        serde_json::json!({
            "instances": read(&self.instances),
            "cpuNs": read(&self.cpu_ns),
            "sqliteStatements": read(&self.sqlite_statements),
            "sqliteWrites": read(&self.sqlite_writes),
            "writeTransactions": read(&self.write_transactions),
            "gateWaitNs": read(&self.gate_wait_ns),
            "gateHoldNs": read(&self.gate_hold_ns),
            "redisCommands": read(&self.redis_commands),
        })
    }
}

fn thread_cpu_ns() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    let seconds = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(now.tv_nsec).unwrap_or(0);
    seconds * 1_000_000_000 + nanos
}

/// Every component's counters so far, by component id.
pub fn snapshot() -> serde_json::Value {
    let components = COMPONENTS
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    let by_id = components
        .iter()
        .map(|(id, stats)| (id.clone(), stats.to_json()))
        .collect::<serde_json::Map<_, _>>();
    serde_json::json!({
        "components": by_id,
        "redisTrigger": {
            "messages": TRIGGER.messages.load(Ordering::Relaxed),
            "busyNs": TRIGGER.busy_ns.load(Ordering::Relaxed),
        },
    })
}

/// Writes [`snapshot`] to `path` whole (through a temporary file beside it), so a reader never
/// sees half of it.
pub fn write_snapshot(path: &Path) -> Result<()> {
    let text = serde_json::to_string_pretty(&snapshot())?;
    let partial = PathBuf::from(format!("{}.partial", path.display()));
    std::fs::write(&partial, text).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("writing {}", path.display()))
}

/// Writes the counters to `path` on every SIGUSR1, until aborted.
pub async fn write_on_signal(path: PathBuf) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut signals) = signal(SignalKind::user_defined1()) else {
        eprintln!("ERROR cannot listen for SIGUSR1; no stats will be written");
        return;
    };
    while signals.recv().await.is_some() {
        if let Err(error) = write_snapshot(&path) {
            eprintln!("ERROR {error:#}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_shared_by_id_and_written_as_json() {
        let stats = ComponentStats::of("stats-test");
        stats.count_instance();
        stats.count_sqlite(true);
        stats.count_sqlite(false);
        stats.count_redis();
        stats.count_gate_wait(std::time::Duration::from_micros(300));
        stats.count_write_transaction(std::time::Duration::from_micros(700));
        // Enough work that the thread's CPU clock moves.
        let sum = stats.timed(|| (0..2_000_000u64).fold(0u64, |a, b| a.wrapping_add(b * b)));
        assert_ne!(sum, 0);
        ComponentStats::of("stats-test").count_instance();
        count_message(std::time::Duration::from_millis(2));

        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("stats.json");
        write_snapshot(&path).expect("the snapshot is written");
        let text = std::fs::read(&path).expect("the snapshot is there");
        let written: serde_json::Value = serde_json::from_slice(&text).expect("JSON");
        let mine = &written["components"]["stats-test"];
        assert_eq!(mine["instances"], 2);
        assert_eq!(mine["sqliteStatements"], 2);
        assert_eq!(mine["sqliteWrites"], 1);
        assert_eq!(mine["redisCommands"], 1);
        assert_eq!(mine["writeTransactions"], 1);
        assert_eq!(mine["gateWaitNs"], 300_000);
        assert_eq!(mine["gateHoldNs"], 700_000);
        assert!(mine["cpuNs"].as_u64().is_some_and(|ns| ns > 0));
        let trigger = &written["redisTrigger"];
        assert!(trigger["messages"].as_u64().is_some_and(|n| n >= 1));
        assert!(trigger["busyNs"].as_u64().is_some_and(|ns| ns >= 2_000_000));
    }

    #[tokio::test]
    async fn a_metered_future_counts_the_cpu_of_its_polls() {
        let stats = ComponentStats::of("metered-test");
        let value = stats
            .metered(async {
                tokio::task::yield_now().await;
                (0..2_000_000u64).fold(0u64, |a, b| a.wrapping_add(b ^ 7))
            })
            .await;
        assert_ne!(value, 0);
        assert!(stats.cpu_ns.load(Ordering::Relaxed) > 0);
    }
}
