//! The saga state machine: every row of the transition tables is driven by a real run,
//! an illegal event is reported with its sequence number (never folded), and
//! everything time-based (the deadline, backoffs) comes from the log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{Duration as TimeDelta, Utc};
use rulesaga::Source;
use rulesaga::saga::decide::{Command, decide};
use rulesaga::saga::state::{
    SAGA_TRANSITIONS, STEP_TRANSITIONS, SagaPhase, SagaTarget, TransitionError,
};
use rulesaga::saga::store::{EventLog, append_events};
use rulesaga::saga::{
    Catalog, Event, EventKind, HandlerError, HandlerRegistry, MemoryStore, OperatorAction, Runner,
    Saga, SagaStart, SagaState, SagaStatus, StepStatus, fold, validate,
};
use serde_json::{Value as Json, json};

/// Handlers `ok` (succeeds), `flaky` (fails transiently while `fails[step]` > 0,
/// counting down) and `broken` (fails permanently).
fn handlers(fails: Arc<Mutex<HashMap<String, u32>>>) -> HandlerRegistry {
    let mut h = HandlerRegistry::with_builtins();
    h.register_sync("ok", |_| Ok(Json::Null));
    h.register_sync("broken", |_| Err(HandlerError::permanent("broken")));
    h.register_sync("flaky", move |call| {
        let key = if call.compensating {
            format!("{}/undo", call.step)
        } else {
            call.step.clone()
        };
        let mut f = fails.lock().unwrap();
        match f.get_mut(&key) {
            Some(n) if *n > 0 => {
                *n -= 1;
                Err(HandlerError::transient(format!("{key} is down")))
            }
            _ => Ok(Json::Null),
        }
    });
    h
}

struct World {
    fails: Arc<Mutex<HashMap<String, u32>>>,
    registry: HandlerRegistry,
    store: Arc<MemoryStore>,
}

impl World {
    fn new(fails: &[(&str, u32)]) -> World {
        let fails = Arc::new(Mutex::new(
            fails.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        ));
        World {
            registry: handlers(fails.clone()),
            fails,
            store: Arc::new(MemoryStore::new()),
        }
    }
    fn saga(&self, text: &str) -> Saga {
        validate::load(Source::new("s.yaml", text), &Catalog::new(&self.registry))
            .unwrap_or_else(|d| panic!("{d}"))
    }
    fn runner(&self) -> Runner {
        Runner::with_handlers(self.store.clone(), Arc::new(self.registry.clone()), &[])
    }
    async fn log(&self, state: &SagaState) -> Vec<Event> {
        self.store.load(state.saga_id).await.unwrap()
    }
    fn heal(&self) {
        self.fails.lock().unwrap().clear();
    }
}

/// The transitions a log takes: (saga phase, event type) and (step status, event type).
fn transitions(log: &[Event]) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut saga = BTreeSet::new();
    let mut step = BTreeSet::new();
    let mut state = SagaState::default();
    for e in log {
        saga.insert(format!("{:?} {}", state.phase(), e.kind.type_name()));
        if let Some(s) = e.kind.step() {
            step.insert(format!("{:?} {}", state.step_status(s), e.kind.type_name()));
        }
        state.apply(e).unwrap();
    }
    (saga, step)
}

const RETRY: &str = "retry: {max_attempts: 3, initial_backoff: 1ms}";

