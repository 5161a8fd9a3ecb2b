//! The store contract: the behaviour every [`SagaStore`] must show, as one test
//! suite. A backend's tests call [`check_all`] with a function that makes a fresh,
//! empty store; each check panics (as a test does) with what went wrong.
//!
//! Also here: [`FailingAppends`], a store wrapper that fails appends after the first
//! few, for tests of what the runtime does when its store fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value as Json, json};
use uuid::Uuid;

use super::lease::after;
use super::{
    Commit, CommitError, CommitFuture, EventLog, Lease, LeaseOp, Pinned, SagaStore, StoreError,
    StoreFuture,
};
use crate::repo::{Entity, FindError, Read, RepoError, Repository, UnitOfWork, Write};
use crate::saga::events::{Event, EventKind, SagaStart};
use crate::saga::read_model::{SagaFilter, SagaSummary};
use crate::saga::state::{SagaState, SagaStatus, fold};

/// Makes a fresh, empty store.
pub type MakeStore<'a> = &'a (dyn Fn() -> Arc<dyn SagaStore> + Sync);

/// Run every check, each on a fresh store.
pub async fn check_all(make: MakeStore<'_>) {
    sequence_rule(make().as_ref()).await;
    events_round_trip(make().as_ref()).await;
    writes_commit_with_their_event_or_not_at_all(make().as_ref()).await;
    repository_semantics(make().as_ref()).await;
    read_model_follows_the_log(make().as_ref()).await;
    business_keys_are_unique_per_saga_name(make().as_ref()).await;
    leases_fence_other_owners(make().as_ref()).await;
    pinned_texts(make().as_ref()).await;
    seeding_adds_only_new_repositories(make().as_ref()).await;
}

/// A saga being written by hand: its state, for the read-model updates.
struct Log {
    id: Uuid,
    state: SagaState,
    events: Vec<Event>,
}

impl Log {
    fn new(id: Uuid) -> Log {
        Log {
            id,
            state: SagaState::default(),
            events: Vec::new(),
        }
    }

    /// The next event and the state after it (not yet kept).
    fn next(&self, kind: EventKind, at: DateTime<Utc>) -> (Event, SagaState) {
        let event = Event {
            saga_id: self.id,
            seq: self.state.last_seq + 1,
            at,
            kind,
        };
        let mut state = self.state.clone();
        state.apply(&event).unwrap();
        (event, state)
    }

    async fn append(
        &mut self,
        store: &dyn SagaStore,
        kind: EventKind,
        writes: Option<&UnitOfWork>,
        lease: LeaseOp<'_>,
    ) -> Result<(), CommitError> {
        let (event, state) = self.next(kind, Utc::now());
        store
            .append(Commit {
                events: vec![event.clone()],
                writes: writes.cloned(),
                lease,
                state: &state,
                before: self.state.phase(),
            })
            .await?;
        self.state = state;
        self.events.push(event);
        Ok(())
    }
}

fn started(name: &str, key: Option<&str>) -> EventKind {
    EventKind::SagaStarted(Box::new(SagaStart {
        saga: name.to_string(),
        version: Some(1),
        definition_hash: "d".repeat(64),
        input: json!({"n": 1}),
        key: key.map(str::to_string),
        rules: Vec::new(),
    }))
}

fn step_started(step: &str, attempt: u32) -> EventKind {
    EventKind::StepStarted {
        step: step.into(),
        attempt,
    }
}

fn step_succeeded(step: &str, attempt: u32) -> EventKind {
    EventKind::StepSucceeded {
        step: step.into(),
        attempt,
        output: json!({"ok": true}),
    }
}

fn no_lease() -> LeaseOp<'static> {
    LeaseOp::default()
}

fn entity(v: Json) -> Entity {
    match v {
        Json::Object(m) => m,
        _ => Entity::new(),
    }
}

