//! A count-based circuit breaker, as resilience4j defines one.
//!
//! - **Closed**: every call goes through; the outcomes of the last `window` calls are
//!   kept. Once at least `min_calls` are recorded and the share of failures among them
//!   is at least `failure_rate`, the breaker opens.
//! - **Open**: calls fail at once, without reaching the service, for `open_for`.
//! - **Half-open**: after `open_for`, `half_open_calls` trial calls go through (others
//!   fail as if open). When every trial has an outcome, the failure rate among them
//!   decides: at least `failure_rate` opens the breaker again, less closes it with an
//!   empty window.
//!
//! Outcomes are recorded through a [`Permit`]; a permit dropped without an outcome (the
//! call was abandoned by a timeout) counts as a failure. A permit of an earlier state
//! (a call still running when the breaker changed state) records nothing.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::saga::model::BreakerConfig;

/// Where a breaker stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls fail fast.
    Open,
    /// Trial calls go through.
    HalfOpen,
}

impl BreakerState {
    /// `closed`, `open`, `half_open`.
    pub fn name(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

enum Inner {
    Closed {
        window: VecDeque<bool>,
        failures: u32,
    },
    Open {
        until: Instant,
    },
    HalfOpen {
        issued: u32,
        done: u32,
        failures: u32,
    },
}

struct Guarded {
    inner: Inner,
    /// Bumped at every change of state: permits of an earlier state record nothing.
    generation: u64,
}

/// One service's breaker, shared by every saga of the process.
pub(crate) struct Breaker {
    service: String,
    config: BreakerConfig,
    state: Mutex<Guarded>,
}

/// A call the breaker let through; its outcome is recorded with [`Permit::record`].
pub(crate) struct Permit<'b> {
    breaker: &'b Breaker,
    generation: u64,
    recorded: bool,
}

impl Permit<'_> {
    /// Record the call's outcome, known at `now`.
    pub fn record(mut self, failed: bool, now: Instant) {
        self.recorded = true;
        self.breaker.record(self.generation, failed, now);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.recorded {
            self.breaker.record(self.generation, true, Instant::now());
        }
    }
}

