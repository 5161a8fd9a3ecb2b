//! Runner conformance through the API: compensation order, retries, timeouts,
//! pivot, skipped steps, events and the fold.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rulesaga::Source;
use rulesaga::repo::Repository;
use rulesaga::saga::store::contract::FailingAppends;
use rulesaga::saga::store::{EventLog, SagaIndex, append_events};
use rulesaga::saga::{
    Catalog, EventKind, FaultLayer, Faults, HandlerError, HandlerRegistry, MemoryStore, RunError,
    Runner, SagaStatus, SagaStore, StepStatus, fold, validate,
};
use serde_json::{Value as Json, json};

/// Calls seen by the recording handlers: (handler, step, attempt, key).
type Log = Arc<Mutex<Vec<(String, String, u32, String)>>>;

struct World {
    log: Log,
    handlers: HandlerRegistry,
    /// Step → attempts that fail before success (`u32::MAX`: always).
    fail_do: Arc<Mutex<HashMap<String, u32>>>,
    fail_undo: Arc<Mutex<HashMap<String, u32>>>,
    /// Effects of successful undo calls per step.
    undone: Arc<Mutex<HashMap<String, u32>>>,
}

fn world() -> World {
    let log: Log = Arc::default();
    let fail_do: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let fail_undo: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let undone: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let mut handlers = HandlerRegistry::with_builtins();
    {
        let (log, fail) = (log.clone(), fail_do.clone());
        handlers.register_sync("do", move |call| {
            log.lock().unwrap().push((
                "do".into(),
                call.step.clone(),
                call.attempt,
                call.idempotency_key.clone(),
            ));
            let fails = fail.lock().unwrap().get(&call.step).copied().unwrap_or(0);
            if call.attempt <= fails {
                return Err(HandlerError::transient(format!("{} broke", call.step)));
            }
            Ok(json!({"done": call.step}))
        });
    }
    {
        let (log, fail, undone) = (log.clone(), fail_undo.clone(), undone.clone());
        handlers.register_async("undo", move |call| {
            let (log, fail, undone) = (log.clone(), fail.clone(), undone.clone());
            async move {
                log.lock().unwrap().push((
                    "undo".into(),
                    call.step.clone(),
                    call.attempt,
                    call.idempotency_key.clone(),
                ));
                let fails = fail.lock().unwrap().get(&call.step).copied().unwrap_or(0);
                if call.attempt <= fails {
                    return Err(HandlerError::transient("undo broke"));
                }
                *undone.lock().unwrap().entry(call.step.clone()).or_default() += 1;
                Ok(Json::Null)
            }
        });
    }
    World {
        log,
        handlers,
        fail_do,
        fail_undo,
        undone,
    }
}

fn abcd(extra: &str) -> String {
    let mut s = String::from(
        "saga: abcd\ncompensation_retry: {max_attempts: 3, initial_backoff: 1ms}\nsteps:\n",
    );
    for n in ["a", "b", "c", "d"] {
        s.push_str(&format!(
            "  - name: {n}\n    action: {{handler: do}}\n    compensate: {{handler: undo}}\n"
        ));
    }
    s.push_str(extra);
    s
}

fn load(text: &str, w: &World) -> rulesaga::Saga {
    let catalog = Catalog {
        repositories: Some(vec!["log".into()]),
        ..Catalog::new(&w.handlers)
    };
    match validate::load(Source::new("test.yaml", text), &catalog) {
        Ok(s) => s,
        Err(d) => panic!("{d}"),
    }
}

/// A fresh in-memory store with an empty `log` repository.
fn mem() -> Arc<MemoryStore> {
    Arc::new(MemoryStore::with_repositories(&json!({"log": {}})).unwrap())
}

fn runner(w: &World, store: Arc<dyn SagaStore>) -> Runner {
    Runner::with_handlers(store, Arc::new(w.handlers.clone()), &[])
}

fn failed_step(state: &rulesaga::SagaState) -> Option<&str> {
    state.problem().map(|p| p.step.as_str())
}

