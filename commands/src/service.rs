//! Running a command: idempotency, optimistic-concurrency retries, metadata.
//!
//! [`CommandService::execute`] loads the aggregate (from its latest snapshot when
//! snapshots are on), runs `handle` on a copy, and commits the events through
//! [`PgEventRepository`], which stores them with their outbox rows and idempotency key
//! in one transaction.
//!
//! - **Idempotency**: with a key, a command already stored under `(actor, key)` is not
//!   run again; the first outcome is returned (`replayed: true`). The same key with a
//!   different command is refused. Two concurrent calls with one key race on the key's
//!   row: the loser answers with the winner's outcome, whether it lost on the key's
//!   row, on the aggregate's version, or to a refusal of the repeated command.
//! - **Conflicts**: two commands on one aggregate version collide on the events' key.
//!   Without an expected version, the command is decided again on fresh state, up to
//!   `max_attempts` times; with one (the client decided on what it saw), or when the
//!   attempts run out, the answer is [`CommandError::Conflict`]. Each conflict met counts
//!   in `coinfold_command_conflicts_total{aggregate}`, each new decision in
//!   `coinfold_command_retries_total{aggregate}`.
//!
//! Why `handle` runs on a copy: cqrs-es 0.5 applies events to the loaded aggregate as
//! `handle` writes them, and applies them again when it builds a snapshot, which would
//! fold every event of the command twice into the snapshot.

use std::fmt;

use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateError, EventStore};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::event_store::{
    ACTOR, COMMAND, IDEMPOTENCY_HASH, IDEMPOTENCY_KEY, IdempotencyKeyTaken, PgEventRepository,
    metadata_map,
};
use crate::reservations::ValueTaken;
use crate::trace_context::{self, TRACEPARENT, TRACESTATE};

/// Who sent a command: a user, or a part of the system acting on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    User(Uuid),
    System(String),
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::User(id) => write!(f, "user:{id}"),
            Actor::System(role) => write!(f, "system:{role}"),
        }
    }
}

/// What travels with a command besides its payload.
#[derive(Debug, Clone)]
pub struct CommandContext {
    pub actor: Actor,
    /// Shared by everything one request causes.
    pub correlation_id: Uuid,
    /// The event or command that caused this one, if any.
    pub causation_id: Option<Uuid>,
    /// The same key returns the first outcome instead of running the command again.
    pub idempotency_key: Option<String>,
    /// The version the client decided on; set, a conflict is not retried.
    pub expected_version: Option<usize>,
    /// What the client asked (e.g. a mutation's name and its normalized input; the
    /// user service sets it for a registration). Set, it is what an idempotency key is checked against instead of the
    /// command, which may carry values made per attempt (a new id, the time, a
    /// password's salt): a retried request then gets the first outcome.
    pub request: Option<String>,
}

impl CommandContext {
    pub fn new(actor: Actor) -> Self {
        Self {
            actor,
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            idempotency_key: None,
            expected_version: None,
            request: None,
        }
    }

    /// See [`CommandContext::request`].
    pub fn with_request(mut self, request: impl Into<String>) -> Self {
        self.request = Some(request.into());
        self
    }

    pub fn with_idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }
}

