//! The saga service: the one API for everything done to sagas, over one store.
//!
//! Start (with an optional business key), resume, recover, the operator commands,
//! and the queries (list, status, history) all go through [`SagaService`], which
//! also loads a saga's pinned definition and pinned rule files, so nothing but the
//! store is needed to continue a saga. The CLI is a thin layer over it; an
//! application that embeds rulesaga uses the same calls (or the whole CLI,
//! [`crate::cli::run_with`]) with its own handlers.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use uuid::Uuid;

use super::actions::{Layer, ServiceStatus, Services, Vars};
use super::events::Event;
use super::handlers::HandlerRegistry;
use super::model::Saga;
use super::operator::OperatorAction;
use super::read_model::{SagaFilter, SagaSummary, summary};
use super::runner::{RunError, Runner, Start, Subscriber};
use super::state::{SagaState, fold};
use super::store::{Lease, SagaStore, StoreError, is_id_fragment};
use super::validate::{Catalog, load};
use crate::diag::{Diagnostics, Source};
use crate::rules::{Env, RuleErrors, RuleSet};

/// Errors of the service.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No saga answers to the text.
    #[error("no saga `{0}`")]
    NotFound(String),
    /// More than one saga answers to the text.
    #[error("`{text}` names more than one saga ({}): give more of the id", .candidates.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", "))]
    Ambiguous {
        /// The text.
        text: String,
        /// Some of the sagas it names.
        candidates: Vec<Uuid>,
    },
    /// Another process holds the saga's lease.
    #[error("saga `{}` is being run by `{}` (lease epoch {}) until {}; it is left alone", .0.saga_id, .0.owner, .0.epoch, .0.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))]
    Held(Lease),
    /// The pinned definition does not validate here (a handler this program lacks,
    /// a repository the store lacks).
    #[error("the pinned definition of saga `{saga_id}` does not validate here")]
    Invalid {
        /// The saga.
        saga_id: Uuid,
        /// Why.
        diagnostics: Diagnostics,
    },
    /// The pinned rule files do not compile.
    #[error("the pinned rule files of saga `{saga_id}` do not compile")]
    Rules {
        /// The saga.
        saga_id: Uuid,
        /// Why.
        errors: RuleErrors,
    },
    /// The run failed.
    #[error(transparent)]
    Run(RunError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<RunError> for ServiceError {
    fn from(e: RunError) -> ServiceError {
        match e {
            RunError::Store(StoreError::Fenced {
                holder: Some(lease),
                ..
            }) => ServiceError::Held(lease),
            other => ServiceError::Run(other),
        }
    }
}

/// A started saga: the first one when the key was used already.
#[derive(Clone, Debug, PartialEq)]
pub struct Started {
    /// Where it stands.
    pub state: SagaState,
    /// True when a saga with the same name and key existed: nothing new ran.
    pub existing: bool,
}

/// One saga as `status` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct SagaReport {
    /// The summary.
    pub summary: SagaSummary,
    /// The state folded from the log.
    pub state: SagaState,
    /// Its lease, when a process holds a live one.
    pub lease: Option<Lease>,
}

impl SagaReport {
    /// The report as JSON: `saga status --output json` and `GET /v1/sagas/{id}`.
    pub fn to_json(&self) -> serde_json::Value {
        let (summary, state) = (&self.summary, &self.state);
        serde_json::json!({
            "saga_id": summary.saga_id,
            "saga": summary.saga,
            "key": summary.key,
            "status": summary.status,
            "started_at": summary.started_at,
            "updated_at": summary.updated_at,
            "last_seq": summary.last_seq,
            "failed_step": summary.failed_step,
            "reason": summary.reason,
            "definition_hash": state.definition_hash,
            "rules": state.rules,
            "input": state.input,
            "steps": state.steps,
            "lease": self.lease,
        })
    }
}

/// What recovery did with one saga.
#[derive(Debug)]
pub struct Recovered {
    /// The saga.
    pub saga_id: Uuid,
    /// Its final state, or why it was left alone or failed.
    pub outcome: Result<SagaState, ServiceError>,
}

/// Sagas over one store, with one set of handlers.
#[derive(Clone)]
pub struct SagaService {
    store: Arc<dyn SagaStore>,
    handlers: Arc<HandlerRegistry>,
    layers: Vec<Arc<dyn Layer>>,
    subscribers: Vec<Subscriber>,
    env: Env,
    owner: Option<String>,
    lease_ttl: Option<Duration>,
    services: Arc<Services>,
    vars: Option<Vars>,
    stop: Option<Arc<AtomicBool>>,
}