async fn sequence_rule(store: &dyn SagaStore) {
    let mut log = Log::new(Uuid::now_v7());
    log.append(store, started("s", None), None, no_lease())
        .await
        .unwrap();
    // the same sequence number again, and one that skips, are conflicts
    for seq in [1, 3] {
        let event = Event {
            saga_id: log.id,
            seq,
            at: Utc::now(),
            kind: step_started("a", 1),
        };
        // the events do not fit the state: a store refuses them before it reads it
        let got = store
            .append(Commit {
                events: vec![event],
                writes: None,
                lease: no_lease(),
                state: &log.state,
                before: log.state.phase(),
            })
            .await;
        assert!(
            matches!(got, Err(CommitError::Store(StoreError::Conflict { .. }))),
            "seq {seq} after 1: {got:?}"
        );
    }
    log.append(store, step_started("a", 1), None, no_lease())
        .await
        .unwrap();
    assert_eq!(store.load(log.id).await.unwrap().len(), 2);
}

async fn events_round_trip(store: &dyn SagaStore) {
    let mut log = Log::new(Uuid::now_v7());
    log.append(store, started("s", Some("k")), None, no_lease())
        .await
        .unwrap();
    log.append(store, step_started("a", 1), None, no_lease())
        .await
        .unwrap();
    log.append(
        store,
        EventKind::StepFailed {
            step: "a".into(),
            attempt: 1,
            error: "changed".into(),
            timed_out: false,
            will_retry: true,
            conflict: true,
            retry_after_ms: Some(250),
        },
        None,
        no_lease(),
    )
    .await
    .unwrap();
    let loaded = store.load(log.id).await.unwrap();
    // times may be stored with microsecond precision
    assert_eq!(loaded.len(), log.events.len());
    for (a, b) in loaded.iter().zip(&log.events) {
        assert_eq!(a.kind, b.kind);
        assert_eq!(a.seq, b.seq);
        assert!((a.at - b.at).num_microseconds().unwrap().abs() <= 1);
    }
    assert!(store.load(Uuid::now_v7()).await.unwrap().is_empty());
}

async fn writes_commit_with_their_event_or_not_at_all(store: &dyn SagaStore) {
    store
        .seed(&json!({"items": {"i1": {"qty": 5}}}))
        .await
        .unwrap();
    let mut log = Log::new(Uuid::now_v7());
    log.append(store, started("s", None), None, no_lease())
        .await
        .unwrap();
    log.append(store, step_started("a", 1), None, no_lease())
        .await
        .unwrap();
    // the second write fails: nothing of the unit applies, and no event is appended
    let bad = UnitOfWork {
        key: format!("{}/a", log.id),
        writes: vec![
            Write::Update {
                repo: "items".into(),
                id: "i1".into(),
                patch: entity(json!({"qty": 4})),
            },
            Write::Insert {
                repo: "items".into(),
                id: "i1".into(),
                entity: Entity::new(),
            },
        ],
        reads: Vec::new(),
    };
    let got = log
        .append(store, step_succeeded("a", 1), Some(&bad), no_lease())
        .await;
    assert!(
        matches!(got, Err(CommitError::Repo(RepoError::Exists { .. }))),
        "{got:?}"
    );
    assert_eq!(store.get("items", "i1").unwrap().unwrap()["qty"], json!(5));
    assert_eq!(store.load(log.id).await.unwrap().len(), 2);
    // an entity that changed since it was read is a conflict
    let stale = UnitOfWork {
        key: format!("{}/a", log.id),
        writes: vec![Write::Update {
            repo: "items".into(),
            id: "i1".into(),
            patch: entity(json!({"qty": 4})),
        }],
        reads: vec![Read {
            repo: "items".into(),
            id: "i1".into(),
            entity: Some(entity(json!({"qty": 6}))),
        }],
    };
    let got = log
        .append(store, step_succeeded("a", 1), Some(&stale), no_lease())
        .await;
    assert!(
        matches!(got, Err(CommitError::Repo(RepoError::Changed { .. }))),
        "{got:?}"
    );
    // a good unit commits with its event
    let good = UnitOfWork {
        reads: vec![Read {
            repo: "items".into(),
            id: "i1".into(),
            entity: Some(entity(json!({"qty": 5}))),
        }],
        ..stale
    };
    log.append(store, step_succeeded("a", 1), Some(&good), no_lease())
        .await
        .unwrap();
    assert_eq!(store.get("items", "i1").unwrap().unwrap()["qty"], json!(4));
    assert_eq!(store.load(log.id).await.unwrap().len(), 3);
}