#[tokio::test]
async fn every_transition_of_the_tables_is_driven_by_a_run() {
    let mut logs: Vec<Vec<Event>> = Vec::new();

    // forward with a retry and a skipped step, then completed
    let w = World::new(&[("a", 1)]);
    let saga = w.saga(&format!(
        "saga: s\nsteps:\n  - name: a\n    {RETRY}\n    action: {{handler: flaky}}\n    compensation: none\n  - name: b\n    when: 'false'\n    action: {{handler: ok}}\n    compensation: none\n"
    ));
    let done = w.runner().run(&saga, json!({})).await.unwrap();
    assert_eq!(done.status, SagaStatus::Completed);
    logs.push(w.log(&done).await);

    // a timed-out step fails for good and is compensated after one retried undo; the
    // first step's compensation fails for good; an operator retries it (a fresh
    // budget, the service is back), then compensation ends
    let w = World::new(&[("a/undo", 3)]);
    let saga = w.saga(
        "saga: s\ncompensation_retry: {max_attempts: 3, initial_backoff: 1ms}\nsteps:\n  - name: a\n    action: {handler: ok}\n    compensate: {handler: flaky}\n  - name: b\n    timeout: 10ms\n    action: {handler: sleep, args: {ms: 10000}}\n    compensate: {handler: ok}\n",
    );
    let failed = w.runner().run(&saga, json!({})).await.unwrap();
    assert_eq!(failed.status, SagaStatus::Failed);
    assert_eq!(failed.step_status("a"), StepStatus::CompensationFailed);
    w.heal();
    let log = w.log(&failed).await;
    let retry = OperatorAction::Retry {
        reason: "back".into(),
    };
    let undone = w.runner().operate(&saga, &log, &retry).await.unwrap();
    assert_eq!(undone.status, SagaStatus::Compensated);
    logs.push(w.log(&undone).await);

    // a compensation failing for good, marked compensated by an operator
    let w = World::new(&[("a/undo", 99)]);
    let saga = w.saga(
        "saga: s\ncompensation_retry: {max_attempts: 1}\nsteps:\n  - name: a\n    action: {handler: ok}\n    compensate: {handler: flaky}\n  - name: b\n    action: {handler: broken}\n    compensate: {handler: ok}\n",
    );
    let failed = w.runner().run(&saga, json!({})).await.unwrap();
    let log = w.log(&failed).await;
    let mark = OperatorAction::MarkCompensated {
        step: "a".into(),
        reason: "by hand".into(),
    };
    let undone = w.runner().operate(&saga, &log, &mark).await.unwrap();
    assert_eq!(undone.status, SagaStatus::Compensated);
    logs.push(w.log(&undone).await);

    // after the pivot: failed, retried by an operator, failed again, skipped
    let w = World::new(&[]);
    let saga = w.saga(
        "saga: s\nsteps:\n  - name: pay\n    pivot: true\n    action: {handler: ok}\n  - name: ship\n    retry: {max_attempts: unlimited}\n    action: {handler: broken}\n",
    );
    let failed = w.runner().run(&saga, json!({})).await.unwrap();
    let log = w.log(&failed).await;
    let again = w.runner().operate(&saga, &log, &retry).await.unwrap();
    assert_eq!(again.status, SagaStatus::Failed);
    let log = w.log(&again).await;
    let skip = OperatorAction::Skip {
        step: "ship".into(),
        reason: "shipped by hand".into(),
    };
    let done = w.runner().operate(&saga, &log, &skip).await.unwrap();
    assert_eq!(done.status, SagaStatus::Completed);
    logs.push(w.log(&done).await);

    // a `when` that cannot be evaluated fails the step before any attempt
    let w = World::new(&[]);
    let saga = w.saga(
        "saga: s\nsteps:\n  - name: a\n    action: {handler: ok}\n    compensate: {handler: ok}\n  - name: b\n    when: 'input.n / 0 > 1'\n    action: {handler: ok}\n    compensation: none\n",
    );
    let state = w.runner().run(&saga, json!({"n": 1})).await.unwrap();
    assert_eq!(state.status, SagaStatus::Compensated);
    logs.push(w.log(&state).await);

    // the deadline passes between two attempts
    let w = World::new(&[("a", 99)]);
    let saga = w.saga(
        "saga: s\ndeadline: 100ms\nsteps:\n  - name: a\n    retry: {max_attempts: unlimited, initial_backoff: 60ms, max_backoff: 60ms}\n    action: {handler: flaky}\n    compensation: none\n",
    );
    let state = w.runner().run(&saga, json!({})).await.unwrap();
    assert_eq!(state.status, SagaStatus::Compensated);
    logs.push(w.log(&state).await);

    // a process stopped during an attempt: the attempt starts again
    let w = World::new(&[]);
    let saga =
        w.saga("saga: s\nsteps:\n  - name: a\n    action: {handler: ok}\n    compensation: none\n");
    let done = w.runner().run(&saga, json!({})).await.unwrap();
    let full = w.log(&done).await;
    let cut = &full[..2]; // saga started, step started
    let w2 = World::new(&[]);
    append_events(w2.store.as_ref(), cut).await.unwrap();
    let resumed = w2.runner().resume(&saga, cut).await.unwrap();
    assert_eq!(resumed.status, SagaStatus::Completed);
    logs.push(w2.log(&resumed).await);

    let mut seen_saga = BTreeSet::new();
    let mut seen_step = BTreeSet::new();
    for log in &logs {
        let (s, t) = transitions(log);
        seen_saga.extend(s);
        seen_step.extend(t);
    }
    for (from, ty, to) in SAGA_TRANSITIONS {
        let row = format!("{from:?} {ty}");
        assert!(
            seen_saga.contains(&row),
            "saga transition `{row}` -> {to:?} never ran; seen: {seen_saga:#?}"
        );
    }
    for (from, ty, _) in STEP_TRANSITIONS {
        let row = format!("{from:?} {ty}");
        assert!(
            seen_step.contains(&row),
            "step transition `{row}` never ran; seen: {seen_step:#?}"
        );
    }
    // and a retried saga went back to both statuses it can fail from
    assert!(SAGA_TRANSITIONS.contains(&(
        SagaPhase::Is(SagaStatus::Failed),
        rulesaga::saga::events::EventType::SagaRetried,
        SagaTarget::Resume
    )));
}

fn ev(seq: u64, kind: EventKind) -> Event {
    Event {
        saga_id: uuid::Uuid::nil(),
        seq,
        at: Utc::now(),
        kind,
    }
}

