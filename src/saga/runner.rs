//! Running a validated [`Saga`]: scheduling only.
//!
//! The runner asks [`decide`] what to do next and does it: append an event, or run
//! one attempt through the [`Executor`] (with its timeout, while keeping the lease),
//! then append the attempt's outcome. Every event is checked against the transition
//! table and applied to the run's state before it is appended in a [`Commit`] that
//! carries the lease's epoch (a process that lost its lease cannot append), the
//! step's repository writes, and the read-model update. "Step started" is durable
//! before an action is called; a saga is continued from its log alone
//! ([`Runner::resume`]).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value as Json};
use tracing::Instrument as _;
use uuid::Uuid;

use super::actions::{
    ActionCall, ActionError, ActionOutput, Builtin, Dispatch, Endpoints, ErrorClass, Executor,
    Handlers, Http, Layer, Phase, ResolveError, Services, Vars, process_vars, stack,
};
use super::decide::{Attempt, Command, attempt_timeout, decide, will_retry};
use super::events::{Event, EventKind, PinnedRules, SagaStart, StepName};
use super::handlers::HandlerRegistry;
use super::model::{Action, Require, Saga, Step, Undo};
use super::operator::OperatorAction;
use super::scope::{Scope, Steps, eval_context, id_string};
use super::state::{SagaState, TransitionError, fold};
use super::store::lease::after;
use super::store::{Commit, CommitError, Lease, LeaseOp, SagaStore, StoreError};
use crate::repo::{RepoError, UnitOfWork};
use crate::rules::Context;

/// A function called with every event the runner appended, once it is durable (the
/// live view, a message bus, a test's failpoint). A subscriber that panics is
/// contained: the saga goes on.
pub type Subscriber = Arc<dyn Fn(&Event) + Send + Sync>;

/// The default time to live of a lease.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(30);

