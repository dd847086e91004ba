//! How many of a component's HTTP instances run at once, bounded by their linear memory.
//!
//! Spin starts an instance for every request as it arrives. An instance's linear memory is
//! resident while it lives, and a few components need much of it: a sign-up or sign-in hashes
//! its password with Argon2 in 19 MiB. Fifty sign-ups at once then held close to 900 MB, although
//! two cores hash only two at a time. So each component has a memory budget: a request is let
//! in while the instances already running, each counted at the largest memory an instance of
//! that component has reached, fit in it with the new one; otherwise it waits for one of them
//! to finish. A component of small instances (most need one or two MiB) is in practice never
//! held back; one that needs more than the whole budget still runs, one at a time. Until a
//! component's first instance has ended, the others wait for it up to 100 ms.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

const MIB: usize = 1 << 20;

/// How long requests wait for a component's first instance to end before they are let in.
const FIRST_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// The default budget per component: one Argon2 instance (about 21 MiB) per core, and at least
/// two of them.
pub fn default_budget_mib() -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    u32::try_from(cores.max(2) * 24).unwrap_or(u32::MAX)
}

/// One component's budget, in MiB, and what its instances were seen to need.
pub struct Admission {
    budget_mib: u32,
    permits: Arc<Semaphore>,
    /// The largest linear memory an instance of the component has reached, in whole MiB; 0
    /// until one has ended, and until then an instance runs alone for up to `FIRST_WAIT`.
    largest_mib: AtomicU32,
    /// The largest memory any instance has grown to so far, in whole MiB, the first included.
    seen_mib: AtomicU32,
    /// Whether the first instance has been let in.
    scouting: AtomicBool,
    /// Wakes the requests that waited for the first instance to end.
    learned: Notify,
}

impl Admission {
    pub fn new(budget_mib: u32) -> Self {
        let budget_mib = budget_mib.max(1);
        Self {
            budget_mib,
            permits: Arc::new(Semaphore::new(budget_mib as usize)),
            largest_mib: AtomicU32::new(0),
            seen_mib: AtomicU32::new(0),
            scouting: AtomicBool::new(false),
            learned: Notify::new(),
        }
    }

    /// Waits until an instance of the component fits in the budget, then accounts for it. The
    /// instance holds its share until its store is dropped. Waiters are let in first come,
    /// first served.
    pub async fn admit(self: &Arc<Self>) -> MemoryAccount {
        let permit = loop {
            // Registered before the check, so the first instance ending in between still wakes.
            let learned = self.learned.notified();
            let largest = self.largest_mib.load(Ordering::Acquire);
            if largest > 0 {
                break self.take(largest.min(self.budget_mib)).await;
            }
            // Nothing known yet: one request goes first, its growth taken from the budget as
            // it comes. The others wait until it ended and told how large an instance grows,
            // or for at most `FIRST_WAIT`, after which they count as large as it has grown
            // meanwhile (a password hash takes its memory in its first milliseconds), so that
            // one slow first request does not hold up the rest.
            if !self.scouting.swap(true, Ordering::AcqRel) {
                break self.take(1).await;
            }
            if tokio::time::timeout(FIRST_WAIT, learned).await.is_err() {
                let seen = self
                    .seen_mib
                    .load(Ordering::Acquire)
                    .clamp(1, self.budget_mib);
                break self.take(seen).await;
            }
        };
        MemoryAccount {
            admission: Some(self.clone()),
            permit: Some(permit),
            largest_bytes: 0,
        }
    }

    /// Waits for `mib` permits of the budget.
    async fn take(&self, mib: u32) -> OwnedSemaphorePermit {
        self.permits
            .clone()
            .acquire_many_owned(mib)
            .await
            .expect("the semaphore is never closed")
    }

    fn learn(&self, mib: u32) {
        if self.largest_mib.fetch_max(mib.max(1), Ordering::AcqRel) == 0 {
            self.learned.notify_waiters();
        }
    }
}

/// One instance's linear memory as its store's limiter sees it: it allows what the instance's
/// own limits allow and, for an admitted instance, takes its growth out of the component's
/// budget as far as the budget has room (growth is never refused for the budget: a request that
/// is running finishes). When the store is dropped its share goes back and its component
/// learns how large an instance grew.
#[derive(Default)]
pub struct MemoryAccount {
    admission: Option<Arc<Admission>>,
    permit: Option<OwnedSemaphorePermit>,
    largest_bytes: usize,
}

impl MemoryAccount {
    fn grew_to(&mut self, bytes: usize) {
        self.largest_bytes = self.largest_bytes.max(bytes);
        let (Some(admission), Some(permit)) = (&self.admission, &mut self.permit) else {
            return;
        };
        let mib = mib_of(bytes);
        admission.seen_mib.fetch_max(mib, Ordering::AcqRel);
        let held = u32::try_from(permit.num_permits()).unwrap_or(u32::MAX);
        if mib > held {
            if admission.largest_mib.load(Ordering::Relaxed) > 0 {
                admission.learn(mib);
            }
            let room = u32::try_from(admission.permits.available_permits()).unwrap_or(u32::MAX);
            if let Ok(more) = admission
                .permits
                .clone()
                .try_acquire_many_owned((mib - held).min(room))
            {
                permit.merge(more);
            }
        }
    }
}