fn calls(w: &World, handler: &str) -> Vec<String> {
    w.log
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.0 == handler)
        .map(|c| c.1.clone())
        .collect()
}

#[tokio::test]
async fn failure_at_d_compensates_c_b_a_once_each_in_order() {
    let w = world();
    w.fail_do.lock().unwrap().insert("d".into(), u32::MAX);
    let saga = load(&abcd(""), &w);
    let state = runner(&w, mem()).run(&saga, json!({})).await.unwrap();
    assert_eq!(state.status, SagaStatus::Compensated);
    assert_eq!(calls(&w, "undo"), ["c", "b", "a"]);
    assert_eq!(failed_step(&state), Some("d"));
    assert_eq!(state.step("d").unwrap().status, StepStatus::Failed);
    for n in ["a", "b", "c"] {
        assert_eq!(state.step(n).unwrap().status, StepStatus::Compensated);
    }
}

#[tokio::test]
async fn failure_at_a_compensates_nothing() {
    let w = world();
    w.fail_do.lock().unwrap().insert("a".into(), u32::MAX);
    let saga = load(&abcd(""), &w);
    let state = runner(&w, mem()).run(&saga, json!({})).await.unwrap();
    assert_eq!(state.status, SagaStatus::Compensated);
    assert!(calls(&w, "undo").is_empty());
    assert_eq!(calls(&w, "do"), ["a"]);
    // steps that never started are not in the state at all
    assert!(state.step("b").is_none());
}

#[tokio::test]
async fn compensation_failing_once_then_succeeding_changes_state_once() {
    let w = world();
    w.fail_do.lock().unwrap().insert("c".into(), u32::MAX);
    w.fail_undo.lock().unwrap().insert("b".into(), 1);
    let saga = load(&abcd(""), &w);
    let state = runner(&w, mem()).run(&saga, json!({})).await.unwrap();
    assert_eq!(state.status, SagaStatus::Compensated);
    assert_eq!(calls(&w, "undo"), ["b", "b", "a"]);
    assert_eq!(w.undone.lock().unwrap().get("b"), Some(&1));
    assert_eq!(state.step("b").unwrap().compensation_attempts, 2);
}

#[tokio::test]
async fn compensation_failing_for_good_leaves_the_saga_failed_naming_the_step() {
    let w = world();
    w.fail_do.lock().unwrap().insert("d".into(), u32::MAX);
    w.fail_undo.lock().unwrap().insert("b".into(), u32::MAX);
    let saga = load(&abcd(""), &w);
    let events = mem();
    let state = runner(&w, events.clone())
        .run(&saga, json!({}))
        .await
        .unwrap();
    assert_eq!(state.status, SagaStatus::Failed);
    assert_eq!(failed_step(&state), Some("b"));
    assert_eq!(
        state.step("b").unwrap().status,
        StepStatus::CompensationFailed
    );
    // three attempts by the compensation policy, then stop: `a` is left for an operator
    assert_eq!(calls(&w, "undo"), ["c", "b", "b", "b"]);
    let log = events.load(state.saga_id).await.unwrap();
    assert!(
        !log.iter()
            .any(|e| matches!(e.kind, EventKind::SagaCompensated))
    );
}

#[tokio::test]
async fn skipped_steps_are_not_compensated() {
    let w = world();
    w.fail_do.lock().unwrap().insert("d".into(), u32::MAX);
    let text = abcd("").replacen("  - name: b\n", "  - name: b\n    when: input.with_b\n", 1);
    let saga = load(&text, &w);
    let state = runner(&w, mem())
        .run(&saga, json!({"with_b": false}))
        .await
        .unwrap();
    assert_eq!(state.step("b").unwrap().status, StepStatus::Skipped);
    assert_eq!(calls(&w, "do"), ["a", "c", "d"]);
    assert_eq!(calls(&w, "undo"), ["c", "a"]);
    assert_eq!(state.status, SagaStatus::Compensated);
}