/// Why a run could not start or continue.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The input does not match the saga's input schema (every problem listed).
    #[error("invalid input: {}", .0.join("; "))]
    Input(Vec<String>),
    /// The store refused or failed: the saga stopped without advancing (a sequence
    /// conflict, a lease held or taken over by another process, a duplicate key, I/O).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another process took the saga over while this run held it (this run's lease
    /// expired): the run stopped without advancing it.
    #[error(
        "saga `{saga_id}` was taken over by another process while this one ran it (its lease expired)"
    )]
    TakenOver {
        /// The saga.
        saga_id: Uuid,
        /// The lease as the store has it now.
        holder: Option<Lease>,
    },
    /// The saga's log holds an event that is not legal where it stands.
    #[error("the log is not legal: {0}")]
    Corrupt(#[from] TransitionError),
    /// The events do not belong to this saga definition.
    #[error("{0}")]
    Mismatch(String),
    /// An operator command does not apply to the saga as it stands.
    #[error("{0}")]
    Operator(String),
    /// The saga's services cannot be resolved (an environment variable is not set):
    /// nothing was appended.
    #[error("the saga's services cannot be resolved: {0}")]
    Services(#[from] ResolveError),
}

/// A new saga to start.
#[derive(Clone, Debug, PartialEq)]
pub struct Start {
    /// Its id (time-ordered by default).
    pub saga_id: Uuid,
    /// Its input.
    pub input: Json,
    /// The caller's business key: starting a saga of the same name with the same key
    /// again is refused with [`StoreError::DuplicateKey`] naming the first one.
    pub key: Option<String>,
}

impl Start {
    /// A saga with a fresh id and no key.
    pub fn new(input: Json) -> Start {
        Start {
            saga_id: Uuid::now_v7(),
            input,
            key: None,
        }
    }

    /// With a business key.
    pub fn with_key(mut self, key: Option<String>) -> Start {
        self.key = key;
        self
    }
}

/// Runs sagas: a store, an executor stack, subscribers, and this process's identity
/// for leases.
#[derive(Clone)]
pub struct Runner {
    store: Arc<dyn SagaStore>,
    executor: Arc<dyn Executor>,
    subscribers: Vec<Subscriber>,
    owner: Arc<str>,
    lease_ttl: Duration,
    services: Arc<Services>,
    vars: Vars,
    stop: Option<Arc<AtomicBool>>,
}

impl Runner {
    /// A runner whose actions go to `executor`.
    pub fn new(store: Arc<dyn SagaStore>, executor: Arc<dyn Executor>) -> Runner {
        Runner {
            store,
            executor,
            subscribers: Vec::new(),
            owner: Arc::from(super::store::lease::process_owner()),
            lease_ttl: DEFAULT_LEASE_TTL,
            services: Arc::new(Services::new()),
            vars: process_vars(),
            stop: None,
        }
    }

    /// Park runs when `stop` is set: a run looks at it before each next command (the
    /// attempt in flight finishes and its outcome is appended first), then stops with
    /// its saga left as it stands and its lease released, for a later `resume` or
    /// `recover` (a server's graceful shutdown).
    pub fn with_stop(mut self, stop: Arc<AtomicBool>) -> Runner {
        self.stop = Some(stop);
        self
    }

    /// Share the HTTP services (clients, breakers, bulkheads) of `services`, as every
    /// runner of a [`crate::saga::SagaService`] does.
    pub fn with_services(mut self, services: Arc<Services>) -> Runner {
        self.services = services;
        self
    }

    /// Read the environment variables of the saga's services through `vars` (default:
    /// the process environment).
    pub fn with_vars(mut self, vars: Vars) -> Runner {
        self.vars = vars;
        self
    }

    /// The saga's services, resolved for one run.
    fn endpoints(&self, saga: &Saga) -> Result<Endpoints, RunError> {
        if saga.services().is_empty() {
            return Ok(Endpoints::default());
        }
        Ok(self.services.resolve(saga.services(), &self.vars)?)
    }

    /// A runner with the standard executors (the repository verbs over `store`,
    /// `handlers`), wrapped in `layers` (the first outermost).
    pub fn with_handlers(
        store: Arc<dyn SagaStore>,
        handlers: Arc<HandlerRegistry>,
        layers: &[Arc<dyn Layer>],
    ) -> Runner {
        let dispatch = Dispatch {
            builtin: Builtin::new(store.clone()),
            handlers: Handlers::new(handlers),
            http: Http,
        };
        Runner::new(store, stack(Arc::new(dispatch), layers))
    }

    /// Also call `f` with every appended event.
    pub fn subscribe(mut self, f: Subscriber) -> Runner {
        self.subscribers.push(f);
        self
    }

    /// Take leases as `owner` (default: this process, `host:pid:nonce`).
    pub fn with_owner(mut self, owner: &str) -> Runner {
        self.owner = Arc::from(owner);
        self
    }

    /// Leases live this long without renewal (default 30 s; renewed every third of it).
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Runner {
        self.lease_ttl = ttl.max(Duration::from_millis(30));
        self
    }

    /// Who this runner's leases name.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn SagaStore> {
        &self.store
    }

    /// Check `input` against the saga's input schema ([`Saga::check_input`]).
    pub fn check_input(saga: &Saga, input: &Json) -> Result<(), RunError> {
        let problems = saga.check_input(input);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(RunError::Input(problems))
        }
    }

    /// Start a new saga with a fresh id and run it to a final status.
    pub async fn run(&self, saga: &Saga, input: Json) -> Result<SagaState, RunError> {
        self.start(saga, Start::new(input)).await
    }

    /// Start a new saga and run it to a final status. The definition and its rule
    /// files are pinned in the store first; the first event takes the saga's lease.
    pub async fn start(&self, saga: &Saga, start: Start) -> Result<SagaState, RunError> {
        Runner::check_input(saga, &start.input)?;
        let endpoints = self.endpoints(saga)?;
        let definition = &saga.source().text;
        self.store
            .pin(saga.definition_hash(), saga.name(), definition)
            .await?;
        let mut rules = Vec::with_capacity(saga.rule_files().len());
        for file in saga.rule_files() {
            self.store.pin(&file.hash, &file.name, &file.text).await?;
            rules.push(PinnedRules {
                name: file.name.clone(),
                hash: file.hash.clone(),
            });
        }
        let lease = Lease::first(start.saga_id, &self.owner, self.lease_ttl, Utc::now());
        let run = Run::new(
            self,
            saga,
            SagaState::default(),
            start.saga_id,
            lease,
            endpoints,
        );
        let first = EventKind::SagaStarted(Box::new(SagaStart {
            saga: saga.name().to_string(),
            version: saga.version(),
            definition_hash: saga.definition_hash().to_string(),
            input: start.input,
            key: start.key,
            rules,
        }));
        self.finish(run, Some(first)).await
    }

    /// Continue a saga from its events (a step started but not finished runs again
    /// with the same idempotency key; a compensating saga keeps compensating), after
    /// taking its lease: refused while another process holds a live one.
    pub async fn resume(&self, saga: &Saga, events: &[Event]) -> Result<SagaState, RunError> {
        let state = Runner::checked_fold(saga, events)?;
        if state.status.is_final() {
            return Ok(state);
        }
        self.drive_leased(saga, state, None).await
    }

    /// Apply an operator's action to a failed saga (appending its event, with the
    /// reason), then continue the saga from there.
    pub async fn operate(
        &self,
        saga: &Saga,
        events: &[Event],
        action: &OperatorAction,
    ) -> Result<SagaState, RunError> {
        let state = Runner::checked_fold(saga, events)?;
        let kind = action.event(&state).map_err(RunError::Operator)?;
        self.drive_leased(saga, state, Some(kind)).await
    }

    async fn drive_leased(
        &self,
        saga: &Saga,
        state: SagaState,
        first: Option<EventKind>,
    ) -> Result<SagaState, RunError> {
        let saga_id = state.saga_id;
        let endpoints = self.endpoints(saga)?;
        let lease = self
            .store
            .acquire(saga_id, &self.owner, self.lease_ttl)
            .await?;
        let run = Run::new(self, saga, state, saga_id, lease, endpoints);
        self.finish(run, first).await
    }

    /// Append `first` (if any), drive the run to a stop, and give up the lease if no
    /// final event did (a store failure stopped the run: others may continue it).
    async fn finish(
        &self,
        mut run: Run<'_>,
        first: Option<EventKind>,
    ) -> Result<SagaState, RunError> {
        let span = tracing::info_span!("saga", saga_id = %run.saga_id, saga = run.saga.name());
        let result = async {
            let next = match first {
                Some(kind) => unwritten(run.settle(kind, None, Utc::now()).await?)?,
                None => None,
            };
            run.drive(next).await
        }
        .instrument(span)
        .await;
        match &result {
            Ok(()) => {
                tracing::info!(saga_id = %run.saga_id, status = run.state.status.name(), "saga stopped")
            }
            Err(e) => tracing::warn!(saga_id = %run.saga_id, error = %e, "saga stopped early"),
        }
        if !run.released && run.state.last_seq > 0 {
            let _ = self.store.release(&run.lease).await;
        }
        result.map(|()| run.state)
    }

    /// Fold the log and check it belongs to `saga`.
    pub fn checked_fold(saga: &Saga, events: &[Event]) -> Result<SagaState, RunError> {
        let state = fold(events)?;
        if state.definition_hash != saga.definition_hash() {
            return Err(RunError::Mismatch(format!(
                "saga `{}` was started with definition {}, not {}",
                state.saga_id,
                state.definition_hash,
                saga.definition_hash()
            )));
        }
        if let Some(s) = state.steps.iter().find(|s| saga.step(&s.name).is_none()) {
            return Err(RunError::Mismatch(format!(
                "saga `{}` has events of step `{}`, which its definition lacks",
                state.saga_id, s.name
            )));
        }
        Ok(state)
    }

    fn notify(&self, event: &Event) {
        for s in &self.subscribers {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| s(event)));
        }
    }
}