/// What a command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutcome {
    pub aggregate_id: String,
    /// The aggregate's version after the command.
    pub version: usize,
    /// How many events the command stored.
    pub events: usize,
    /// True when an idempotency key matched and the first outcome was returned.
    pub replayed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error> {
    #[error(transparent)]
    Rejected(E),
    #[error("the portfolio changed meanwhile; load it again and retry")]
    Conflict,
    #[error("this idempotency key was already used for a different command")]
    IdempotencyKeyReused,
    #[error("an idempotency key must be 1 to 255 characters, none of them a control character")]
    InvalidIdempotencyKey,
    /// A value that must be unique across aggregates (a username, an e-mail address).
    #[error("this {0} is already taken")]
    Taken(&'static str),
    #[error("the event store failed: {0}")]
    Store(Box<dyn std::error::Error + Send + Sync>),
}

#[derive(Debug, Clone, Copy)]
pub struct CommandOptions {
    /// Take a snapshot every this many events; None stores none.
    pub snapshot_every: Option<usize>,
    /// Attempts for a command that may be decided again after a conflict.
    pub max_attempts: usize,
}

impl Default for CommandOptions {
    fn default() -> Self {
        Self {
            snapshot_every: Some(100),
            max_attempts: 10,
        }
    }
}

pub struct CommandService<A: Aggregate> {
    store: PersistedEventStore<PgEventRepository, A>,
    repo: PgEventRepository,
    services: A::Services,
    max_attempts: usize,
}

impl<A> CommandService<A>
where
    A: Aggregate + Clone,
    A::Command: Serialize + Clone,
{
    pub fn new(repo: PgEventRepository, services: A::Services, options: CommandOptions) -> Self {
        let store = match options.snapshot_every {
            Some(every) if every > 0 => {
                PersistedEventStore::new_snapshot_store(repo.clone(), every)
            }
            _ => PersistedEventStore::new_event_store(repo.clone()),
        }
        .with_upcasters(crate::upcasting::upcasters_for(A::TYPE));
        Self {
            store,
            repo,
            services,
            max_attempts: options.max_attempts.max(1),
        }
    }

    /// The first outcome of the context's idempotency key, when the context names the
    /// client's request ([`CommandContext::request`]) and the key was used for it;
    /// `IdempotencyKeyReused` when it was used for another request. Lets a caller skip
    /// costly preparation (hashing a password) of a command that would be answered
    /// from the key anyway.
    pub async fn replayed(
        &self,
        context: &CommandContext,
    ) -> Result<Option<CommandOutcome>, CommandError<A::Error>> {
        let (Some(key), Some(request)) = (&context.idempotency_key, &context.request) else {
            return Ok(None);
        };
        let hash = request_hash(A::TYPE, "", &Value::String(request.clone()));
        self.stored_outcome(&context.actor, key, &hash).await
    }

    pub fn pool(&self) -> &sqlx::PgPool {
        self.repo.pool()
    }

    /// The aggregate as it stands now (its default when it has no events).
    pub async fn load(&self, aggregate_id: &str) -> Result<A, CommandError<A::Error>> {
        self.store
            .load_aggregate(aggregate_id)
            .await
            .map(|loaded| loaded.aggregate)
            .map_err(store_error)
    }

    #[tracing::instrument(
        name = "command",
        skip_all,
        fields(aggregate.type = A::TYPE, aggregate.id = aggregate_id, command = tracing::field::Empty)
    )]
    pub async fn execute(
        &self,
        aggregate_id: &str,
        command: A::Command,
        context: &CommandContext,
    ) -> Result<CommandOutcome, CommandError<A::Error>> {
        let body = serde_json::to_value(&command).map_err(|e| CommandError::Store(Box::new(e)))?;
        let name = command_name(&body);
        tracing::Span::current().record("command", name.as_str());
        let key = match &context.idempotency_key {
            // Control characters (a NUL above all) cannot be stored: PostgreSQL refuses
            // them in text and JSON, which answered INTERNAL.
            Some(key) if key.is_empty() || key.len() > 255 || key.chars().any(char::is_control) => {
                return Err(CommandError::InvalidIdempotencyKey);
            }
            other => other.clone(),
        };
        let hash = key.as_ref().map(|_| match &context.request {
            Some(request) => request_hash(A::TYPE, "", &Value::String(request.clone())),
            None => request_hash(A::TYPE, aggregate_id, &body),
        });
        let trace = trace_context::current();
        let metadata = metadata_map(&[
            (TRACEPARENT, trace.get(TRACEPARENT).cloned()),
            (TRACESTATE, trace.get(TRACESTATE).cloned()),
            (ACTOR, Some(context.actor.to_string())),
            ("correlation_id", Some(context.correlation_id.to_string())),
            (
                "causation_id",
                context.causation_id.map(|id| id.to_string()),
            ),
            (COMMAND, Some(name)),
            (IDEMPOTENCY_KEY, key.clone()),
            (IDEMPOTENCY_HASH, hash.clone()),
        ]);

        let mut attempt = 0;
        loop {
            attempt += 1;
            if let (Some(key), Some(hash)) = (&key, &hash)
                && let Some(outcome) = self.stored_outcome(&context.actor, key, hash).await?
            {
                return Ok(outcome);
            }
            let loaded = self
                .store
                .load_aggregate(aggregate_id)
                .await
                .map_err(store_error)?;
            if context
                .expected_version
                .is_some_and(|expected| expected != loaded.current_sequence)
            {
                return Err(CommandError::Conflict);
            }
            let version = loaded.current_sequence;
            let mut working = loaded.aggregate.clone();
            let sink = cqrs_es::event_sink::EventSink::<A>::default();
            if let Err(refusal) = working.handle(command.clone(), &self.services, &sink).await {
                // A concurrent call with the same key may have committed between our
                // look-up and our load: the aggregate then refuses the repeat (e.g. a
                // duplicate trade id), but the key's first outcome is the answer.
                if let (Some(key), Some(hash)) = (&key, &hash)
                    && let Some(outcome) = self.stored_outcome(&context.actor, key, hash).await?
                {
                    return Ok(outcome);
                }
                return Err(CommandError::Rejected(refusal));
            }
            let events = sink.collect().await;
            if events.is_empty() {
                return Ok(CommandOutcome {
                    aggregate_id: aggregate_id.to_owned(),
                    version,
                    events: 0,
                    replayed: false,
                });
            }
            match self.store.commit(events, loaded, metadata.clone()).await {
                Ok(committed) => {
                    return Ok(CommandOutcome {
                        aggregate_id: aggregate_id.to_owned(),
                        version: committed.last().map_or(version, |e| e.sequence),
                        events: committed.len(),
                        replayed: false,
                    });
                }
                Err(AggregateError::AggregateConflict)
                    if context.expected_version.is_none() && attempt < self.max_attempts =>
                {
                    metrics::counter!("coinfold_command_conflicts_total", "aggregate" => A::TYPE)
                        .increment(1);
                    metrics::counter!("coinfold_command_retries_total", "aggregate" => A::TYPE)
                        .increment(1);
                    tracing::debug!(
                        aggregate.id = aggregate_id,
                        attempt,
                        "conflict, deciding again"
                    );
                }
                Err(AggregateError::AggregateConflict) => {
                    metrics::counter!("coinfold_command_conflicts_total", "aggregate" => A::TYPE)
                        .increment(1);
                    return Err(CommandError::Conflict);
                }
                Err(AggregateError::UnexpectedError(e)) if e.is::<ValueTaken>() => {
                    let kind = e.downcast_ref::<ValueTaken>().map_or("value", |t| t.kind);
                    // The same key may have claimed it first: then that is the answer.
                    if let (Some(key), Some(hash)) = (&key, &hash)
                        && let Some(outcome) =
                            self.stored_outcome(&context.actor, key, hash).await?
                    {
                        return Ok(outcome);
                    }
                    return Err(CommandError::Taken(kind));
                }
                Err(AggregateError::UnexpectedError(e)) if e.is::<IdempotencyKeyTaken>() => {
                    // A concurrent call with the same key won; its outcome is the answer
                    // (the next turn of the loop finds it).
                }
                Err(other) => return Err(store_error(other)),
            }
        }
    }

    async fn stored_outcome(
        &self,
        actor: &Actor,
        key: &str,
        hash: &str,
    ) -> Result<Option<CommandOutcome>, CommandError<A::Error>> {
        let row: Option<(String, Value)> = sqlx::query_as(
            "SELECT encode(request_hash, 'hex'), response FROM idempotency_keys WHERE scope = $1 AND key = $2",
        )
        .bind(actor.to_string())
        .bind(key)
        .fetch_optional(self.repo.pool())
        .await
        .map_err(|e| CommandError::Store(Box::new(e)))?;
        let Some((stored_hash, response)) = row else {
            return Ok(None);
        };
        if stored_hash != hash {
            return Err(CommandError::IdempotencyKeyReused);
        }
        let number =
            |field: &str| response.get(field).and_then(Value::as_u64).unwrap_or(0) as usize;
        Ok(Some(CommandOutcome {
            aggregate_id: response
                .get("aggregate_id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            version: number("version"),
            events: number("events"),
            replayed: true,
        }))
    }
}

/// The variant name of an externally tagged command (`{"RecordTrade": {...}}`).
fn command_name(body: &Value) -> String {
    match body {
        Value::Object(map) if map.len() == 1 => map.keys().next().cloned().unwrap_or_default(),
        Value::String(name) => name.clone(),
        _ => String::new(),
    }
}

/// What identifies "the same command": aggregate type and id and the command's JSON.
fn request_hash(aggregate_type: &str, aggregate_id: &str, body: &Value) -> String {
    let mut hasher = Sha256::new();
    hasher.update(aggregate_type.as_bytes());
    hasher.update([0]);
    hasher.update(aggregate_id.as_bytes());
    hasher.update([0]);
    hasher.update(body.to_string().as_bytes());
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn store_error<E: std::error::Error>(error: AggregateError<E>) -> CommandError<E> {
    match error {
        AggregateError::UserError(e) => CommandError::Rejected(e),
        AggregateError::AggregateConflict => CommandError::Conflict,
        AggregateError::DatabaseConnectionError(e)
        | AggregateError::DeserializationError(e)
        | AggregateError::UnexpectedError(e) => CommandError::Store(e),
    }
}