impl Breaker {
    pub fn new(service: &str, config: BreakerConfig) -> Breaker {
        Breaker {
            service: service.to_string(),
            config,
            state: Mutex::new(Guarded {
                inner: closed(),
                generation: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Guarded> {
        // a panic while holding the lock leaves a consistent state: every change is one assignment
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Let a call through, or say how long the breaker stays open (zero while half-open
    /// with every trial call taken).
    pub fn acquire(&self, now: Instant) -> Result<Permit<'_>, Duration> {
        let mut g = self.lock();
        if let Inner::Open { until } = g.inner {
            if now < until {
                return Err(until - now);
            }
            self.change(&mut g, half_open());
        }
        if let Inner::HalfOpen { issued, .. } = &mut g.inner {
            if *issued >= self.config.half_open_calls {
                return Err(Duration::ZERO);
            }
            *issued += 1;
        }
        Ok(Permit {
            breaker: self,
            generation: g.generation,
            recorded: false,
        })
    }

    /// How long the breaker stays open from `now` (`None`: it lets calls through, or
    /// will at the next one).
    pub fn open_for(&self, now: Instant) -> Option<Duration> {
        match self.lock().inner {
            Inner::Open { until } if now < until => Some(until - now),
            _ => None,
        }
    }

    /// Where the breaker stands at `now` (an open breaker whose time is up reads as
    /// half-open, as the next call will find it).
    pub fn state(&self, now: Instant) -> BreakerState {
        match self.lock().inner {
            Inner::Closed { .. } => BreakerState::Closed,
            Inner::Open { until } if now >= until => BreakerState::HalfOpen,
            Inner::Open { .. } => BreakerState::Open,
            Inner::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    fn record(&self, generation: u64, failed: bool, now: Instant) {
        let mut g = self.lock();
        if g.generation != generation {
            return;
        }
        let c = &self.config;
        let next = match &mut g.inner {
            Inner::Closed { window, failures } => {
                window.push_back(failed);
                *failures += u32::from(failed);
                if window.len() > c.window as usize && window.pop_front() == Some(true) {
                    *failures -= 1;
                }
                let calls = window.len() as u32;
                (calls >= c.min_calls && tripped(*failures, calls, c.failure_rate))
                    .then(|| open(now, c.open_for))
            }
            Inner::HalfOpen { done, failures, .. } => {
                *done += 1;
                *failures += u32::from(failed);
                (*done >= c.half_open_calls).then(|| {
                    if tripped(*failures, *done, c.failure_rate) {
                        open(now, c.open_for)
                    } else {
                        closed()
                    }
                })
            }
            Inner::Open { .. } => None,
        };
        if let Some(next) = next {
            self.change(&mut g, next);
        }
    }

    fn change(&self, g: &mut Guarded, next: Inner) {
        let from = name(&g.inner);
        g.inner = next;
        g.generation += 1;
        tracing::warn!(
            service = %self.service,
            from,
            to = name(&g.inner),
            "circuit breaker changed state"
        );
    }
}

fn tripped(failures: u32, calls: u32, rate: f64) -> bool {
    calls > 0 && f64::from(failures) / f64::from(calls) >= rate
}

fn closed() -> Inner {
    Inner::Closed {
        window: VecDeque::new(),
        failures: 0,
    }
}

fn half_open() -> Inner {
    Inner::HalfOpen {
        issued: 0,
        done: 0,
        failures: 0,
    }
}

fn open(now: Instant, open_for: Duration) -> Inner {
    Inner::Open {
        until: now + open_for,
    }
}

fn name(i: &Inner) -> &'static str {
    match i {
        Inner::Closed { .. } => "closed",
        Inner::Open { .. } => "open",
        Inner::HalfOpen { .. } => "half_open",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(
            "pay",
            BreakerConfig {
                window: 4,
                min_calls: 3,
                failure_rate: 0.5,
                open_for: Duration::from_secs(10),
                half_open_calls: 2,
            },
        )
    }

    fn call(b: &Breaker, now: Instant, failed: bool) -> bool {
        match b.acquire(now) {
            Ok(p) => {
                p.record(failed, now);
                true
            }
            Err(_) => false,
        }
    }

    #[test]
    fn opens_only_once_min_calls_are_recorded() {
        let b = breaker();
        let t = Instant::now();
        assert!(call(&b, t, true));
        assert!(call(&b, t, true));
        // 2 of 2 failed, but fewer than min_calls
        assert_eq!(b.state(t), BreakerState::Closed);
        assert!(call(&b, t, false));
        // 2 of 3 failed: 0.67 >= 0.5
        assert_eq!(b.state(t), BreakerState::Open);
        assert_eq!(b.acquire(t).err(), Some(Duration::from_secs(10)));
        assert_eq!(b.open_for(t), Some(Duration::from_secs(10)));
        assert_eq!(b.open_for(t + Duration::from_secs(10)), None);
    }

    #[test]
    fn the_window_slides() {
        let b = breaker();
        let t = Instant::now();
        for failed in [true, false, false, false, false, true] {
            assert!(call(&b, t, failed));
        }
        // the window is the last 4: false, false, false, true: 0.25
        assert_eq!(b.state(t), BreakerState::Closed);
        assert!(call(&b, t, true));
        // false, false, true, true: 0.5
        assert_eq!(b.state(t), BreakerState::Open);
    }

    #[test]
    fn half_open_trials_close_or_reopen() {
        let b = breaker();
        let t = Instant::now();
        for _ in 0..3 {
            call(&b, t, true);
        }
        let later = t + Duration::from_secs(10);
        assert_eq!(b.state(later), BreakerState::HalfOpen);
        let p1 = b.acquire(later).unwrap();
        let p2 = b.acquire(later).unwrap();
        // only `half_open_calls` trials
        assert_eq!(b.acquire(later).err(), Some(Duration::ZERO));
        p1.record(false, later);
        assert_eq!(b.state(later), BreakerState::HalfOpen);
        p2.record(true, later);
        // 1 of 2 failed: 0.5 >= 0.5, open again
        assert_eq!(b.state(later), BreakerState::Open);
        let again = later + Duration::from_secs(10);
        assert!(call(&b, again, false));
        assert!(call(&b, again, false));
        assert_eq!(b.state(again), BreakerState::Closed);
        // a fresh window: one failure does not open it
        assert!(call(&b, again, true));
        assert_eq!(b.state(again), BreakerState::Closed);
    }

    #[test]
    fn an_abandoned_call_is_a_failure_and_stale_permits_record_nothing() {
        let b = breaker();
        let t = Instant::now();
        let stale = b.acquire(t).unwrap();
        for _ in 0..3 {
            drop(b.acquire(t).unwrap());
        }
        assert_eq!(b.state(t), BreakerState::Open);
        // a dropped permit records its failure at the real time of the drop
        let later = Instant::now() + Duration::from_secs(10);
        let trial = b.acquire(later).unwrap();
        // the call that started while closed ends now: it does not count as a trial
        stale.record(true, later);
        trial.record(false, later);
        assert!(call(&b, later, false));
        assert_eq!(b.state(later), BreakerState::Closed);
    }
}