/// One run in progress: the state, and the lease that lets it append.
struct Run<'r> {
    runner: &'r Runner,
    saga: &'r Saga,
    state: SagaState,
    saga_id: Uuid,
    lease: Lease,
    /// Appends from this time on extend the lease.
    renew_after: DateTime<Utc>,
    released: bool,
    ctx: Context,
    endpoints: Endpoints,
}

impl<'r> Run<'r> {
    fn new(
        runner: &'r Runner,
        saga: &'r Saga,
        state: SagaState,
        saga_id: Uuid,
        lease: Lease,
        endpoints: Endpoints,
    ) -> Run<'r> {
        let half = chrono::Duration::from_std(runner.lease_ttl / 2).unwrap_or_default();
        Run {
            runner,
            saga,
            state,
            saga_id,
            renew_after: lease.expires_at - half,
            lease,
            released: false,
            ctx: eval_context(),
            endpoints,
        }
    }

    /// Run commands until the saga stops. `next` is an attempt whose "started" event
    /// is already durable (appended with the outcome before it).
    async fn drive(&mut self, mut next: Option<Attempt<'r>>) -> Result<(), RunError> {
        loop {
            // parked between two events: an attempt started and not run is run
            // again by whoever continues the saga, with the same idempotency key
            if self
                .runner
                .stop
                .as_ref()
                .is_some_and(|s| s.load(Ordering::Relaxed))
            {
                tracing::info!(saga_id = %self.saga_id, "saga parked: the process is stopping");
                return Ok(());
            }
            if let Some(a) = next.take() {
                next = self.traced(a, true).await?;
                continue;
            }
            // one clock reading serves the decision and what it appends first
            let now = Utc::now();
            match decide(&self.state, self.saga, now) {
                Command::Stop => return Ok(()),
                Command::Append(kind) => next = unwritten(self.settle(kind, None, now).await?)?,
                Command::Attempt(a) => next = self.traced(a, false).await?,
            }
        }
    }

    /// [`Run::attempt`] inside a tracing span, when someone listens.
    async fn traced(
        &mut self,
        a: Attempt<'r>,
        started: bool,
    ) -> Result<Option<Attempt<'r>>, RunError> {
        // an attempt is a large future, and building a span costs even when nobody
        // listens: both only when someone does
        if !tracing::enabled!(kind: tracing::metadata::Kind::SPAN, tracing::Level::INFO) {
            return self.attempt(a, started).await;
        }
        let span = tracing::info_span!(
            "step",
            step = a.step.name(),
            phase = ?a.phase,
            attempt = a.number
        );
        self.attempt(a, started).instrument(span).await
    }

    /// Append an event that leaves no attempt in flight (an outcome, a skip, a
    /// saga-level event) with `writes`, together with what follows it without a
    /// wait or a call: more such events and the "started" of the next attempt, so
    /// a step costs one commit. The write-ahead rule holds: the attempt returned is
    /// durable as started before anything calls its action.
    fn settle(
        &mut self,
        kind: EventKind,
        writes: Option<UnitOfWork>,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<Result<Option<Attempt<'r>>, RepoError>, RunError>> + '_ {
        // not an `async fn`: a wrapper future would copy the commit's future into itself
        self.commit(kind, writes, at, true)
    }

    /// Apply `kind` to the state and append it with `writes`, all or nothing, in
    /// one commit; with `follow`, what follows it too ([`Run::settle`]).
    /// `Ok(Err(_))`: the writes do not apply; nothing was appended and the state is
    /// as before.
    ///
    /// Everything but the store's own (boxed) future is done before and after the
    /// one await, so this future stays small: it is built and moved on every step.
    async fn commit(
        &mut self,
        kind: EventKind,
        writes: Option<UnitOfWork>,
        at: DateTime<Utc>,
        follow: bool,
    ) -> Result<Result<Option<Attempt<'r>>, RepoError>, RunError> {
        let (events, writes, pending) = self.prepare(kind, writes, at, follow)?;
        let commit = Commit {
            events,
            writes,
            lease: LeaseOp {
                lease: Some(&self.lease),
                renew_until: pending.renew_until,
                release: pending.release,
            },
            state: &self.state,
            before: pending.before,
        };
        let outcome = self.runner.store.append(commit).await;
        self.appended(pending, outcome)
    }

    /// The events of one commit, applied to the state: `kind` and, with `follow`,
    /// what follows it.
    fn prepare(
        &mut self,
        kind: EventKind,
        writes: Option<UnitOfWork>,
        at: DateTime<Utc>,
        follow: bool,
    ) -> Result<(Vec<Event>, Option<UnitOfWork>, Pending<'r>), RunError> {
        let writes = writes.filter(|u| !u.writes.is_empty());
        let before = self.state.phase();
        let saved = writes.as_ref().map(|_| Box::new(self.state.clone()));
        let mut events = Vec::with_capacity(2);
        self.push(&mut events, kind, at)?;
        let next = if follow {
            self.follow(&mut events, at)?
        } else {
            None
        };
        let release = events.iter().any(|e| e.kind.is_final());
        // extend the lease when half of it is gone (a heartbeat covers long waits)
        let renew_until = (at >= self.renew_after).then(|| after(at, self.runner.lease_ttl));
        let pending = Pending {
            next,
            before,
            saved,
            at,
            release,
            renew_until,
            last: events.last().map(|e| (e.seq, e.kind.type_name())),
            copies: (!self.runner.subscribers.is_empty()).then(|| events.clone()),
        };
        Ok((events, writes, pending))
    }

    /// What an append's outcome does to the run: the lease's bookkeeping and the
    /// subscribers on success; on a write that does not apply, the state put back.
    fn appended(
        &mut self,
        pending: Pending<'r>,
        outcome: Result<(), CommitError>,
    ) -> Result<Result<Option<Attempt<'r>>, RepoError>, RunError> {
        match outcome {
            Ok(()) => {
                self.released |= pending.release;
                if pending.renew_until.is_some() {
                    self.renew_after = after(pending.at, self.runner.lease_ttl / 2);
                }
                if let Some((seq, ty)) = pending.last {
                    tracing::debug!(seq, event = ty, "appended");
                }
                for event in pending.copies.iter().flatten() {
                    self.runner.notify(event);
                }
                Ok(Ok(pending.next))
            }
            Err(CommitError::Repo(e)) => {
                if let Some(s) = pending.saved {
                    self.state = *s;
                }
                Ok(Err(e))
            }
            Err(CommitError::Store(e)) => Err(lost(e)),
        }
    }

    fn push(
        &mut self,
        events: &mut Vec<Event>,
        kind: EventKind,
        at: DateTime<Utc>,
    ) -> Result<(), RunError> {
        let event = Event {
            saga_id: self.saga_id,
            seq: self.state.last_seq + 1,
            at,
            kind,
        };
        self.state.apply(&event)?;
        events.push(event);
        Ok(())
    }

    /// Decide on from the state as `events` leave it, adding what needs neither a
    /// wait nor a call; stop at the next attempt (its "started" added) or at a wait.
    fn follow(
        &mut self,
        events: &mut Vec<Event>,
        at: DateTime<Utc>,
    ) -> Result<Option<Attempt<'r>>, RunError> {
        // bounded: every event moves the saga on, and a saga has finitely many steps
        for _ in 0..FOLLOW_LIMIT {
            match decide(&self.state, self.saga, at) {
                Command::Stop => return Ok(None),
                Command::Append(kind) => self.push(events, kind, at)?,
                Command::Attempt(a) => {
                    if a.not_before.is_some_and(|t| t > at)
                        || phase_action(a.step, a.phase).is_none()
                    {
                        return Ok(None);
                    }
                    match self.first_sight(&a) {
                        Some(kind) => self.push(events, kind, at)?,
                        None => {
                            self.push(events, started(a.phase, a.step.name.clone(), a.number), at)?;
                            return Ok(Some(a));
                        }
                    }
                }
            }
        }
        Ok(None)
    }

    /// A step seen for the first time whose `when` does not let it run: its
    /// skip, or its failure when the condition cannot be evaluated.
    fn first_sight(&self, a: &Attempt<'_>) -> Option<EventKind> {
        let when = a.step.when.as_ref().filter(|_| a.check_when)?;
        match when.matches(&self.scope(), &self.ctx) {
            Ok(true) => None,
            Ok(false) => Some(EventKind::StepSkipped {
                step: a.step.name.clone(),
            }),
            Err(e) => {
                let error = ActionError::permanent(format!("`when` failed: `{}`: {e}", when.text));
                Some(failed(a.phase, a.step.name.clone(), 0, &error, false))
            }
        }
    }

    fn scope(&self) -> Scope<'_> {
        Scope {
            input: &self.state.input,
            steps: Steps(&self.state.steps),
            entity: None,
            result: None,
        }
    }

    /// Run `fut` while keeping the lease: renewed every third of its time to live. A
    /// lease taken over meanwhile ends the wait (the action is abandoned: its outcome
    /// could not be appended anyway).
    async fn hold<T>(&self, fut: impl Future<Output = T>) -> Result<T, RunError> {
        let mut fut = std::pin::pin!(fut);
        let every = self.runner.lease_ttl / 3;
        loop {
            tokio::select! {
                biased;
                out = &mut fut => return Ok(out),
                () = tokio::time::sleep(every) => {
                    // a renewal that failed otherwise is tried again; the next append tells
                    if let Err(e @ StoreError::Fenced { .. }) =
                        self.runner.store.renew(&self.lease, self.runner.lease_ttl).await
                    {
                        return Err(lost(e));
                    }
                }
            }
        }
    }

    async fn sleep_until(&self, t: DateTime<Utc>) -> Result<(), RunError> {
        let wait = (t - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        if !wait.is_zero() {
            self.hold(tokio::time::sleep(wait)).await?;
        }
        Ok(())
    }

    /// One attempt of a step's action or compensation: `when` on first sight, the
    /// "started" event (unless `started`: already durable), the executor under the
    /// attempt's timeout, the outcome. Returns the next attempt when the outcome's
    /// commit also started it.
    async fn attempt(
        &mut self,
        a: Attempt<'r>,
        started: bool,
    ) -> Result<Option<Attempt<'r>>, RunError> {
        // an attempt started by the previous commit needs the clock only for a deadline
        let now = (!started).then(Utc::now);
        if let Some(now) = now {
            if let Some(t) = a.not_before
                && t > now
            {
                // the wait may have crossed the deadline: decide again
                self.sleep_until(t).await?;
                return Ok(None);
            }
            if let Some(kind) = self.first_sight(&a) {
                return unwritten(self.settle(kind, None, now).await?);
            }
        }
        let step = a.step;
        let name = &step.name;
        let Some(action) = phase_action(step, a.phase) else {
            return Err(RunError::Mismatch(format!(
                "step `{name}` has no compensation to run"
            )));
        };
        if let Some(now) = now {
            let kind = self::started(a.phase, name.clone(), a.number);
            unwritten(self.commit(kind, None, now, false).await?)?;
        }
        let result = {
            let call = ActionCall {
                saga_id: self.saga_id,
                saga: self.saga.name(),
                step: name,
                phase: a.phase,
                attempt: a.number,
                action,
                scope: self.scope(),
                ctx: &self.ctx,
                endpoints: &self.endpoints,
            };
            match self.guard(step, &call) {
                Ok(()) => {
                    let out = self
                        .execute(step, &call, || now.unwrap_or_else(Utc::now))
                        .await?;
                    out.and_then(|out| self.outputs(step, &call, out))
                }
                Err(e) => Err(e),
            }
        };
        let failure = match result {
            Ok((output, writes)) => {
                let kind = match a.phase {
                    Phase::Action => EventKind::StepSucceeded {
                        step: name.clone(),
                        attempt: a.number,
                        output,
                    },
                    Phase::Compensation => EventKind::StepCompensated {
                        step: name.clone(),
                        attempt: a.number,
                    },
                };
                match self.settle(kind, Some(writes), Utc::now()).await? {
                    Ok(next) => return Ok(next),
                    Err(e) => ActionError::from(e),
                }
            }
            Err(e) => e,
        };
        let now = Utc::now();
        let kind = self.failure(&a, &failure, now);
        unwritten(self.settle(kind, None, now).await?)
    }

    /// The event of a failed attempt, with whether another follows.
    fn failure(&self, a: &Attempt<'_>, e: &ActionError, now: DateTime<Utc>) -> EventKind {
        let retry = will_retry(&self.state, self.saga, a.step, a.phase, e.class, now);
        tracing::warn!(error = %e.message, class = ?e.class, will_retry = retry, "attempt failed");
        failed(a.phase, a.step.name.clone(), a.number, e, retry)
    }

    /// The step's guard (`require`), going forward.
    fn guard(&self, step: &Step, call: &ActionCall<'_>) -> Result<(), ActionError> {
        match step.require() {
            Some(req) if call.phase == Phase::Action => self.check_require(req),
            _ => Ok(()),
        }
    }

    /// The executor's call, under the attempt's timeout and while keeping the lease
    /// ([`Run::hold`]). An action that is done at its first poll (the repository
    /// verbs, most handlers) needs neither a timer nor a lease renewal, so only one
    /// that waits builds them (boxed, to keep the attempt's own future small: it is
    /// moved on every step). `now` is when the attempt started.
    async fn execute(
        &self,
        step: &Step,
        call: &ActionCall<'_>,
        now: impl FnOnce() -> DateTime<Utc>,
    ) -> Result<Result<ActionOutput, ActionError>, RunError> {
        let mut fut = self.runner.executor.execute(call);
        let first = std::future::poll_fn(|cx| std::task::Poll::Ready(fut.as_mut().poll(cx))).await;
        if let std::task::Poll::Ready(out) = first {
            return Ok(out);
        }
        let timeout = attempt_timeout(&self.state, self.saga, step, call.phase, now);
        Box::pin(self.hold(with_timeout(timeout, fut))).await
    }

    /// The result of an action, or (going forward) the step's outputs computed
    /// from it.
    fn outputs(
        &self,
        step: &Step,
        call: &ActionCall<'_>,
        out: ActionOutput,
    ) -> Result<(Json, UnitOfWork), ActionError> {
        if call.phase == Phase::Compensation || step.outputs().is_empty() {
            return Ok((out.result, out.writes));
        }
        let scope = Scope {
            result: Some(&out.result),
            ..self.scope()
        };
        let mut outputs = Map::new();
        for (name, v) in step.outputs() {
            if let Some(j) = scope.eval(v, &self.ctx).map_err(ActionError::permanent)? {
                outputs.insert(name.clone(), j);
            }
        }
        Ok((Json::Object(outputs), out.writes))
    }

    fn check_require(&self, req: &Require) -> Result<(), ActionError> {
        let scope = self.scope();
        let entity;
        let record: &dyn crate::value::Record = match &req.entity {
            None => &self.state.input,
            Some(e) => {
                let id = id_string(
                    scope
                        .eval(&e.id, &self.ctx)
                        .map_err(ActionError::permanent)?,
                    "`require` entity id",
                )
                .map_err(ActionError::permanent)?;
                entity = self.runner.store.get(&e.repo, &id)?.ok_or_else(|| {
                    ActionError::permanent(format!("`{}/{id}` not found", e.repo))
                })?;
                &entity
            }
        };
        match req.rule.program.matches(record, &self.ctx) {
            Ok(true) => Ok(()),
            Ok(false) => {
                let on = match &req.entity {
                    None => "the input".to_string(),
                    Some(e) => format!("the `{}` entity", e.repo),
                };
                let why = super::model::why_not(&req.rule.program, record, &self.ctx);
                Err(ActionError::permanent(format!(
                    "rule `{}` does not hold for {on}{why}",
                    req.rule.name
                )))
            }
            Err(e) => Err(ActionError::permanent(format!(
                "rule `{}`: {e}",
                req.rule.name
            ))),
        }
    }
}

