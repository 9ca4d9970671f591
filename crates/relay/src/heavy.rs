//! Heavy work — decoding a large update, a large diff or apply, a snapshot —
//! runs on tokio's blocking pool, a bounded number of jobs at once, so no
//! client's big document or inflating update stalls the async workers that
//! serve everyone else.

use std::sync::Arc;

use tokio::sync::Semaphore;

/// The relay-wide gate for heavy jobs.
#[derive(Debug, Clone)]
pub(crate) struct Heavy {
    permits: Arc<Semaphore>,
    threshold: usize,
}

impl Heavy {
    /// At most `jobs` at once; work on more than `threshold` bytes counts
    /// as heavy.
    pub(crate) fn new(jobs: usize, threshold: usize) -> Heavy {
        Heavy {
            permits: Arc::new(Semaphore::new(jobs.max(1))),
            threshold,
        }
    }

    /// Whether work on `bytes` bytes should go to the blocking pool.
    pub(crate) fn is_heavy(&self, bytes: usize) -> bool {
        bytes > self.threshold
    }

    /// Runs `job` on the blocking pool once a slot is free. `None` if the
    /// job panicked (whatever it owned is gone) or the relay is stopping.
    pub(crate) async fn run<R, F>(&self, job: F) -> Option<R>
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
    {
        let _permit = self.permits.acquire().await.ok()?;
        tokio::task::spawn_blocking(job).await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_and_panics_are_contained() {
        let heavy = Heavy::new(1, 10);
        assert!(!heavy.is_heavy(5) && heavy.is_heavy(50));
        assert_eq!(heavy.run(|| 3).await, Some(3));
        let boom: Option<()> = heavy.run(|| panic!("job failed")).await;
        assert_eq!(boom, None);
        assert_eq!(heavy.run(|| 4).await, Some(4), "the slot was released");
    }
}