fn started() -> EventKind {
    EventKind::SagaStarted(Box::new(SagaStart {
        saga: "s".into(),
        version: None,
        definition_hash: "h".into(),
        input: json!({}),
        key: None,
        rules: Vec::new(),
    }))
}

#[test]
fn an_illegal_event_is_an_error_with_its_sequence_number() {
    let succeeded = |attempt| EventKind::StepSucceeded {
        step: "a".into(),
        attempt,
        output: Json::Null,
    };
    let start = |attempt| EventKind::StepStarted {
        step: "a".into(),
        attempt,
    };
    let cases: Vec<(Vec<EventKind>, u64, &str)> = vec![
        (vec![succeeded(1)], 1, "the saga has not started"),
        (vec![started(), started()], 2, "the saga is running"),
        (vec![started(), succeeded(1)], 2, "step `a` is not_started"),
        (
            vec![started(), start(1), succeeded(2)],
            3,
            "step `a` expects attempt 1, not 2",
        ),
        (
            vec![started(), start(1), succeeded(1), succeeded(1)],
            4,
            "step `a` is completed",
        ),
        (
            vec![started(), EventKind::SagaCompensated],
            2,
            "the saga is running",
        ),
        (
            vec![
                started(),
                EventKind::CompensationStarted {
                    failed_step: "a".into(),
                    reason: "x".into(),
                },
            ],
            2,
            "step `a` is not_started, not failed",
        ),
        (
            vec![
                started(),
                start(1),
                succeeded(1),
                EventKind::SagaCompleted,
                start(2),
            ],
            5,
            "the saga is completed",
        ),
    ];
    for (kinds, seq, reason) in cases {
        let log: Vec<Event> = kinds
            .into_iter()
            .enumerate()
            .map(|(i, k)| ev(i as u64 + 1, k))
            .collect();
        let err: TransitionError = fold(&log).unwrap_err();
        assert_eq!(err.seq, seq, "{err}");
        assert!(err.reason.contains(reason), "{err}");
        assert!(err.to_string().contains(&format!("event {seq} ")), "{err}");
    }
    // a gap in the numbering is not folded either
    let gap = [ev(1, started()), ev(3, EventKind::SagaCompleted)];
    assert_eq!(fold(&gap).unwrap_err().seq, 3);
}

#[tokio::test]
async fn the_deadline_counts_from_saga_started_so_a_resumed_saga_keeps_it() {
    let w = World::new(&[]);
    let saga = w.saga(
        "saga: s\ndeadline: 30m\nsteps:\n  - name: a\n    action: {handler: ok}\n    compensate: {handler: ok}\n  - name: b\n    action: {handler: ok}\n    compensate: {handler: ok}\n",
    );
    let done = w.runner().run(&saga, json!({})).await.unwrap();
    // the same log, as if it had started an hour ago and stopped after `a`
    let hour_ago = Utc::now() - TimeDelta::hours(1);
    let old: Vec<Event> = w.log(&done).await[..3]
        .iter()
        .map(|e| Event {
            at: hour_ago,
            ..e.clone()
        })
        .collect();
    let w2 = World::new(&[]);
    append_events(w2.store.as_ref(), &old).await.unwrap();
    let state = fold(&old).unwrap();
    assert_eq!(state.started_at, hour_ago);
    match decide(&state, &saga, Utc::now()) {
        Command::Append(EventKind::StepFailed { step, error, .. }) => {
            assert_eq!(step, "b");
            assert!(error.contains("deadline"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    // while within the deadline, the next step runs
    assert!(matches!(
        decide(&state, &saga, hour_ago + TimeDelta::minutes(1)),
        Command::Attempt(a) if a.step.name() == "b"
    ));
    let resumed = w2.runner().resume(&saga, &old).await.unwrap();
    assert_eq!(resumed.status, SagaStatus::Compensated);
    assert!(
        resumed
            .problem()
            .is_some_and(|p| p.reason.contains("deadline"))
    );
}

#[tokio::test]
async fn a_backoff_counts_from_the_failure_it_follows() {
    let w = World::new(&[("a", 1)]);
    let saga = w.saga(
        "saga: s\nsteps:\n  - name: a\n    retry: {max_attempts: 2, initial_backoff: 10m}\n    action: {handler: flaky}\n    compensation: none\n",
    );
    // the first attempt fails; cut the log there
    let runner = w.runner();
    let run = tokio::spawn({
        let saga = saga.clone();
        async move { runner.run(&saga, json!({})).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    run.abort();
    let ids = rulesaga::saga::store::SagaIndex::unfinished(w.store.as_ref())
        .await
        .unwrap();
    let log = w.store.load(ids[0]).await.unwrap();
    let state = fold(&log).unwrap();
    assert_eq!(state.step_status("a"), StepStatus::Retrying);
    let failed_at = log.last().unwrap().at;
    match decide(&state, &saga, Utc::now()) {
        Command::Attempt(a) => {
            assert_eq!(a.number, 2);
            assert_eq!(a.not_before, Some(failed_at + TimeDelta::minutes(10)));
        }
        other => panic!("{other:?}"),
    }
}