/// A commit between its events being applied and the store's answer.
struct Pending<'r> {
    /// The attempt the commit starts, if any.
    next: Option<Attempt<'r>>,
    /// Where the saga stood before the commit.
    before: crate::saga::state::SagaPhase,
    /// The state before, when writes may fail to apply.
    saved: Option<Box<SagaState>>,
    at: DateTime<Utc>,
    release: bool,
    renew_until: Option<DateTime<Utc>>,
    /// The last event's sequence number and type (for the log).
    last: Option<(u64, &'static str)>,
    /// The events for the subscribers, when there are any.
    copies: Option<Vec<Event>>,
}

/// Events one commit may add after an outcome before it stops looking ahead (a
/// bound on a loop that every event moves forward anyway).
const FOLLOW_LIMIT: usize = 64;

/// The outcome of a commit without writes (so none can fail to apply).
fn unwritten<T>(r: Result<T, RepoError>) -> Result<T, RunError> {
    r.map_err(|e| RunError::Store(StoreError::Io(e.to_string())))
}

/// A store error met while holding the lease: fencing means the lease was lost.
fn lost(e: StoreError) -> RunError {
    match e {
        StoreError::Fenced { saga_id, holder } => RunError::TakenOver { saga_id, holder },
        other => RunError::Store(other),
    }
}