#[tokio::test]
async fn a_hung_handler_times_out_and_the_timed_out_step_is_compensated() {
    let w = world();
    let text = "saga: hang\nsteps:\n  - name: a\n    action: {handler: do}\n    compensate: {handler: undo}\n  - name: b\n    timeout: 20ms\n    action: {handler: sleep, args: {ms: 600000}}\n    compensate: {handler: undo}\n";
    let saga = load(text, &w);
    let state = runner(&w, mem()).run(&saga, json!({})).await.unwrap();
    let b = state.step("b").unwrap();
    assert!(b.timed_out);
    assert!(b.error.as_deref().unwrap().contains("timed out"));
    assert_eq!(b.status, StepStatus::Compensated);
    assert_eq!(calls(&w, "undo"), ["b", "a"]);
    assert_eq!(state.status, SagaStatus::Compensated);
}

#[tokio::test]
async fn retries_with_backoff_then_success_with_a_stable_idempotency_key() {
    let w = world();
    w.fail_do.lock().unwrap().insert("b".into(), 2);
    let text = abcd("").replacen(
        "  - name: b\n",
        "  - name: b\n    retry: {max_attempts: 3, initial_backoff: 1ms, max_backoff: 2ms, jitter: 0.5}\n",
        1,
    );
    let saga = load(&text, &w);
    let state = runner(&w, mem()).run(&saga, json!({})).await.unwrap();
    assert_eq!(state.status, SagaStatus::Completed);
    assert_eq!(state.step("b").unwrap().attempts, 3);
    let keys: Vec<String> = w
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.1 == "b")
        .map(|c| c.3.clone())
        .collect();
    assert_eq!(keys.len(), 3);
    assert!(keys.iter().all(|k| *k == format!("{}/b", state.saga_id)));
    let attempts: Vec<u32> = w
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.1 == "b")
        .map(|c| c.2)
        .collect();
    assert_eq!(attempts, [1, 2, 3]);
}

#[tokio::test]
async fn retries_exhausted_fail_the_step() {
    let w = world();
    w.fail_do.lock().unwrap().insert("b".into(), u32::MAX);
    let text = abcd("").replacen(
        "  - name: b\n",
        "  - name: b\n    retry: {max_attempts: 2, initial_backoff: 1ms}\n",
        1,
    );
    let saga = load(&text, &w);
    let state = runner(&w, mem()).run(&saga, json!({})).await.unwrap();
    assert_eq!(state.step("b").unwrap().attempts, 2);
    assert_eq!(calls(&w, "undo"), ["a"]);
}

#[tokio::test]
async fn permanent_handler_errors_are_not_retried() {
    let mut w = world();
    w.handlers
        .register_sync("nope", |_| Err(HandlerError::permanent("card declined")));
    let text = "saga: p\nsteps:\n  - name: a\n    retry: {max_attempts: 5, initial_backoff: 1ms}\n    action: {handler: nope}\n    compensation: none\n";
    let saga = load(text, &w);
    let state = runner(&w, mem()).run(&saga, json!({})).await.unwrap();
    assert_eq!(state.step("a").unwrap().attempts, 1);
    assert_eq!(
        state.problem().map(|p| p.reason.as_str()),
        Some("card declined")
    );
}

#[tokio::test]
async fn injected_faults_fail_the_given_attempts() {
    let w = world();
    let saga = load(
        &abcd("").replacen(
            "  - name: c\n",
            "  - name: c\n    retry: {max_attempts: 2, initial_backoff: 1ms}\n",
            1,
        ),
        &w,
    );
    let faults = Faults {
        actions: HashMap::from([("c".to_string(), Some(1))]),
        compensations: HashMap::new(),
    };
    let state = Runner::with_handlers(
        mem(),
        Arc::new(w.handlers.clone()),
        &[Arc::new(FaultLayer::new(faults))],
    )
    .run(&saga, json!({}))
    .await
    .unwrap();
    assert_eq!(state.status, SagaStatus::Completed);
    assert_eq!(state.step("c").unwrap().attempts, 2);
    // the injected failure never reached the handler
    assert_eq!(calls(&w, "do"), ["a", "b", "c", "d"]);
}