async fn repository_semantics(store: &dyn SagaStore) {
    store
        .seed(&json!({"r": {"a": {"v": 1}, "b": {"v": 2}}}))
        .await
        .unwrap();
    assert_eq!(store.get("r", "zz").unwrap(), None);
    assert!(matches!(
        store.get("nope", "a"),
        Err(RepoError::UnknownRepository(_))
    ));
    let mut keep = |_: &str, e: &Entity| Ok(e["v"] == json!(2));
    let found = store.find("r", &mut keep).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, "b");
    let mut failing = |id: &str, _: &Entity| {
        if id == "b" {
            Err("boom".to_string())
        } else {
            Ok(true)
        }
    };
    assert!(matches!(
        store.find("r", &mut failing),
        Err(FindError::Filter { .. })
    ));
    store.delete("r", "a").unwrap();
    // deleting a missing id succeeds (compensations repeat)
    store.delete("r", "a").unwrap();
    assert_eq!(store.get("r", "a").unwrap(), None);
    assert!(matches!(
        store.update("r", "a", Entity::new()),
        Err(RepoError::NotFound { .. })
    ));
    store.insert("r", "c", entity(json!({"v": 3}))).unwrap();
    assert!(matches!(
        store.insert("r", "c", Entity::new()),
        Err(RepoError::Exists { .. })
    ));
    store.update("r", "c", entity(json!({"w": 4}))).unwrap();
    assert_eq!(
        Json::Object(store.get("r", "c").unwrap().unwrap()),
        json!({"v": 3, "w": 4})
    );
    assert!(store.repositories().contains(&"r".to_string()));
}

async fn read_model_follows_the_log(store: &dyn SagaStore) {
    let mut done = Log::new(Uuid::now_v7());
    done.append(store, started("pay", None), None, no_lease())
        .await
        .unwrap();
    done.append(store, EventKind::SagaCompleted, None, no_lease())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut open = Log::new(Uuid::now_v7());
    open.append(store, started("ship", None), None, no_lease())
        .await
        .unwrap();
    open.append(store, step_started("a", 1), None, no_lease())
        .await
        .unwrap();
    let all = store.list(&SagaFilter::default()).await.unwrap();
    assert_eq!(
        all.iter().map(|s| s.saga_id).collect::<Vec<_>>(),
        [open.id, done.id],
        "most recent first"
    );
    let row = |id| all.iter().find(|s| s.saga_id == id).unwrap().clone();
    assert_eq!(row(done.id).status, SagaStatus::Completed);
    assert_eq!(row(open.id).last_seq, 2);
    let filter = |status, name: Option<&str>, limit| SagaFilter {
        status,
        name: name.map(str::to_string),
        since: None,
        limit,
    };
    let running = store
        .list(&filter(Some(SagaStatus::Running), None, None))
        .await
        .unwrap();
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].saga_id, open.id);
    let named = store.list(&filter(None, Some("pay"), None)).await.unwrap();
    assert_eq!(named.len(), 1);
    assert_eq!(
        store
            .list(&filter(None, None, Some(1)))
            .await
            .unwrap()
            .len(),
        1
    );
    let since = SagaFilter {
        since: Some(row(open.id).started_at),
        ..SagaFilter::default()
    };
    assert_eq!(store.list(&since).await.unwrap().len(), 1);
    assert_eq!(store.unfinished().await.unwrap(), [open.id]);
    // ids by prefix and by suffix
    let text = open.id.to_string();
    assert_eq!(store.find_ids(&text[..8], 3).await.unwrap().len(), 2);
    assert_eq!(
        store.find_ids(&text[text.len() - 8..], 3).await.unwrap(),
        [open.id]
    );
    assert!(store.find_ids("zz-not-hex", 3).await.unwrap().is_empty());
    // the incremental read model is the one rebuilt from the log
    let before: Vec<SagaSummary> = store.list(&SagaFilter::default()).await.unwrap();
    assert_eq!(store.rebuild_projection().await.unwrap(), 2);
    let after = store.list(&SagaFilter::default()).await.unwrap();
    assert_eq!(strip_times(&before), strip_times(&after));
    assert_eq!(fold(&open.events).unwrap(), open.state);
}