async fn with_timeout<T>(
    timeout: Option<Duration>,
    fut: impl Future<Output = Result<T, ActionError>>,
) -> Result<T, ActionError> {
    match timeout {
        None => fut.await,
        Some(t) => match tokio::time::timeout(t, fut).await {
            Ok(r) => r,
            Err(_) => Err(ActionError::new(
                ErrorClass::TimedOut,
                format!("timed out after {}", super::model::format_duration(t)),
            )),
        },
    }
}

fn started(phase: Phase, step: StepName, attempt: u32) -> EventKind {
    match phase {
        Phase::Action => EventKind::StepStarted { step, attempt },
        Phase::Compensation => EventKind::StepCompensationStarted { step, attempt },
    }
}

fn failed(
    phase: Phase,
    step: StepName,
    attempt: u32,
    e: &ActionError,
    will_retry: bool,
) -> EventKind {
    let conflict = e.class == ErrorClass::Conflict;
    let retry_after_ms = e
        .retry_after
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    match phase {
        Phase::Action => EventKind::StepFailed {
            step,
            attempt,
            error: e.message.clone(),
            timed_out: e.class == ErrorClass::TimedOut,
            will_retry,
            conflict,
            retry_after_ms,
        },
        Phase::Compensation => EventKind::CompensationFailed {
            step,
            attempt,
            error: e.message.clone(),
            will_retry,
            conflict,
            retry_after_ms,
        },
    }
}

/// The action a step's phase runs.
fn phase_action(step: &Step, phase: Phase) -> Option<&Action> {
    match phase {
        Phase::Action => Some(step.action()),
        Phase::Compensation => match step.undo() {
            Undo::Compensate(a) => Some(a),
            _ => None,
        },
    }
}
