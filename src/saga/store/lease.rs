//! Leases: at most one process drives a saga at a time.
//!
//! A lease is a row per saga: owner, epoch, expiry. The process that starts a saga
//! takes epoch 1 with its first event; every append it makes proves the lease (owner
//! and epoch) and extends it; a heartbeat extends it while an action runs; the final
//! event releases it. Another process may take the lease only once it has expired
//! (or been released): the epoch goes up, and from then on every append of the old
//! owner is refused ([`StoreError::Fenced`]), so a process that paused past its
//! lease can never advance a saga that was taken over.
//!
//! These functions decide; a store only reads and writes the row they return.
//! Times are the callers' clocks: leases assume the processes' clocks agree to well
//! within a lease's time to live.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{LeaseOp, StoreError};

/// One saga's lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The saga.
    pub saga_id: Uuid,
    /// Who holds it (`host:pid:nonce`).
    pub owner: String,
    /// Goes up by one at every takeover; appends carry it.
    pub epoch: u64,
    /// Live until then.
    pub expires_at: DateTime<Utc>,
}

impl Lease {
    /// True while the lease keeps others out.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.expires_at > now
    }

    /// The first lease of a new saga.
    pub fn first(saga_id: Uuid, owner: &str, ttl: Duration, now: DateTime<Utc>) -> Lease {
        Lease {
            saga_id,
            owner: owner.to_string(),
            epoch: 1,
            expires_at: after(now, ttl),
        }
    }
}

/// `now + ttl`, saturating.
pub fn after(now: DateTime<Utc>, ttl: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(ttl)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// This process as a lease owner: `host:pid:nonce` (the nonce tells apart two
/// processes that reused a pid).
pub fn process_owner() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "localhost".to_string());
    let nonce = Uuid::new_v4().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), &nonce[..8])
}

/// The time a released lease expires at: always in the past.
fn released() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH
}

fn fenced(saga_id: Uuid, current: Option<&Lease>) -> StoreError {
    StoreError::Fenced {
        saga_id,
        holder: current.cloned(),
    }
}

/// Take the lease: allowed when there is none, when it is not live, or when `owner`
/// holds it already; the epoch goes up by one.
pub fn acquire(
    current: Option<&Lease>,
    saga_id: Uuid,
    owner: &str,
    ttl: Duration,
    now: DateTime<Utc>,
) -> Result<Lease, StoreError> {
    match current {
        Some(c) if c.is_live(now) && c.owner != owner => Err(fenced(saga_id, current)),
        _ => Ok(Lease {
            saga_id,
            owner: owner.to_string(),
            epoch: current.map_or(0, |c| c.epoch) + 1,
            expires_at: after(now, ttl),
        }),
    }
}

/// True when `held` is still the saga's lease (same owner, same epoch). An expired
/// lease nobody took over is still held: no other process has acted since.
fn holds(current: Option<&Lease>, held: &Lease) -> bool {
    current.is_some_and(|c| c.owner == held.owner && c.epoch == held.epoch)
}

/// Extend a held lease.
pub fn renew(
    current: Option<&Lease>,
    held: &Lease,
    ttl: Duration,
    now: DateTime<Utc>,
) -> Result<Lease, StoreError> {
    if !holds(current, held) {
        return Err(fenced(held.saga_id, current));
    }
    Ok(Lease {
        expires_at: after(now, ttl),
        ..held.clone()
    })
}

/// Give a held lease up: the row to write, or `None` when it is not held any more.
pub fn release(current: Option<&Lease>, held: &Lease) -> Option<Lease> {
    holds(current, held).then(|| Lease {
        expires_at: released(),
        ..held.clone()
    })
}

/// Admit an append: the row to write (`None`: leave it), or why the append is refused.
///
/// Without a lease an append is refused while someone holds a live one (`now` is
/// read only then). With one, it must be the saga's current lease, or, for a saga
/// that never had a lease, its first (epoch 1).
pub fn admit(
    current: Option<&Lease>,
    saga_id: Uuid,
    op: &LeaseOp<'_>,
    now: impl FnOnce() -> DateTime<Utc>,
) -> Result<Option<Lease>, StoreError> {
    let Some(held) = op.lease else {
        return match current {
            Some(c) if c.is_live(now()) => Err(fenced(saga_id, current)),
            _ => Ok(None),
        };
    };
    let ok = match current {
        None => held.epoch == 1 && held.saga_id == saga_id,
        Some(_) => holds(current, held),
    };
    if !ok {
        return Err(fenced(saga_id, current));
    }
    let expires_at = match (op.release, op.renew_until, current) {
        (true, _, _) => released(),
        (false, Some(until), _) => until,
        (false, None, Some(c)) => c.expires_at,
        (false, None, None) => held.expires_at,
    };
    if current.is_some_and(|c| c.expires_at == expires_at) {
        return Ok(None);
    }
    Ok(Some(Lease {
        expires_at,
        ..held.clone()
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(1_000_000 + secs)
    }

    #[test]
    fn a_live_lease_keeps_others_out_until_it_expires() {
        let id = Uuid::nil();
        let ttl = Duration::from_secs(10);
        let a = acquire(None, id, "a", ttl, t(0)).unwrap();
        assert_eq!(a.epoch, 1);
        assert!(matches!(
            acquire(Some(&a), id, "b", ttl, t(5)),
            Err(StoreError::Fenced { .. })
        ));
        let b = acquire(Some(&a), id, "b", ttl, t(11)).unwrap();
        assert_eq!(b.epoch, 2);
        // the old owner is fenced off
        assert!(renew(Some(&b), &a, ttl, t(12)).is_err());
        let op = LeaseOp {
            lease: Some(&a),
            ..LeaseOp::default()
        };
        assert!(admit(Some(&b), id, &op, || t(12)).is_err());
        assert_eq!(release(Some(&b), &a), None);
        let gone = release(Some(&b), &b).unwrap();
        assert!(!gone.is_live(t(12)));
        assert_eq!(acquire(Some(&gone), id, "c", ttl, t(12)).unwrap().epoch, 3);
    }

    #[test]
    fn appends_without_a_lease_wait_for_a_live_one_to_expire() {
        let id = Uuid::nil();
        let a = Lease::first(id, "a", Duration::from_secs(10), t(0));
        let none = LeaseOp::default();
        assert!(admit(Some(&a), id, &none, || t(1)).is_err());
        assert_eq!(admit(Some(&a), id, &none, || t(11)).unwrap(), None);
        assert_eq!(admit(None, id, &none, || t(1)).unwrap(), None);
    }
}