fn strip_times(rows: &[SagaSummary]) -> Vec<(Uuid, SagaStatus, u64, Option<String>)> {
    rows.iter()
        .map(|r| (r.saga_id, r.status, r.last_seq, r.key.clone()))
        .collect()
}

async fn business_keys_are_unique_per_saga_name(store: &dyn SagaStore) {
    let mut first = Log::new(Uuid::now_v7());
    first
        .append(store, started("order", Some("o-1")), None, no_lease())
        .await
        .unwrap();
    let mut again = Log::new(Uuid::now_v7());
    let got = again
        .append(store, started("order", Some("o-1")), None, no_lease())
        .await;
    match got {
        Err(CommitError::Store(StoreError::DuplicateKey { saga_id, .. })) => {
            assert_eq!(saga_id, first.id);
        }
        other => panic!("a second saga with key `o-1`: {other:?}"),
    }
    assert!(store.load(again.id).await.unwrap().is_empty());
    // another saga name may use the same key
    let mut refund = Log::new(Uuid::now_v7());
    refund
        .append(store, started("refund", Some("o-1")), None, no_lease())
        .await
        .unwrap();
    let by_key = store.by_key("o-1", 10).await.unwrap();
    assert_eq!(by_key.len(), 2);
    assert!(by_key.iter().all(|s| s.key.as_deref() == Some("o-1")));
    assert!(store.by_key("o-2", 10).await.unwrap().is_empty());
    // keys survive a rebuild of the read model
    store.rebuild_projection().await.unwrap();
    assert_eq!(store.by_key("o-1", 10).await.unwrap().len(), 2);
}

async fn leases_fence_other_owners(store: &dyn SagaStore) {
    let ttl = Duration::from_secs(60);
    let mut log = Log::new(Uuid::now_v7());
    let first = Lease::first(log.id, "a", ttl, Utc::now());
    fn held(l: &Lease, ttl: Duration) -> LeaseOp<'_> {
        LeaseOp {
            lease: Some(l),
            renew_until: Some(after(Utc::now(), ttl)),
            release: false,
        }
    }
    // the first append takes epoch 1
    let op = held(&first, ttl);
    log.append(store, started("s", None), None, op)
        .await
        .unwrap();
    let stored = store.holder(log.id).await.unwrap().unwrap();
    assert_eq!((stored.owner.as_str(), stored.epoch), ("a", 1));
    // nobody else may append or take it while it is live
    let got = log
        .append(store, step_started("a", 1), None, no_lease())
        .await;
    assert!(
        matches!(got, Err(CommitError::Store(StoreError::Fenced { .. }))),
        "{got:?}"
    );
    let got = store.acquire(log.id, "b", ttl).await;
    assert!(matches!(got, Err(StoreError::Fenced { .. })), "{got:?}");
    store.renew(&first, ttl).await.unwrap();
    // expired, it is taken over, and the old owner is fenced off
    let short = Duration::from_millis(30);
    store.renew(&first, short).await.unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    let taken = store.acquire(log.id, "b", ttl).await.unwrap();
    assert_eq!(taken.epoch, 2);
    let op = held(&first, ttl);
    let got = log.append(store, step_started("a", 1), None, op).await;
    assert!(
        matches!(got, Err(CommitError::Store(StoreError::Fenced { .. }))),
        "{got:?}"
    );
    assert!(matches!(
        store.renew(&first, ttl).await,
        Err(StoreError::Fenced { .. })
    ));
    // the new owner appends, and releases with its final event
    let op = held(&taken, ttl);
    log.append(store, step_started("a", 1), None, op)
        .await
        .unwrap();
    let op = held(&taken, ttl);
    log.append(
        store,
        EventKind::StepFailed {
            step: "a".into(),
            attempt: 1,
            error: "no".into(),
            timed_out: false,
            will_retry: false,
            conflict: false,
            retry_after_ms: None,
        },
        None,
        op,
    )
    .await
    .unwrap();
    let op = LeaseOp {
        release: true,
        ..held(&taken, ttl)
    };
    log.append(
        store,
        EventKind::CompensationStarted {
            failed_step: "a".into(),
            reason: "no".into(),
        },
        None,
        op,
    )
    .await
    .unwrap();
    let released = store.holder(log.id).await.unwrap().unwrap();
    assert!(!released.is_live(Utc::now()));
    // a released lease is taken at once, with the next epoch
    let next = store.acquire(log.id, "c", ttl).await.unwrap();
    assert_eq!(next.epoch, 3);
    store.release(&next).await.unwrap();
    store.release(&taken).await.unwrap();
    assert_eq!(store.holder(log.id).await.unwrap().unwrap().epoch, 3);
}