impl SagaService {
    /// A service over `store` calling `handlers`.
    pub fn new(store: Arc<dyn SagaStore>, handlers: HandlerRegistry) -> SagaService {
        SagaService {
            store,
            handlers: Arc::new(handlers),
            layers: Vec::new(),
            subscribers: Vec::new(),
            env: Env::new(),
            owner: None,
            lease_ttl: None,
            services: Arc::new(Services::new()),
            vars: None,
            stop: None,
        }
    }

    /// Park every run of this service (and its clones) once `stop` is set
    /// ([`Runner::with_stop`]).
    pub fn with_stop(mut self, stop: Arc<AtomicBool>) -> SagaService {
        self.stop = Some(stop);
        self
    }

    /// Read the environment variables of sagas' services through `vars` (default: the
    /// process environment).
    pub fn with_vars(mut self, vars: Vars) -> SagaService {
        self.vars = Some(vars);
        self
    }

    /// The HTTP services every run of this service (and its clones) has called: their
    /// breakers and bulkheads are shared by all of them.
    pub fn service_status(&self) -> Vec<ServiceStatus> {
        self.services.status()
    }

    /// Wrap every action in `layer` (added layers are inside earlier ones).
    pub fn with_layer(mut self, layer: Arc<dyn Layer>) -> SagaService {
        self.layers.push(layer);
        self
    }

    /// Call `f` with every event appended by this service's runs.
    pub fn subscribe(mut self, f: Subscriber) -> SagaService {
        self.subscribers.push(f);
        self
    }

    /// Compile rules and expressions in `env` (custom functions).
    pub fn with_env(mut self, env: Env) -> SagaService {
        self.env = env;
        self
    }

    /// Take leases as `owner` (default: this process).
    pub fn with_owner(mut self, owner: &str) -> SagaService {
        self.owner = Some(owner.to_string());
        self
    }