impl Drop for MemoryAccount {
    fn drop(&mut self) {
        if let Some(admission) = &self.admission {
            admission.learn(mib_of(self.largest_bytes));
        }
    }
}

fn mib_of(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(MIB)).unwrap_or(u32::MAX)
}

impl wasmtime::ResourceLimiter for MemoryAccount {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = maximum.is_none_or(|maximum| desired <= maximum);
        if allowed {
            self.grew_to(desired);
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(maximum.is_none_or(|maximum| desired <= maximum))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use wasmtime::ResourceLimiter as _;

    async fn admitted_at_once(admission: &Arc<Admission>) -> Option<MemoryAccount> {
        tokio::time::timeout(Duration::from_millis(50), admission.admit())
            .await
            .ok()
    }

    /// An instance that was admitted, grew to `mib` and ended.
    async fn one_that_grew_to(admission: &Arc<Admission>, mib: usize) {
        let mut account = admitted_at_once(admission).await.expect("admitted");
        assert!(
            account
                .memory_growing(0, mib * MIB, None)
                .expect("a limiter never errs")
        );
    }

    #[tokio::test]
    async fn the_first_instance_runs_alone_then_small_ones_run_side_by_side() {
        let admission = Arc::new(Admission::new(48));
        let first = admitted_at_once(&admission).await.expect("admitted");
        assert!(admitted_at_once(&admission).await.is_none(), "alone");
        drop(first);
        one_that_grew_to(&admission, 1).await;
        let mut small = Vec::new();
        for _ in 0..48 {
            small.push(admitted_at_once(&admission).await.expect("1 MiB each fits"));
        }
        assert!(
            admitted_at_once(&admission).await.is_none(),
            "the 49th MiB does not"
        );
    }

    #[tokio::test]
    async fn requests_that_waited_for_the_first_instance_then_run_side_by_side() {
        let admission = Arc::new(Admission::new(48));
        let mut first = admitted_at_once(&admission).await.expect("admitted");
        let waiting: Vec<_> = (0..10)
            .map(|_| {
                let admission = admission.clone();
                tokio::spawn(async move { admission.admit().await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(waiting.iter().all(|task| !task.is_finished()), "they wait");
        assert!(
            first
                .memory_growing(0, 2 * MIB, None)
                .expect("a limiter never errs")
        );
        drop(first);
        let mut admitted = Vec::new();
        for task in waiting {
            let account = tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .expect("all ten let in together, 2 MiB each")
                .expect("the task ran");
            admitted.push(account);
        }
        assert_eq!(admission.permits.available_permits(), 48 - 20);
    }

    #[tokio::test]
    async fn a_slow_first_instance_holds_the_others_up_only_briefly() {
        let admission = Arc::new(Admission::new(48));
        let mut first = admitted_at_once(&admission).await.expect("admitted");
        assert!(
            first
                .memory_growing(0, 21 * MIB, None)
                .expect("a limiter never errs")
        );
        // The first still runs: after the short wait the next is let in, counted at 21 MiB.
        let second = tokio::time::timeout(Duration::from_secs(5), admission.admit()).await;
        assert!(second.is_ok(), "let in while the first still runs");
        drop(first);
        assert_eq!(admission.permits.available_permits(), 48 - 21);
    }

    #[tokio::test]
    async fn large_instances_wait_for_room_and_growth_is_taken_from_the_budget() {
        let admission = Arc::new(Admission::new(48));
        one_that_grew_to(&admission, 21).await;
        let first = admitted_at_once(&admission).await.expect("21 of 48");
        let _second = admitted_at_once(&admission).await.expect("42 of 48");
        assert!(admitted_at_once(&admission).await.is_none(), "63 > 48");
        drop(first);
        let mut third = admitted_at_once(&admission).await.expect("room again");
        // It grows past what was reserved for it: the 6 MiB left are taken, and growth beyond
        // the budget is still allowed.
        assert!(
            third
                .memory_growing(21 * MIB, 30 * MIB, None)
                .expect("a limiter never errs")
        );
        assert_eq!(admission.permits.available_permits(), 0);
        assert!(
            third
                .memory_growing(30 * MIB, 40 * MIB, None)
                .expect("a limiter never errs")
        );
        drop(third);
        assert_eq!(
            admission.permits.available_permits(),
            27,
            "the third's share came back"
        );
        assert_eq!(admission.largest_mib.load(Ordering::Relaxed), 40);
    }

    #[tokio::test]
    async fn an_instance_larger_than_the_budget_still_runs_alone() {
        let admission = Arc::new(Admission::new(16));
        one_that_grew_to(&admission, 40).await;
        let only = admitted_at_once(&admission).await.expect("admitted");
        assert!(
            admitted_at_once(&admission).await.is_none(),
            "one at a time"
        );
        drop(only);
        assert!(admitted_at_once(&admission).await.is_some());
    }

    #[test]
    fn growth_past_the_instances_own_maximum_is_refused() {
        let mut account = MemoryAccount::default();
        assert!(
            account
                .memory_growing(0, 2 * MIB, Some(64 * MIB))
                .expect("a limiter never errs")
        );
        assert!(
            !account
                .memory_growing(2 * MIB, 80 * MIB, Some(64 * MIB))
                .expect("a limiter never errs")
        );
        assert_eq!(account.largest_bytes, 2 * MIB);
    }
}