#[tokio::test]
async fn after_the_pivot_a_failure_leaves_the_saga_failed_and_undoes_nothing() {
    let mut w = world();
    w.handlers
        .register_sync("nope", |_| Err(HandlerError::permanent("gone")));
    let text = "saga: p\nsteps:\n  - name: a\n    action: {handler: do}\n    compensate: {handler: undo}\n  - name: b\n    pivot: true\n    action: {handler: do}\n  - name: c\n    retry: {max_attempts: unlimited, initial_backoff: 1ms}\n    action: {handler: nope}\n";
    let saga = load(text, &w);
    let state = runner(&w, mem()).run(&saga, json!({})).await.unwrap();
    assert_eq!(state.status, SagaStatus::Failed);
    assert_eq!(failed_step(&state), Some("c"));
    assert!(calls(&w, "undo").is_empty());
}

#[tokio::test]
async fn events_fold_into_the_state_and_are_written_ahead() {
    let w = world();
    w.fail_do.lock().unwrap().insert("c".into(), u32::MAX);
    let saga = load(&abcd(""), &w);
    let events = mem();
    let seen: Arc<Mutex<Vec<u64>>> = Arc::default();
    let subscriber = {
        let seen = seen.clone();
        Arc::new(move |e: &rulesaga::saga::Event| seen.lock().unwrap().push(e.seq))
    };
    let state = runner(&w, events.clone())
        .subscribe(subscriber)
        .run(&saga, json!({"x": 1}))
        .await
        .unwrap();
    let log = events.load(state.saga_id).await.unwrap();
    // the fold of the log is the state the runner returned
    assert_eq!(fold(&log).unwrap(), state);
    // sequence numbers are 1..=n with no gaps, and subscribers saw each once, in order
    let seqs: Vec<u64> = log.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=log.len() as u64).collect::<Vec<_>>());
    assert_eq!(*seen.lock().unwrap(), seqs);
    // every outcome follows its start
    for (i, e) in log.iter().enumerate() {
        if let EventKind::StepSucceeded { step, attempt, .. }
        | EventKind::StepFailed { step, attempt, .. } = &e.kind
        {
            assert!(
                matches!(&log[i - 1].kind, EventKind::StepStarted { step: s, attempt: a } if s == step && a == attempt)
            );
        }
    }
    match &log[0].kind {
        EventKind::SagaStarted(s) => {
            let (definition_hash, input) = (&s.definition_hash, &s.input);
            assert_eq!(definition_hash, saga.definition_hash());
            assert_eq!(input, &json!({"x": 1}));
            assert_eq!(
                events.pinned(definition_hash).await.unwrap().unwrap().text,
                saga.source().text
            );
        }
        other => panic!("first event is {other:?}"),
    }
    assert!(matches!(
        log.last().unwrap().kind,
        EventKind::SagaCompensated
    ));
    assert!(events.unfinished().await.unwrap().is_empty());
    assert_eq!(
        events
            .find_ids(&state.saga_id.to_string()[..8], 2)
            .await
            .unwrap(),
        vec![state.saga_id]
    );
}

#[tokio::test]
async fn resume_continues_from_the_log() {
    let w = world();
    w.fail_do.lock().unwrap().insert("c".into(), u32::MAX);
    let saga = load(&abcd(""), &w);
    let events = mem();
    let state = runner(&w, events.clone())
        .run(&saga, json!({}))
        .await
        .unwrap();
    let log = events.load(state.saga_id).await.unwrap();
    // cut the log right after compensation started, then resume
    let cut = log
        .iter()
        .position(|e| matches!(e.kind, EventKind::CompensationStarted { .. }))
        .unwrap()
        + 1;
    let w2 = world();
    let store2 = mem();
    append_events(store2.as_ref(), &log[..cut]).await.unwrap();
    let resumed = runner(&w2, store2.clone())
        .resume(&saga, &log[..cut])
        .await
        .unwrap();
    assert_eq!(resumed.status, SagaStatus::Compensated);
    assert_eq!(calls(&w2, "undo"), ["b", "a"]);
    assert!(calls(&w2, "do").is_empty());
}

