//! A bulkhead: at most `max_concurrent` calls to a service in flight across every saga
//! of the process; a call that cannot enter within `max_wait` is refused.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::saga::model::BulkheadConfig;

pub(crate) struct Bulkhead {
    config: BulkheadConfig,
    slots: Arc<Semaphore>,
}

impl Bulkhead {
    pub fn new(config: BulkheadConfig) -> Bulkhead {
        Bulkhead {
            slots: Arc::new(Semaphore::new(config.max_concurrent as usize)),
            config,
        }
    }

    /// Calls in flight at most.
    pub fn max(&self) -> u32 {
        self.config.max_concurrent
    }

    /// Calls in flight now.
    pub fn in_flight(&self) -> u32 {
        let free = u32::try_from(self.slots.available_permits()).unwrap_or(u32::MAX);
        self.config.max_concurrent.saturating_sub(free)
    }

    /// A slot, held until dropped; `Err(waited)` when none freed up in time.
    pub async fn enter(&self) -> Result<OwnedSemaphorePermit, Duration> {
        let wait = self.config.max_wait;
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return Ok(p);
        }
        if wait.is_zero() {
            return Err(wait);
        }
        match tokio::time::timeout(wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            _ => Err(wait),
        }
    }
}