async fn pinned_texts(store: &dyn SagaStore) {
    store.pin("h1", "order", "saga: order").await.unwrap();
    store.pin("h1", "x", "changed").await.unwrap();
    let kept = Pinned {
        name: "order".into(),
        text: "saga: order".into(),
    };
    assert_eq!(store.pinned("h1").await.unwrap(), Some(kept));
    assert_eq!(store.pinned("h2").await.unwrap(), None);
}

async fn seeding_adds_only_new_repositories(store: &dyn SagaStore) {
    let names = store
        .seed(&json!({"a": {"1": {"v": 1}}, "b": {}}))
        .await
        .unwrap();
    assert_eq!(names, ["a", "b"]);
    store.update("a", "1", entity(json!({"v": 2}))).unwrap();
    // seeding again never resets what is there
    let names = store
        .seed(&json!({"a": {"1": {"v": 1}}, "c": {"9": {}}}))
        .await
        .unwrap();
    assert_eq!(names, ["c"]);
    let all = store.export().await.unwrap();
    assert_eq!(all["a"]["1"]["v"], json!(2));
    assert_eq!(all["c"]["9"], json!({}));
    assert!(store.seed(&json!({"bad name": {}})).await.is_err());
    assert!(store.seed(&json!({"x": {"1": 5}})).await.is_err());
}

/// A store whose appends fail (`disk full`) after the first `ok`; everything else is
/// the inner store's.
pub struct FailingAppends {
    inner: Arc<dyn SagaStore>,
    ok: usize,
    seen: AtomicUsize,
}

impl FailingAppends {
    /// Fail every append after the first `ok`.
    pub fn new(inner: Arc<dyn SagaStore>, ok: usize) -> FailingAppends {
        FailingAppends {
            inner,
            ok,
            seen: AtomicUsize::new(0),
        }
    }

    /// The appends (commits) asked for so far, failed ones included.
    pub fn appends(&self) -> usize {
        self.seen.load(Ordering::SeqCst)
    }
}

impl EventLog for FailingAppends {
    fn append<'a>(&'a self, commit: Commit<'a>) -> CommitFuture<'a> {
        if self.seen.fetch_add(1, Ordering::SeqCst) >= self.ok {
            return Box::pin(async { Err(StoreError::Io("disk full".into()).into()) });
        }
        self.inner.append(commit)
    }
    fn load(&self, saga_id: Uuid) -> StoreFuture<'_, Vec<Event>> {
        self.inner.load(saga_id)
    }
    fn pin<'a>(&'a self, hash: &'a str, name: &'a str, text: &'a str) -> StoreFuture<'a, ()> {
        self.inner.pin(hash, name, text)
    }
    fn pinned<'a>(&'a self, hash: &'a str) -> StoreFuture<'a, Option<Pinned>> {
        self.inner.pinned(hash)
    }
}

super::forward_index_and_leases!(FailingAppends, inner);

impl Repository for FailingAppends {
    fn repositories(&self) -> Vec<String> {
        self.inner.repositories()
    }
    fn get(&self, repo: &str, id: &str) -> Result<Option<Entity>, RepoError> {
        self.inner.get(repo, id)
    }
    fn find(
        &self,
        repo: &str,
        keep: &mut dyn FnMut(&str, &Entity) -> Result<bool, String>,
    ) -> Result<Vec<(String, Entity)>, FindError> {
        self.inner.find(repo, keep)
    }
    fn commit(&self, unit: &UnitOfWork) -> Result<(), RepoError> {
        self.inner.commit(unit)
    }
}

impl SagaStore for FailingAppends {
    fn url(&self) -> String {
        self.inner.url()
    }
    fn seed<'a>(&'a self, repos: &'a Json) -> StoreFuture<'a, Vec<String>> {
        self.inner.seed(repos)
    }
    fn export(&self) -> StoreFuture<'_, Json> {
        self.inner.export()
    }
}