#[tokio::test]
async fn input_is_checked_before_anything_runs() {
    let w = world();
    let saga = load(
        "saga: i\ninput:\n  order_id: string\n  qty: int\n  note: string?\nsteps:\n  - name: a\n    action: {handler: do}\n    compensation: none\n",
        &w,
    );
    let events = mem();
    let err = runner(&w, events.clone())
        .run(&saga, json!({"qty": "3"}))
        .await
        .unwrap_err();
    match err {
        RunError::Input(problems) => {
            assert_eq!(
                problems,
                [
                    "`input.order_id` is missing",
                    "input.qty: expected int, found string \"3\""
                ]
            );
        }
        other => panic!("{other}"),
    }
    assert!(events.list(&Default::default()).await.unwrap().is_empty());
    assert!(calls(&w, "do").is_empty());
    let ok = runner(&w, events)
        .run(&saga, json!({"order_id": "o", "qty": 3, "note": null}))
        .await
        .unwrap();
    assert_eq!(ok.status, SagaStatus::Completed);
}

#[tokio::test]
async fn built_in_actions_write_one_unit_per_step() {
    let w = world();
    let text = r#"saga: b
input: {id: string}
steps:
  - name: add
    action: {insert: log, id: input.id, values: {status: '"new"', n: 1, tags: [input.id, 2]}}
    compensate: {delete: log, id: input.id}
    outputs: {status: result.status}
  - name: read
    action: {get: log, id: input.id}
  - name: all
    action: {find: log}
  - name: touch
    action: {update: log, id: input.id, values: {status: steps.add.status, seen: true}}
    compensation: none
"#;
    let saga = load(text, &w);
    let repo = mem();
    let r = runner(&w, repo.clone());
    let state = r.run(&saga, json!({"id": "x1"})).await.unwrap();
    assert_eq!(state.status, SagaStatus::Completed);
    assert_eq!(state.output("add"), Some(&json!({"status": "new"})));
    assert_eq!(
        *state.output("all").unwrap(),
        json!([{"id": "x1", "status": "new", "n": 1, "tags": ["x1", 2]}])
    );
    let e = repo.get("log", "x1").unwrap().unwrap();
    assert_eq!(
        Json::Object(e),
        json!({"status": "new", "n": 1, "tags": ["x1", 2], "seen": true})
    );
}