    /// Leases live this long without renewal (default 30 s).
    pub fn with_lease_ttl(mut self, ttl: Duration) -> SagaService {
        self.lease_ttl = Some(ttl);
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn SagaStore> {
        &self.store
    }

    /// The handlers.
    pub fn handlers(&self) -> &HandlerRegistry {
        &self.handlers
    }

    /// The environment rules compile in.
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// A runner for this service's store, handlers, layers and subscribers.
    pub fn runner(&self) -> Runner {
        let mut r = Runner::with_handlers(self.store.clone(), self.handlers.clone(), &self.layers)
            .with_services(self.services.clone());
        if let Some(v) = &self.vars {
            r = r.with_vars(v.clone());
        }
        for s in &self.subscribers {
            r = r.subscribe(s.clone());
        }
        if let Some(o) = &self.owner {
            r = r.with_owner(o);
        }
        if let Some(t) = self.lease_ttl {
            r = r.with_lease_ttl(t);
        }
        if let Some(s) = &self.stop {
            r = r.with_stop(s.clone());
        }
        r
    }

    /// What sagas may refer to here: this service's handlers, the store's
    /// repositories, and `rules`.
    pub fn catalog(&self, rules: Option<RuleSet>) -> Catalog {
        Catalog {
            repositories: Some(self.store.repositories()),
            rules,
            env: self.env.clone(),
            ..Catalog::new(&self.handlers)
        }
    }

    /// Validate a saga file against this service.
    pub fn load(&self, source: Arc<Source>, rules: Option<RuleSet>) -> Result<Saga, Diagnostics> {
        load(source, &self.catalog(rules))
    }

    /// Start a saga and run it to a final status. With a key that a saga of the same
    /// name already has, nothing runs: the first saga is returned as it stands.
    pub async fn start(&self, saga: &Saga, start: Start) -> Result<Started, ServiceError> {
        match self.runner().start(saga, start).await {
            Ok(state) => Ok(Started {
                state,
                existing: false,
            }),
            Err(RunError::Store(StoreError::DuplicateKey { saga_id, .. })) => {
                let events = self.store.load(saga_id).await?;
                let state = fold(&events).map_err(RunError::from)?;
                Ok(Started {
                    state,
                    existing: true,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The saga named by `text`: a whole id, a business key, or a unique prefix or
    /// suffix (at least 4 characters) of an id. A key wins over an id fragment.
    pub async fn resolve(&self, text: &str) -> Result<Uuid, ServiceError> {
        if let Ok(id) = Uuid::parse_str(text) {
            return Ok(id);
        }
        let by_key = self.store.by_key(text, 3).await?;
        match by_key.as_slice() {
            [one] => return Ok(one.saga_id),
            [] => {}
            many => {
                return Err(ServiceError::Ambiguous {
                    text: text.to_string(),
                    candidates: many.iter().map(|s| s.saga_id).collect(),
                });
            }
        }
        if text.len() < 4 || !is_id_fragment(text) {
            return Err(ServiceError::NotFound(text.to_string()));
        }
        match self.store.find_ids(text, 3).await?.as_slice() {
            [one] => Ok(*one),
            [] => Err(ServiceError::NotFound(text.to_string())),
            many => Err(ServiceError::Ambiguous {
                text: text.to_string(),
                candidates: many.to_vec(),
            }),
        }
    }

    /// A saga's events (never empty).
    pub async fn history(&self, id: Uuid) -> Result<Vec<Event>, ServiceError> {
        let events = self.store.load(id).await?;
        if events.is_empty() {
            return Err(ServiceError::NotFound(id.to_string()));
        }
        Ok(events)
    }

    /// One saga: its summary and state (folded from the log in one read), and who
    /// drives it.
    pub async fn status(&self, id: Uuid) -> Result<SagaReport, ServiceError> {
        let events = self.history(id).await?;
        let state = fold(&events).map_err(RunError::from)?;
        let at = events.last().map_or(state.started_at, |e| e.at);
        let lease = self
            .store
            .holder(id)
            .await?
            .filter(|l| l.is_live(chrono::Utc::now()));
        Ok(SagaReport {
            summary: summary(&state, at),
            state,
            lease,
        })
    }

    /// Sagas in the read model, most recently started first.
    pub async fn list(&self, filter: &SagaFilter) -> Result<Vec<SagaSummary>, ServiceError> {
        Ok(self.store.list(filter).await?)
    }

    /// A saga's pinned definition, validated with its pinned rule files against this
    /// service, and its events.
    pub async fn pinned(&self, id: Uuid) -> Result<(Saga, Vec<Event>), ServiceError> {
        let events = self.history(id).await?;
        let state = fold(&events).map_err(RunError::from)?;
        let missing = |what: String| {
            ServiceError::Store(StoreError::Io(format!(
                "{what} of saga `{id}` is not in the store"
            )))
        };
        let definition = self
            .store
            .pinned(&state.definition_hash)
            .await?
            .ok_or_else(|| missing(format!("the definition ({})", state.definition_hash)))?;
        let rules = if state.rules.is_empty() {
            None
        } else {
            let mut sources = Vec::with_capacity(state.rules.len());
            for r in &state.rules {
                let text = self
                    .store
                    .pinned(&r.hash)
                    .await?
                    .ok_or_else(|| missing(format!("rule file `{}` ({})", r.name, r.hash)))?;
                sources.push(Source::new(r.name.clone(), text.text));
            }
            Some(
                RuleSet::compile(sources, &self.env).map_err(|errors| ServiceError::Rules {
                    saga_id: id,
                    errors,
                })?,
            )
        };
        let short = state.definition_hash.get(..12).unwrap_or_default();
        let source = Source::new(
            format!("{} (pinned definition {short})", state.saga),
            definition.text,
        );
        let saga = self
            .load(source, rules)
            .map_err(|diagnostics| ServiceError::Invalid {
                saga_id: id,
                diagnostics,
            })?;
        Ok((saga, events))
    }

    /// Continue one saga with its pinned definition (left alone while another
    /// process holds its lease).
    pub async fn resume(&self, id: Uuid) -> Result<SagaState, ServiceError> {
        let (saga, events) = self.pinned(id).await?;
        Ok(self.runner().resume(&saga, &events).await?)
    }

    /// Apply an operator's action to a failed saga, then continue it.
    pub async fn operate(
        &self,
        id: Uuid,
        action: &OperatorAction,
    ) -> Result<SagaState, ServiceError> {
        let (saga, events) = self.pinned(id).await?;
        Ok(self.runner().operate(&saga, &events, action).await?)
    }

    /// Continue every saga left running or compensating, `concurrency` at a time,
    /// oldest first. Sagas whose lease another process holds are left alone (their
    /// outcome is [`ServiceError::Held`]).
    pub async fn recover(&self, concurrency: usize) -> Result<Vec<Recovered>, ServiceError> {
        let ids = self.store.unfinished().await?;
        let limit = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        for (idx, saga_id) in ids.into_iter().enumerate() {
            let (service, limit) = (self.clone(), limit.clone());
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await;
                let outcome = match service.store.holder(saga_id).await {
                    Ok(Some(l)) if l.is_live(chrono::Utc::now()) => Err(ServiceError::Held(l)),
                    Ok(_) => service.resume(saga_id).await,
                    Err(e) => Err(e.into()),
                };
                (idx, Recovered { saga_id, outcome })
            });
        }
        let mut out = Vec::new();
        while let Some(done) = tasks.join_next().await {
            if let Ok(r) = done {
                out.push(r);
            }
        }
        out.sort_by_key(|(idx, _)| *idx);
        Ok(out.into_iter().map(|(_, r)| r).collect())
    }
}