#[tokio::test]
async fn a_deadline_stops_retries_and_compensates() {
    let w = world();
    w.fail_do.lock().unwrap().insert("b".into(), u32::MAX);
    let text = abcd("")
        .replacen("saga: abcd\n", "saga: abcd\ndeadline: 30ms\n", 1)
        .replacen("  - name: b\n", "  - name: b\n    retry: {max_attempts: unlimited, initial_backoff: 5ms, max_backoff: 5ms}\n", 1);
    let saga = load(&text, &w);
    tokio::time::timeout(Duration::from_secs(20), async {
        let state = runner(&w, mem()).run(&saga, json!({})).await.unwrap();
        assert_eq!(state.status, SagaStatus::Compensated);
        // the deadline ends b's retries; when it falls during an attempt (a loaded
        // machine), that attempt times out and may have happened: b is undone too
        if state.step("b").unwrap().timed_out {
            assert_eq!(calls(&w, "undo"), ["b", "a"]);
        } else {
            assert_eq!(calls(&w, "undo"), ["a"]);
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_hung_blocking_handler_is_abandoned_at_its_timeout() {
    let mut w = world();
    w.handlers.register_sync("stuck", |_| {
        std::thread::sleep(Duration::from_millis(300));
        Ok(Json::Null)
    });
    let text = "saga: hang\nsteps:\n  - name: a\n    timeout: 10ms\n    action: {handler: stuck}\n    compensate: {handler: undo}\n";
    let saga = load(text, &w);
    let state = runner(&w, mem()).run(&saga, json!({})).await.unwrap();
    assert!(state.step("a").unwrap().timed_out);
    assert_eq!(calls(&w, "undo"), ["a"]);
    assert_eq!(state.status, SagaStatus::Compensated);
}

#[tokio::test]
async fn a_store_failure_stops_the_saga_and_no_action_runs_unlogged() {
    let w = world();
    let saga = load(&abcd(""), &w);
    // commits: [saga started, a started], [a succeeded, b started], then the
    // commit of b's outcome (with c's start) fails: c must never run
    let inner = mem();
    let store = Arc::new(FailingAppends::new(inner.clone(), 2));
    let err = runner(&w, store.clone())
        .run(&saga, json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, RunError::Store(_)), "{err}");
    assert_eq!(calls(&w, "do"), ["a", "b"]);
    let id = inner.unfinished().await.unwrap()[0];
    let log = inner.load(id).await.unwrap();
    assert_eq!(log.len(), 4);
    // and the saga can be resumed from what was logged
    let w2 = world();
    let state = runner(&w2, mem()).resume(&saga, &log).await;
    // resuming appends to a fresh store that lacks the first events: a sequence conflict
    assert!(state.is_err());
    let fresh = mem();
    append_events(fresh.as_ref(), &log).await.unwrap();
    let state = runner(&w2, fresh).resume(&saga, &log).await.unwrap();
    assert_eq!(state.status, SagaStatus::Completed);
    // b's outcome was lost: it runs again, with the same idempotency key
    assert_eq!(calls(&w2, "do"), ["b", "c", "d"]);
    let key = |log: &Log| {
        log.lock()
            .unwrap()
            .iter()
            .find(|c| c.1 == "b")
            .unwrap()
            .3
            .clone()
    };
    assert_eq!(key(&w.log), key(&w2.log));
}

#[tokio::test]
async fn nested_input_is_checked_all_the_way_down_with_the_path_of_the_bad_value() {
    let w = world();
    let saga = load(
        "saga: i\ninput:\n  loans: 'list<{amount: number, defaulted: bool}>'\n  applicant: '{dob: date}'\n  tier: standard | vip\n  tags: list\n  extra: object?\nsteps:\n  - name: a\n    action: {handler: do}\n    compensation: none\n",
        &w,
    );
    let events = mem();
    let bad = json!({
        "loans": [{"amount": 1, "defaulted": false}, {"amount": "lots", "defaulted": "yes"}],
        "applicant": {"dob": "nope"},
        "tier": "gold",
        "tags": "a",
        "extra": 3,
    });
    match runner(&w, events.clone())
        .run(&saga, bad)
        .await
        .unwrap_err()
    {
        RunError::Input(problems) => assert_eq!(
            problems,
            [
                "input.applicant.dob: expected date, found string \"nope\"",
                "input.extra: expected {}, found int 3",
                "input.loans[1].amount: expected number, found string \"lots\"",
                "input.tags: expected list<any>, found string \"a\"",
                "input.tier: `gold` is not one of standard | vip",
            ]
        ),
        other => panic!("{other}"),
    }
    assert!(events.list(&Default::default()).await.unwrap().is_empty());
    assert!(calls(&w, "do").is_empty());
    let good = json!({
        "loans": [{"amount": 1.5, "defaulted": false}],
        "applicant": {"dob": "1990-02-03"},
        "tier": "vip",
        "tags": [],
    });
    let ok = runner(&w, events).run(&saga, good).await.unwrap();
    assert_eq!(ok.status, SagaStatus::Completed);
}

#[tokio::test]
async fn a_when_that_reads_a_value_that_is_not_boolean_fails_instead_of_skipping() {
    let w = world();
    let text = abcd("").replacen("  - name: b\n", "  - name: b\n    when: input.with_b\n", 1);
    let saga = load(&text, &w);
    let state = runner(&w, mem())
        .run(&saga, json!({"with_b": "yes"}))
        .await
        .unwrap();
    assert_eq!(failed_step(&state), Some("b"));
    let problem = state.problem().unwrap();
    assert!(
        problem
            .reason
            .contains("`input.with_b` is not true or false: it is string"),
        "{problem:?}"
    );
    assert_eq!(calls(&w, "do"), ["a"]);
    assert_eq!(calls(&w, "undo"), ["a"]);
    assert_eq!(state.status, SagaStatus::Compensated);
}

#[tokio::test]
async fn a_failed_expect_says_which_clause_failed_with_the_values_read() {
    let w = world();
    let text = r#"saga: e
input: {id: string, qty: int}
steps:
  - name: add
    action: {insert: log, id: input.id, values: {qty: 2, status: '"open"'}}
    compensate: {delete: log, id: input.id}
  - name: take
    action:
      update: log
      id: input.id
      values: {qty: entity.qty - input.qty}
      expect: 'entity.status == "open" and entity.qty >= input.qty'
    compensation: none
"#;
    let saga = load(text, &w);
    let state = runner(&w, mem())
        .run(&saga, json!({"id": "x", "qty": 5}))
        .await
        .unwrap();
    assert_eq!(failed_step(&state), Some("take"));
    let error = &state.problem().unwrap().reason;
    assert!(
        error.contains(
            "expected `entity.status == \"open\" and entity.qty >= input.qty` for `log/x`: "
        ),
        "{error}"
    );
    // the clause that failed, with the values it read; not the one that held
    assert!(error.ends_with(": needs entity.qty ≥ 5 (is 2)"), "{error}");
    assert_eq!(state.status, SagaStatus::Compensated);
}

#[tokio::test]
async fn a_step_costs_one_commit() {
    let w = world();
    w.fail_do.lock().unwrap().insert("d".into(), u32::MAX);
    let text = abcd("").replacen("  - name: b\n", "  - name: b\n    when: input.with_b\n", 1);
    let saga = load(&text, &w);
    let inner = mem();
    let store = Arc::new(FailingAppends::new(inner.clone(), usize::MAX));
    let state = runner(&w, store.clone())
        .run(&saga, json!({"with_b": false}))
        .await
        .unwrap();
    assert_eq!(state.status, SagaStatus::Compensated);
    assert_eq!(inner.load(state.saga_id).await.unwrap().len(), 14);
    // [saga started, a started], [a ok, b skipped, c started], [c ok, d started],
    // [d failed, compensation started, c undo started], [c undone, a undo started],
    // [a undone, saga compensated]: each outcome carries what follows it up to
    // the next start (the write-ahead test above checks that start is durable
    // before the action runs)
    assert_eq!(store.appends(), 6);
}

#[tokio::test]
async fn with_one_commit_per_step_each_start_is_still_durable_before_its_action_runs() {
    let inner = mem();
    let mut handlers = HandlerRegistry::with_builtins();
    let violations: Arc<Mutex<Vec<String>>> = Arc::default();
    {
        let (store, violations) = (inner.clone(), violations.clone());
        handlers.register_async("probe", move |call| {
            let (store, violations) = (store.clone(), violations.clone());
            async move {
                let log = store.load(call.saga_id).await.unwrap();
                let durable = matches!(
                    log.last().map(|e| &e.kind),
                    Some(EventKind::StepStarted { step, attempt }
                        | EventKind::StepCompensationStarted { step, attempt })
                        if *step == call.step && *attempt == call.attempt
                );
                if !durable {
                    violations
                        .lock()
                        .unwrap()
                        .push(call.idempotency_key.clone());
                }
                if call.step == "c" && !call.compensating {
                    return Err(HandlerError::permanent("c breaks"));
                }
                Ok(Json::Null)
            }
        });
    }
    let w = World {
        handlers,
        ..world()
    };
    let text = abcd("")
        .replace("handler: do", "handler: probe")
        .replace("handler: undo", "handler: probe");
    let saga = load(&text, &w);
    let state = runner(&w, inner.clone())
        .run(&saga, json!({}))
        .await
        .unwrap();
    assert_eq!(state.status, SagaStatus::Compensated);
    assert!(violations.lock().unwrap().is_empty(), "{violations:?}");
}
