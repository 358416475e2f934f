//! The shared PostgreSQL store (issue 16): one queue for many hosts, the implementation of
//! [`SharedStore`] (see `store::shared` for the contract, and why it is not a `Txn`). It
//! owns the schema, every statement against it and the connections (TLS in [`tls`]); it
//! is the only code of bgrun that knows SQL or the `postgres` crate.
//!
//! - Enqueue: `INSERT ... ON CONFLICT DO NOTHING` against a partial unique index on the
//!   dedup key (one live task per key, no race), overflow of `max_queue_size` drops the
//!   lowest priority visibly, and `NOTIFY bgrun_queue` wakes the workers at commit.
//! - Claim: `FOR UPDATE SKIP LOCKED` in effective-priority order, marking the rows running
//!   with a lease (token + expiry) in the same statement, under `max_concurrent_tasks` for
//!   the whole fleet and an optional per-host limit.
//! - Renew (heartbeat), requeue-expired (attempt + 1, or abandoned past `max_retries`;
//!   called by every bgrun command that opens the store), hand back, and a fenced finish:
//!   the result write checks the lease token, so a task never gets two results.
//! - Wake-ups: a listener thread on its own connection, `LISTEN bgrun_queue`.
//!
//! Nothing here is loaded unless a store URL is configured. Times are the database's
//! clock (Unix seconds), so hosts with skewed clocks agree on when a lease expired.

pub mod schema;
pub mod tls;

use std::collections::{HashMap, VecDeque};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use postgres::config::SslMode;
use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use postgres::types::Type;
use postgres::{Client, NoTls, Row, Statement};
use serde_json::Value;

use super::journal::Exec;
use super::shared::{
    ClaimOutcome, ClaimReq, Claimed, Enqueued, Finish, Listening, LiveRow, Renewed, Seen,
    SharedStore, Stopping, StoreStatus, TaskState, Turn, WorkerInfo, host_name, redact,
};
use crate::error;
use crate::model::Status;
use crate::results::{Sample, TaskResult};
use crate::state::task::Task;

/// The channel workers LISTEN on.
const CHANNEL: &str = "bgrun_queue";

/// Advisory lock keys: migrations, enqueue (exact queue-size bound), claims (fleet limit).
const LOCK_MIGRATE: i64 = 0x6267_7275_6e00_0001;
const LOCK_ENQUEUE: i64 = 0x6267_7275_6e00_0002;
/// Written into schema version 3's `bgrun_turn()` (a unit test holds them together).
#[cfg_attr(not(test), allow(dead_code))]
const LOCK_CLAIM: i64 = 0x6267_7275_6e00_0003;

/// How far `status` counts rows of one state before it says "at least".
const COUNT_CAP: i64 = 100_000;

/// Open a connection (exit 3 naming the URL when the database cannot be reached), with
/// TLS as the URL's `sslmode` asks (see [`tls`]).
fn connect(url: &str) -> Result<Client> {
    let shown = redact(url);
    let (rest, tls) = tls::split(url, &shown)?;
    let mut cfg = postgres::Config::from_str(&rest).map_err(|e| {
        error::usage(format!(
            "store URL {shown}: {e} (expected postgres://USER@HOST[:PORT]/DB)"
        ))
    })?;
    if cfg.get_connect_timeout().is_none() {
        cfg.connect_timeout(Duration::from_secs(5));
    }
    cfg.application_name("bgrun");
    // As libpq: no TLS over a Unix socket.
    let unix = cfg
        .get_hosts()
        .iter()
        .all(|h| !matches!(h, postgres::config::Host::Tcp(_)));
    let failed = |e: postgres::Error| {
        error::state(format!(
            "cannot connect to the store {shown}: {} (is PostgreSQL up? check --store, \
             $BGRUN_STORE or store.url{})",
            crate::error::chain(&e),
            if tls.mode == tls::Mode::Disable {
                ""
            } else {
                ", and its sslmode"
            }
        ))
    };
    if tls.mode == tls::Mode::Disable || unix {
        cfg.ssl_mode(SslMode::Disable);
        return cfg.connect(NoTls).map_err(failed);
    }
    cfg.ssl_mode(if tls.mode == tls::Mode::Prefer {
        SslMode::Prefer
    } else {
        SslMode::Require
    });
    let config = tls::client_config(&tls, &shown)?;
    cfg.connect(tokio_postgres_rustls::MakeRustlsConnect::new(config))
        .map_err(failed)
}

/// A connection to the shared store.
pub struct PgStore {
    client: Client,
    host: String,
    /// The URL it was opened with (for messages, redacted).
    url: String,
    /// The worker's hot statements, prepared once per connection.
    prepared: HashMap<&'static str, Statement>,
}

/// Runs of a task type: `(history row id, run)`.
type RunsByType = HashMap<String, Vec<(i64, Exec)>>;

/// The listener's backoff between failed connections: from 0.2 s, doubling, to 2 s.
const LISTEN_BACKOFF: (f64, f64) = (0.2, 2.0);
/// The longest wait for a notification before the listener checks its connection.
const LISTEN_WAIT: Duration = Duration::from_secs(60);

/// The listener's loop ([`SharedStore::listen`]), until `quit` is set.
fn listen(url: &str, wake: &dyn Fn(), quit: &AtomicBool) {
    let (min, max) = LISTEN_BACKOFF;
    let mut backoff = min;
    while !quit.load(Ordering::SeqCst) {
        let mut client = match connect(url) {
            Ok(c) => c,
            Err(_) => {
                std::thread::sleep(Duration::from_secs_f64(backoff));
                backoff = (backoff * 2.0).min(max);
                continue;
            }
        };
        if client.batch_execute(&format!("LISTEN {CHANNEL}")).is_err() {
            continue;
        }
        backoff = min;
        wake();
        loop {
            if quit.load(Ordering::SeqCst) {
                return;
            }
            let mut n = client.notifications();
            let mut it = n.timeout_iter(LISTEN_WAIT);
            match it.next() {
                Ok(Some(_)) => wake(),
                Ok(None) => {
                    drop(it);
                    drop(n);
                    if client.is_closed() || client.is_valid(Duration::from_secs(5)).is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        // Lost the server: wake the worker (it will find out too) and reconnect.
        wake();
    }
}

fn sql_now(c: &mut impl postgres::GenericClient) -> Result<f64> {
    let row = c.query_one("SELECT extract(epoch FROM clock_timestamp())::float8", &[])?;
    Ok(row.get(0))
}

impl PgStore {
    /// Connect; the schema must be current (else exit 3: run `bgrun store migrate`).
    pub fn open(url: &str) -> Result<PgStore> {
        let mut s = PgStore::open_unchecked(url)?;
        let v = s.schema_version()?;
        if v != schema::latest() {
            return Err(s.schema_error(v));
        }
        Ok(s)
    }

    /// Connect without checking the schema (for `store migrate` and `store status`).
    pub fn open_unchecked(url: &str) -> Result<PgStore> {
        Ok(PgStore {
            client: connect(url)?,
            host: host_name(),
            url: url.to_string(),
            prepared: HashMap::new(),
        })
    }

    /// The general enqueue, for when the queue may overflow: four round trips.
    fn enqueue_general(
        &mut self,
        tasks: &[Task],
        max_queue: usize,
        lease_s: f64,
    ) -> Result<(Vec<Enqueued>, Seen)> {
        // The lock comes in a statement of its own: the queue depth is read after it.
        self.client.batch_execute(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock({LOCK_ENQUEUE})"
        ))?;
        match self.enqueue_in_txn(tasks, max_queue, lease_s) {
            Ok(done) => {
                self.client
                    .batch_execute(&format!("SELECT pg_notify('{CHANNEL}', ''); COMMIT"))?;
                Ok(done)
            }
            Err(e) => {
                let _ = self.client.batch_execute("ROLLBACK");
                Err(e)
            }
        }
    }

    fn enqueue_in_txn(
        &mut self,
        tasks: &[Task],
        max_queue: usize,
        lease_s: f64,
    ) -> Result<(Vec<Enqueued>, Seen)> {
        let host = self.host.clone();
        let max_queue = i64::try_from(max_queue).unwrap_or(i64::MAX);
        let types: Vec<&str> = tasks.iter().map(|t| t.task_type.as_str()).collect();
        let info = self.client.query_typed_one(
            "SELECT (SELECT coalesce(max(version), 0) FROM bgrun_schema_version),
                    n.t,
                    (SELECT count(*) FROM (SELECT 1 FROM bgrun_tasks WHERE state = 'queued'
                       LIMIT $1) s),
                    (SELECT coalesce(jsonb_object_agg(task_type, factor), '{}')
                       FROM bgrun_types WHERE task_type = ANY($2)),
                    EXISTS (SELECT 1 FROM bgrun_tasks WHERE state = 'running'
                              AND lease_expires < n.t),
                    EXISTS (SELECT 1 FROM bgrun_workers WHERE stopped_at IS NULL
                              AND heartbeat_at > n.t - $3)
               FROM (SELECT extract(epoch FROM clock_timestamp())::float8 AS t) n",
            &[
                (&max_queue.saturating_add(1), Type::INT8),
                (&types, Type::TEXT_ARRAY),
                (&(2.0 * lease_s), Type::FLOAT8),
            ],
        );
        let info = match info {
            Ok(row) => row,
            Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => {
                return Err(self.schema_error(0));
            }
            Err(e) => return Err(e.into()),
        };
        let version: i32 = info.get(0);
        if version != schema::latest() {
            return Err(self.schema_error(version));
        }
        let now: f64 = info.get(1);
        let mut queued: i64 = info.get(2);
        let factors: Value = info.get(3);
        let seen = Seen {
            expired: info.get(4),
            worker_alive: info.get(5),
        };
        let mut out = Vec::with_capacity(tasks.len());
        for t in tasks {
            let mut t = t.clone();
            t.enqueued_at = now;
            t.first_enqueued_at = now;
            let key = t.dedup_key();
            let factor = factors
                .get(&t.task_type)
                .and_then(Value::as_f64)
                .unwrap_or(1.0);
            let json = serde_json::to_value(&t)?;
            let rows = self.client.query_typed(
                "WITH i AS (
                   INSERT INTO bgrun_tasks (dedup_key, task_type, priority, eff_priority, state,
                       attempt, max_retries, task, enqueued_at)
                   VALUES ($1, $2, $3, $4, 'queued', 0, $5, $6, $7)
                   ON CONFLICT (dedup_key) WHERE state IN ('queued', 'running') DO NOTHING
                   RETURNING id)
                 SELECT id, true FROM i
                 UNION ALL
                 SELECT id, false FROM bgrun_tasks WHERE dedup_key = $1
                    AND state IN ('queued', 'running') AND NOT EXISTS (SELECT 1 FROM i)",
                &[
                    (&key, Type::TEXT),
                    (&t.task_type, Type::TEXT),
                    (&t.priority, Type::INT8),
                    (&(t.priority as f64 * factor), Type::FLOAT8),
                    (
                        &i32::try_from(t.max_retries).unwrap_or(i32::MAX),
                        Type::INT4,
                    ),
                    (&json, Type::JSONB),
                    (&now, Type::FLOAT8),
                ],
            )?;
            let (id, inserted): (i64, bool) = match rows.first() {
                Some(r) => (r.get(0), r.get(1)),
                // The live duplicate committed while this statement ran: read it now.
                None => (
                    self.client
                        .query_one(
                            "SELECT id FROM bgrun_tasks WHERE dedup_key = $1
                               AND state IN ('queued', 'running')",
                            &[&key],
                        )?
                        .get(0),
                    false,
                ),
            };
            if !inserted {
                out.push(Enqueued::Duplicate { id: id.to_string() });
                continue;
            }
            t.id = id.to_string();
            t.seq = u64::try_from(id).unwrap_or(0);
            queued += 1;
            if queued <= max_queue {
                out.push(Enqueued::Queued {
                    id: t.id,
                    dropped: None,
                });
                continue;
            }
            // Overflow: drop the lowest base priority, the newest among equals.
            let victim = self.client.query_one(
                "SELECT id, task, attempt FROM bgrun_tasks WHERE state = 'queued'
                 ORDER BY priority ASC, id DESC LIMIT 1",
                &[],
            )?;
            let vid: i64 = victim.get(0);
            let mut vt: Task = serde_json::from_value(victim.get(1))?;
            vt.id = vid.to_string();
            vt.attempt = u32::try_from(victim.get::<_, i32>(2)).unwrap_or(0);
            let result = vt.dropped_result(now, max_queue);
            self.client.execute(
                "UPDATE bgrun_tasks SET state = 'done', final_status = 'dropped',
                   finished_at = $2 WHERE id = $1",
                &[&vid, &now],
            )?;
            insert_result(&mut self.client, vid, vt.attempt, &host, &result, now)?;
            queued -= 1;
            if vid == id {
                out.push(Enqueued::Dropped { result });
            } else {
                out.push(Enqueued::Queued {
                    id: t.id,
                    dropped: Some(result),
                });
            }
        }
        Ok((out, seen))
    }

    /// The error for a store whose schema is not the one this bgrun needs.
    fn schema_error(&self, version: i32) -> anyhow::Error {
        let latest = schema::latest();
        if version > latest {
            return error::state(format!(
                "the store {} has schema version {version}, newer than this bgrun knows \
                 ({latest}): upgrade bgrun",
                redact(&self.url)
            ));
        }
        error::state(format!(
            "the store {} has schema version {version}, this bgrun needs {latest}: run \
             `bgrun store migrate`",
            redact(&self.url)
        ))
    }

    /// A statement of the worker's turn, prepared once per connection (parsed and planned
    /// once, then one round trip each), with its rows.
    fn q(&mut self, sql: &'static str, params: &[(&(dyn ToSql + Sync), Type)]) -> Result<Vec<Row>> {
        let st = match self.prepared.get(sql) {
            Some(st) => st.clone(),
            None => {
                let types: Vec<Type> = params.iter().map(|p| p.1.clone()).collect();
                let st = self.client.prepare_typed(sql, &types)?;
                self.prepared.insert(sql, st.clone());
                st
            }
        };
        let values: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.0).collect();
        Ok(self.client.query(&st, &values)?)
    }

    /// Where a run's type changed its adaptive factor (from the type's runs before this turn,
    /// `prior`, and the ones this turn added, `new`, each `(id, Exec)`), store the factor
    /// and re-rank that type's queued tasks; keep the last 100 runs per type.
    fn update_factors(
        &mut self,
        stored: &HashMap<String, f64>,
        prior: &RunsByType,
        new: &RunsByType,
    ) -> Result<()> {
        for (ty, added) in new {
            let mut runs: Vec<&(i64, Exec)> = prior.get(ty).into_iter().flatten().collect();
            runs.extend(added.iter());
            runs.sort_by_key(|r| r.0);
            runs.dedup_by_key(|r| r.0);
            let h: VecDeque<Exec> = runs
                .iter()
                .rev()
                .take(10)
                .rev()
                .map(|r| r.1.clone())
                .collect();
            let factor = crate::queue::adaptive_factor(Some(&h));
            let old = stored.get(ty).copied();
            if old.is_none() && factor == 1.0 {
                // Queued tasks were ranked with 1.0 already: only remember the factor.
                self.q(
                    "INSERT INTO bgrun_types (task_type, factor) VALUES ($1, $2)
                     ON CONFLICT (task_type) DO UPDATE SET factor = EXCLUDED.factor",
                    &[(ty, Type::TEXT), (&factor, Type::FLOAT8)],
                )?;
            } else if old != Some(factor) {
                // Only the rows not ranked with this factor yet (another worker may have
                // re-ranked them a moment ago): no needless row locks against the claims.
                self.q(
                    "WITH f AS (INSERT INTO bgrun_types (task_type, factor) VALUES ($1, $2)
                       ON CONFLICT (task_type) DO UPDATE SET factor = EXCLUDED.factor)
                     UPDATE bgrun_tasks SET eff_priority = priority * $2::float8
                      WHERE state = 'queued' AND task_type = $1
                        AND eff_priority IS DISTINCT FROM priority * $2::float8",
                    &[(ty, Type::TEXT), (&factor, Type::FLOAT8)],
                )?;
            }
            let top = added.iter().map(|r| r.0).max().unwrap_or(0);
            if usize::try_from(top.rem_euclid(100)).unwrap_or(0) < added.len() {
                // Keep the last 100 executions per type (about once per 100 inserts).
                prune_history(&mut self.client, ty)?;
            }
        }
        Ok(())
    }

    /// The round trip of [`PgStore::finish_and_claim`]: `bgrun_turn()`'s rows sorted out,
    /// with what the adaptive factors need (stored factors, prior and new runs per type).
    #[allow(clippy::type_complexity)]
    fn turn(
        &mut self,
        done: &[Finish<'_>],
        claim: Option<&ClaimReq>,
    ) -> Result<(
        Vec<bool>,
        ClaimOutcome,
        (HashMap<String, f64>, RunsByType, RunsByType),
    )> {
        let mut ids = Vec::with_capacity(done.len());
        let mut tokens = Vec::with_capacity(done.len());
        let mut attempts = Vec::with_capacity(done.len());
        let mut run_attempts = Vec::with_capacity(done.len());
        let mut statuses = Vec::with_capacity(done.len());
        let mut retries: Vec<Option<Value>> = Vec::with_capacity(done.len());
        let mut delays = Vec::with_capacity(done.len());
        let mut results = Vec::with_capacity(done.len());
        let mut samples = Vec::with_capacity(done.len());
        let mut types: Vec<&str> = Vec::with_capacity(done.len());
        let mut ran = Vec::with_capacity(done.len());
        let mut oks = Vec::with_capacity(done.len());
        let mut durations = Vec::with_capacity(done.len());
        for f in done {
            let r = f.result;
            types.push(r.task_type.as_str());
            ran.push(!r.status.never_ran());
            oks.push(r.status == Status::Succeeded);
            durations.push(r.duration_s);
            ids.push(
                r.id.parse::<i64>()
                    .with_context(|| format!("task id {:?} is not a store id", r.id))?,
            );
            tokens.push(f.token);
            let attempt = f.retry.map_or(r.attempt, |t| t.attempt);
            attempts.push(i32::try_from(attempt).unwrap_or(i32::MAX));
            run_attempts.push(i32::try_from(r.attempt).unwrap_or(i32::MAX));
            statuses.push(r.status.as_str());
            retries.push(f.retry.map(serde_json::to_value).transpose()?);
            delays.push(f.retry.map_or(0.0, |t| t.retry_delay_s as f64));
            let mut v = serde_json::to_value(r)?;
            if let Value::Object(m) = &mut v {
                m.insert("host".to_string(), Value::String(self.host.clone()));
            }
            results.push(v);
            samples.push(serde_json::to_value(f.sample)?);
        }
        let host = self.host.clone();
        let (want, fleet_max, host_limit, lease, worker) = match claim {
            Some(c) => (
                i64::try_from(c.want).unwrap_or(i64::MAX),
                i64::try_from(c.fleet_max).unwrap_or(i64::MAX),
                c.host_limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX)),
                c.lease_s,
                c.worker_id,
            ),
            None => (0, 0, None, 0.0, 0),
        };
        let rows = self.q(
            "SELECT r_kind, r_id, r_ty, r_ok, r_x, r_y, r_doc, r_tok, r_n
               FROM bgrun_turn($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                               $15, $16, $17, $18, $19)",
            &[
                (&ids, Type::INT8_ARRAY),
                (&tokens, Type::TEXT_ARRAY),
                (&attempts, Type::INT4_ARRAY),
                (&run_attempts, Type::INT4_ARRAY),
                (&statuses, Type::TEXT_ARRAY),
                (&retries, Type::JSONB_ARRAY),
                (&delays, Type::FLOAT8_ARRAY),
                (&results, Type::JSONB_ARRAY),
                (&samples, Type::JSONB_ARRAY),
                (&host, Type::TEXT),
                (&types, Type::TEXT_ARRAY),
                (&ran, Type::BOOL_ARRAY),
                (&oks, Type::BOOL_ARRAY),
                (&durations, Type::FLOAT8_ARRAY),
                (&want, Type::INT8),
                (&fleet_max, Type::INT8),
                (&host_limit, Type::INT8),
                (&lease, Type::FLOAT8),
                (&worker, Type::INT8),
            ],
        )?;
        let mut kept: Vec<i64> = Vec::with_capacity(done.len());
        let mut stored: HashMap<String, f64> = HashMap::new();
        let mut prior: RunsByType = HashMap::new();
        let mut new: RunsByType = HashMap::new();
        let mut claimed: Vec<(f64, Claimed)> = Vec::new();
        let mut out = ClaimOutcome::default();
        let mut left = false;
        for row in &rows {
            let kind: &str = row.get(0);
            let id: Option<i64> = row.get(1);
            let ty: Option<String> = row.get(2);
            let x: Option<f64> = row.get(4);
            let exec = || Exec {
                ok: row.get::<_, Option<bool>>(3).unwrap_or(false),
                duration_s: x.unwrap_or(0.0),
                at: row.get::<_, Option<f64>>(5).unwrap_or(0.0),
            };
            match (kind, id, ty) {
                ("done", Some(id), _) => kept.push(id),
                ("new", Some(id), Some(ty)) => new.entry(ty).or_default().push((id, exec())),
                ("prior", Some(id), Some(ty)) => prior.entry(ty).or_default().push((id, exec())),
                ("factor", _, Some(ty)) => {
                    if let Some(f) = x {
                        stored.insert(ty, f);
                    }
                }
                ("claim", Some(id), _) => {
                    let doc: Value = row.get::<_, Option<Value>>(6).unwrap_or(Value::Null);
                    let mut task: Task = serde_json::from_value(doc)
                        .with_context(|| format!("reading claimed task {id} of the store"))?;
                    task.id = id.to_string();
                    task.seq = u64::try_from(id).unwrap_or(0);
                    task.attempt =
                        u32::try_from(row.get::<_, Option<i32>>(8).unwrap_or(0)).unwrap_or(0);
                    let token: Option<String> = row.get(7);
                    claimed.push((
                        x.unwrap_or(0.0),
                        Claimed {
                            task,
                            token: token.context("a claim without a lease token")?,
                        },
                    ));
                }
                ("left", _, _) => {
                    left = true;
                    out.full = row.get::<_, Option<bool>>(3).unwrap_or(false);
                    out.next_ready = x;
                    out.queued_left = row.get::<_, Option<i32>>(8).unwrap_or(0) > 0;
                }
                _ => {}
            }
        }
        let accepted: Vec<bool> = ids.iter().map(|i| kept.contains(i)).collect();
        claimed.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.task.seq.cmp(&b.1.task.seq)));
        out.claimed = claimed.into_iter().map(|(_, c)| c).collect();
        if claim.is_some() && !left {
            // As many as asked: there may be more.
            out.queued_left = true;
        }
        Ok((accepted, out, (stored, prior, new)))
    }

    /// Workers whose heartbeat is younger than `2 x lease_s`.
    fn workers(&mut self, lease_s: f64) -> Result<Vec<WorkerInfo>> {
        let now = sql_now(&mut self.client)?;
        let rows = self.client.query(
            "SELECT w.host, w.pid, w.started_at, w.heartbeat_at,
                    (SELECT count(*) FROM bgrun_tasks t
                      WHERE t.state = 'running' AND t.worker_id = w.id)
               FROM bgrun_workers w
              WHERE w.stopped_at IS NULL AND w.heartbeat_at > $1
              ORDER BY w.host, w.pid",
            &[&(now - 2.0 * lease_s)],
        )?;
        Ok(rows
            .iter()
            .map(|r| WorkerInfo {
                host: r.get(0),
                pid: r.get(1),
                started_at: crate::timefmt::rfc3339(r.get(2)),
                heartbeat_at: crate::timefmt::rfc3339(r.get(3)),
                running: r.get(4),
            })
            .collect())
    }
}

impl SharedStore for PgStore {
    fn latest_schema(&self) -> i32 {
        schema::latest()
    }

    fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// A thread with its own connection, `LISTEN bgrun_queue`: a wake per notification and
    /// after every (re)connection, and when the server is lost; reconnects with backoff.
    fn listen(&self, wake: Box<dyn Fn() + Send>) -> Listening {
        let quit = Arc::new(AtomicBool::new(false));
        let url = self.url.clone();
        let stop = quit.clone();
        std::thread::spawn(move || listen(&url, &*wake, &stop));
        Listening::new(quit)
    }

    /// Seconds until the soonest lease in the fleet expires, by the database's clock.
    fn next_expiry(&mut self) -> Result<Option<f64>> {
        Ok(self
            .client
            .query_one(
                "SELECT min(lease_expires) - extract(epoch FROM clock_timestamp())::float8
                   FROM bgrun_tasks WHERE state = 'running'",
                &[],
            )?
            .get(0))
    }

    /// The applied schema version (0 before the first migration).
    fn schema_version(&mut self) -> Result<i32> {
        match self.client.query_typed_one(
            "SELECT coalesce(max(version), 0) FROM bgrun_schema_version",
            &[],
        ) {
            Ok(row) => Ok(row.get(0)),
            Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    /// Apply every migration not yet applied; returns (from, to).
    fn migrate(&mut self) -> Result<(i32, i32)> {
        let mut tx = self.client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_MIGRATE])?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS bgrun_schema_version (
                version integer PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now())",
        )?;
        let from: i32 = tx
            .query_one(
                "SELECT coalesce(max(version), 0) FROM bgrun_schema_version",
                &[],
            )?
            .get(0);
        if from > schema::latest() {
            return Err(error::state(format!(
                "the store has schema version {from}, newer than this bgrun knows ({}): \
                 upgrade bgrun",
                schema::latest()
            )));
        }
        for (v, sql) in schema::MIGRATIONS.iter().filter(|(v, _)| *v > from) {
            tx.batch_execute(sql)
                .with_context(|| format!("store migration {v} failed"))?;
            tx.execute(
                "INSERT INTO bgrun_schema_version (version) VALUES ($1)",
                &[v],
            )?;
        }
        tx.commit()?;
        Ok((from, schema::latest()))
    }

    /// Queue tasks. One round trip in the common case: `bgrun_enqueue` (schema version 2)
    /// checks the schema version, locks, inserts with dedup, notifies, and reports expired
    /// leases and live workers. When the queue may overflow, the general path: the lock,
    /// one query for everything the command needs to know (schema version, database
    /// clock, queue depth, the types' adaptive factors, expired leases, live workers), one
    /// insert per task (with the duplicate's id in the same statement), and the
    /// notification with the commit. Dedup by the partial unique index; on overflow the
    /// lowest priority (the newest among equals, possibly the incoming task) is dropped and
    /// recorded. The schema version is checked here, so the caller connects with
    /// [`PgStore::open_unchecked`].
    fn enqueue(
        &mut self,
        tasks: &[Task],
        max_queue: usize,
        lease_s: f64,
    ) -> Result<(Vec<Enqueued>, Seen)> {
        // The common case in one round trip (schema version 2's `bgrun_enqueue`).
        let arg: Vec<Value> = tasks
            .iter()
            .map(|t| {
                Ok(serde_json::json!({
                    "key": t.dedup_key(),
                    "type": t.task_type,
                    "priority": t.priority,
                    "max_retries": t.max_retries,
                    "task": serde_json::to_value(t)?,
                }))
            })
            .collect::<Result<_>>()?;
        let arg = Value::Array(arg);
        let max = i64::try_from(max_queue).unwrap_or(i64::MAX - 1);
        let answer = self.client.query_typed_one(
            "SELECT bgrun_enqueue($1, $2, $3, $4)",
            &[
                (&schema::latest(), Type::INT4),
                (&arg, Type::JSONB),
                (&max, Type::INT8),
                (&lease_s, Type::FLOAT8),
            ],
        );
        let answer: Value = match answer {
            Ok(row) => row.get(0),
            Err(e) if e.code() == Some(&SqlState::UNDEFINED_FUNCTION) => {
                let v = self.schema_version()?;
                return Err(self.schema_error(v));
            }
            Err(e) => return Err(e.into()),
        };
        let version = answer
            .get("version")
            .and_then(Value::as_i64)
            .and_then(|v| i32::try_from(v).ok())
            .unwrap_or(0);
        if version != schema::latest() {
            return Err(self.schema_error(version));
        }
        if answer.get("overflow") == Some(&Value::Bool(true)) {
            return self.enqueue_general(tasks, max_queue, lease_s);
        }
        let ids = answer.get("ids").and_then(Value::as_array);
        let mut out = Vec::with_capacity(tasks.len());
        for pair in ids.into_iter().flatten() {
            let id = pair.get(0).and_then(Value::as_i64).unwrap_or(0).to_string();
            out.push(if pair.get(1) == Some(&Value::Bool(true)) {
                Enqueued::Queued { id, dropped: None }
            } else {
                Enqueued::Duplicate { id }
            });
        }
        if out.len() != tasks.len() {
            anyhow::bail!("the store answered the enqueue with {answer}");
        }
        let seen = Seen {
            expired: answer.get("expired") == Some(&Value::Bool(true)),
            worker_alive: answer.get("alive") == Some(&Value::Bool(true)),
        };
        Ok((out, seen))
    }

    /// One turn of a worker: record the finished runs (fenced by their lease tokens: a
    /// lost lease's result is refused, `false` in [`Turn::accepted`]), then, when `claim`
    /// is given, claim ready tasks, all in one round trip (`bgrun_turn()`, schema version
    /// 3) and one transaction committed without waiting for the disk (so the fleet-wide
    /// claim lock is held for the claim statement and the commit only, never across an
    /// fsync or a client round trip). The next round trip commits worker `flush_worker`'s
    /// heartbeat synchronously, which flushes the write-ahead log past the turn: only when
    /// [`Turn::durable`] is `Ok` may the turn be acted on. An `Err` of the call itself:
    /// nothing was committed. Where a type's adaptive factor changed, a statement more.
    fn finish_and_claim(
        &mut self,
        done: &[Finish<'_>],
        claim: Option<&ClaimReq>,
        flush_worker: i64,
    ) -> Result<Turn> {
        let (accepted, out, factors) = self.turn(done, claim)?;
        let durable = self
            .update_factors(&factors.0, &factors.1, &factors.2)
            .and_then(|()| {
                self.q(
                    "UPDATE bgrun_workers SET heartbeat_at =
                       extract(epoch FROM clock_timestamp()) WHERE id = $1",
                    &[(&flush_worker, Type::INT8)],
                )
                .map(drop)
            });
        Ok(Turn {
            accepted,
            out,
            durable,
        })
    }

    /// Renew the leases of `(id, token)` for `lease_s` and the worker's heartbeat; returns
    /// the ids whose lease is lost (re-queued by someone else: stop them, drop their result)
    /// and the ids `bgrun stop` asked to stop.
    fn renew(&mut self, worker_id: i64, held: &[(i64, String)], lease_s: f64) -> Result<Renewed> {
        let ids: Vec<i64> = held.iter().map(|h| h.0).collect();
        let tokens: Vec<String> = held.iter().map(|h| h.1.clone()).collect();
        let mut tx = self.client.transaction()?;
        let now = sql_now(&mut tx)?;
        tx.execute(
            "UPDATE bgrun_workers SET heartbeat_at = $2 WHERE id = $1",
            &[&worker_id, &now],
        )?;
        let rows = tx.query(
            "UPDATE bgrun_tasks t SET lease_expires = $3::float8 + $4::float8
               FROM unnest($1::bigint[], $2::text[]) AS u(id, tok)
              WHERE t.id = u.id AND t.lease_token = u.tok AND t.state = 'running'
             RETURNING t.id, t.stop_requested",
            &[&ids, &tokens, &now, &lease_s],
        )?;
        tx.commit()?;
        let kept: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        Ok(Renewed {
            lost: ids.into_iter().filter(|i| !kept.contains(i)).collect(),
            stop: rows.iter().filter(|r| r.get(1)).map(|r| r.get(0)).collect(),
        })
    }

    /// `bgrun stop`: queued tasks end as cancelled (with a result); running ones are marked
    /// for their worker to stop (it records them as cancelled). `None`: every live task.
    /// Returns (cancelled queued ids, ids asked to stop, ids not found live).
    fn stop(&mut self, ids: Option<&[i64]>) -> Result<Stopping> {
        let host = self.host.clone();
        let mut tx = self.client.transaction()?;
        let now = sql_now(&mut tx)?;
        let rows = match ids {
            Some(ids) => tx.query(
                "SELECT id, state, attempt, task FROM bgrun_tasks
                  WHERE id = ANY($1) AND state IN ('queued', 'running') FOR UPDATE",
                &[&ids],
            )?,
            None => tx.query(
                "SELECT id, state, attempt, task FROM bgrun_tasks
                  WHERE state IN ('queued', 'running') FOR UPDATE",
                &[],
            )?,
        };
        let mut out = Stopping::default();
        for row in rows {
            let id: i64 = row.get(0);
            let state: String = row.get(1);
            if state == "running" {
                tx.execute(
                    "UPDATE bgrun_tasks SET stop_requested = true WHERE id = $1",
                    &[&id],
                )?;
                out.stopping.push(id);
                continue;
            }
            let mut task: Task = serde_json::from_value(row.get(3))?;
            task.id = id.to_string();
            // The run it would have been: never made, so no result can exist for it.
            let attempt = u32::try_from(row.get::<_, i32>(2)).unwrap_or(0) + 1;
            let mut r = task.base_result(attempt, now);
            r.status = Status::Cancelled;
            r.error = Some("cancelled by `bgrun stop` before it ran".to_string());
            tx.execute(
                "UPDATE bgrun_tasks SET state = 'done', final_status = 'cancelled',
                   finished_at = $2 WHERE id = $1",
                &[&id, &now],
            )?;
            insert_result(&mut tx, id, attempt, &host, &r, now)?;
            out.cancelled.push(id);
        }
        if let Some(ids) = ids {
            out.missing = ids
                .iter()
                .filter(|i| !out.cancelled.contains(i) && !out.stopping.contains(i))
                .copied()
                .collect();
        }
        tx.execute("SELECT pg_notify($1, 'stop')", &[&CHANNEL])?;
        tx.commit()?;
        Ok(out)
    }

    /// Re-queue every task whose lease expired (attempt + 1), or end it as abandoned past
    /// its retries; each lost run gets its result. Cheap when nothing expired (an index
    /// probe). Returns the results recorded.
    fn requeue_expired(&mut self) -> Result<Vec<TaskResult>> {
        let host = self.host.clone();
        let now = sql_now(&mut self.client)?;
        let any = self.client.query_opt(
            "SELECT 1 FROM bgrun_tasks WHERE state = 'running' AND lease_expires < $1 LIMIT 1",
            &[&now],
        )?;
        if any.is_none() {
            return Ok(Vec::new());
        }
        let mut tx = self.client.transaction()?;
        let rows = tx.query(
            "SELECT id, attempt, max_retries, task, host, started_at FROM bgrun_tasks
              WHERE state = 'running' AND lease_expires < $1
              FOR UPDATE SKIP LOCKED",
            &[&now],
        )?;
        let mut out = Vec::new();
        let mut requeued = false;
        for row in rows {
            let id: i64 = row.get(0);
            let made = row.get::<_, i32>(1).saturating_add(1);
            let max_retries: i32 = row.get(2);
            let mut task: Task = serde_json::from_value(row.get(3))?;
            task.id = id.to_string();
            let ran_on: Option<String> = row.get(4);
            let started: Option<f64> = row.get(5);
            let retry = made <= max_retries;
            let mut r = task.base_result(u32::try_from(made).unwrap_or(0), now);
            r.status = Status::Abandoned;
            r.started_at = started.map(crate::timefmt::rfc3339);
            r.will_retry = retry;
            r.error = Some(format!(
                "the lease expired: the worker on {} stopped renewing it (died or lost the \
                 database){}",
                ran_on.as_deref().unwrap_or("?"),
                if retry { "; re-queued" } else { "" }
            ));
            let ran_on = ran_on.unwrap_or_else(|| host.clone());
            let v = insert_result(
                &mut tx,
                id,
                u32::try_from(made).unwrap_or(0),
                &ran_on,
                &r,
                now,
            )?;
            record_history(&mut tx, &task.task_type, false, 0.0, now)?;
            if retry {
                task.attempt = u32::try_from(made).unwrap_or(0);
                task.enqueued_at = now;
                task.not_before = None;
                tx.execute(
                    "UPDATE bgrun_tasks SET state = 'queued', attempt = $2, task = $3,
                       lease_token = NULL, lease_expires = NULL, worker_id = NULL, host = NULL,
                       started_at = NULL, not_before = NULL WHERE id = $1",
                    &[&id, &made, &serde_json::to_value(&task)?],
                )?;
                requeued = true;
            } else {
                tx.execute(
                    "UPDATE bgrun_tasks SET state = 'done', attempt = $2, final_status =
                       'abandoned', finished_at = $3, lease_token = NULL WHERE id = $1",
                    &[&id, &made, &now],
                )?;
            }
            out.push(v);
        }
        if requeued {
            tx.execute("SELECT pg_notify($1, '')", &[&CHANNEL])?;
        }
        tx.commit()?;
        Ok(out
            .into_iter()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect())
    }

    /// Give claimed tasks back to the queue unrun (a worker stopping): same attempt.
    fn hand_back(&mut self, held: &[(i64, String)]) -> Result<usize> {
        if held.is_empty() {
            return Ok(0);
        }
        let ids: Vec<i64> = held.iter().map(|h| h.0).collect();
        let tokens: Vec<String> = held.iter().map(|h| h.1.clone()).collect();
        let mut tx = self.client.transaction()?;
        let n = tx.execute(
            "UPDATE bgrun_tasks t SET state = 'queued', lease_token = NULL,
                 lease_expires = NULL, worker_id = NULL, host = NULL, started_at = NULL
               FROM unnest($1::bigint[], $2::text[]) AS u(id, tok)
              WHERE t.id = u.id AND t.lease_token = u.tok AND t.state = 'running'",
            &[&ids, &tokens],
        )?;
        tx.execute("SELECT pg_notify($1, '')", &[&CHANNEL])?;
        tx.commit()?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Register a worker of this host; returns its id.
    fn register_worker(&mut self) -> Result<i64> {
        let now = sql_now(&mut self.client)?;
        let pid = i32::try_from(std::process::id()).unwrap_or(0);
        let row = self.client.query_one(
            "INSERT INTO bgrun_workers (host, pid, started_at, heartbeat_at)
             VALUES ($1, $2, $3, $3) RETURNING id",
            &[&self.host, &pid, &now],
        )?;
        Ok(row.get(0))
    }

    fn unregister_worker(&mut self, worker_id: i64) -> Result<()> {
        let now = sql_now(&mut self.client)?;
        self.client.execute(
            "UPDATE bgrun_workers SET stopped_at = $2 WHERE id = $1",
            &[&worker_id, &now],
        )?;
        Ok(())
    }

    /// Version, bounded queue depth by state, live workers.
    fn status(&mut self, lease_s: f64) -> Result<StoreStatus> {
        let version = self.schema_version()?;
        let mut s = StoreStatus {
            url: redact(&self.url),
            schema_version: version,
            latest_version: schema::latest(),
            queued: 0,
            running: 0,
            done: 0,
            capped: false,
            workers: Vec::new(),
        };
        if version == 0 {
            return Ok(s);
        }
        s.queued = count_state(&mut self.client, "queued", COUNT_CAP)?;
        s.running = count_state(&mut self.client, "running", COUNT_CAP)?;
        s.done = count_state(&mut self.client, "done", COUNT_CAP)?;
        s.capped = [s.queued, s.running, s.done].contains(&COUNT_CAP);
        s.workers = self.workers(lease_s)?;
        Ok(s)
    }

    /// The state of task `id` (`queued`, `running`, `done`), when the store has it.
    fn state_of(&mut self, id: i64) -> Result<Option<TaskState>> {
        let state: Option<String> = self
            .client
            .query_opt("SELECT state FROM bgrun_tasks WHERE id = $1", &[&id])?
            .map(|r| r.get(0));
        Ok(match state.as_deref() {
            Some("queued") => Some(TaskState::Queued),
            Some("running") => Some(TaskState::Running),
            Some(_) => Some(TaskState::Done),
            None => None,
        })
    }

    /// Running tasks (with their host and start) and queued ones in run order (with their
    /// effective priority), at most `limit` of each.
    fn live_rows(&mut self, limit: i64) -> Result<Vec<LiveRow>> {
        let rows = self.client.query(
            "(SELECT id, state, attempt, not_before, eff_priority, host, started_at, task
                FROM bgrun_tasks WHERE state = 'running' ORDER BY started_at, id LIMIT $1)
             UNION ALL
             (SELECT id, state, attempt, not_before, eff_priority, host, started_at, task
                FROM bgrun_tasks WHERE state = 'queued'
               ORDER BY eff_priority DESC, id LIMIT $1)",
            &[&limit],
        )?;
        rows.iter()
            .map(|r| {
                let id: i64 = r.get(0);
                let mut task: Task = serde_json::from_value(r.get(7))
                    .with_context(|| format!("reading task {id} of the store"))?;
                task.id = id.to_string();
                task.attempt = u32::try_from(r.get::<_, i32>(2)).unwrap_or(0);
                task.not_before = r.get(3);
                Ok(LiveRow {
                    running: r.get::<_, String>(1) == "running",
                    task,
                    eff_priority: r.get(4),
                    host: r.get(5),
                    started_at: r.get(6),
                })
            })
            .collect()
    }

    /// Stored results, newest first (each names its host); of one task when `id` is given.
    fn results(&mut self, id: Option<&str>, last: usize) -> Result<Vec<TaskResult>> {
        let last = i64::try_from(last).unwrap_or(i64::MAX);
        let rows = match id {
            Some(id) => {
                let Ok(n) = id.parse::<i64>() else {
                    return Ok(Vec::new());
                };
                self.client.query(
                    "SELECT result FROM bgrun_results WHERE task_id = $1
                      ORDER BY attempt DESC LIMIT $2",
                    &[&n, &last],
                )?
            }
            None => self.client.query(
                "SELECT result FROM bgrun_results ORDER BY finished_at DESC LIMIT $1",
                &[&last],
            )?,
        };
        rows.iter()
            .map(|r| serde_json::from_value(r.get(0)).context("reading a result of the store"))
            .collect()
    }

    /// Metrics samples since `since` (Unix seconds), the newest `limit` at most.
    fn samples(&mut self, since: f64, limit: i64) -> Result<Vec<Sample>> {
        let rows = self.client.query(
            "SELECT sample FROM (SELECT sample, id FROM bgrun_metrics WHERE at >= $1
               ORDER BY id DESC LIMIT $2) s ORDER BY id",
            &[&since, &limit],
        )?;
        Ok(rows
            .iter()
            .filter_map(|r| serde_json::from_value(r.get(0)).ok())
            .collect())
    }

    /// Retention: results and finished tasks older than `results_days`, metrics samples
    /// older than `metrics_days`, stopped or silent workers older than a day. Returns the
    /// rows removed (results, tasks, samples, workers).
    fn cleanup(&mut self, results_days: u64, metrics_days: u64) -> Result<[u64; 4]> {
        let now = sql_now(&mut self.client)?;
        let r_cut = now - results_days as f64 * 86_400.0;
        let m_cut = now - metrics_days as f64 * 86_400.0;
        let mut tx = self.client.transaction()?;
        let results = tx.execute(
            "DELETE FROM bgrun_results WHERE finished_at < $1",
            &[&r_cut],
        )?;
        let tasks = tx.execute(
            "DELETE FROM bgrun_tasks WHERE state = 'done' AND finished_at < $1",
            &[&r_cut],
        )?;
        let samples = tx.execute("DELETE FROM bgrun_metrics WHERE at < $1", &[&m_cut])?;
        let workers = tx.execute(
            "DELETE FROM bgrun_workers WHERE heartbeat_at < $1",
            &[&(now - 86_400.0)],
        )?;
        tx.commit()?;
        Ok([results, tasks, samples, workers])
    }

    /// Whether any worker is alive.
    fn any_worker(&mut self, lease_s: f64) -> Result<bool> {
        let now = sql_now(&mut self.client)?;
        Ok(self
            .client
            .query_opt(
                "SELECT 1 FROM bgrun_workers WHERE stopped_at IS NULL AND heartbeat_at > $1
                 LIMIT 1",
                &[&(now - 2.0 * lease_s)],
            )?
            .is_some())
    }
}

/// Rows of one state, counted up to `cap` (never a full scan of a huge table).
fn count_state(c: &mut impl postgres::GenericClient, state: &str, cap: i64) -> Result<i64> {
    let row = c.query_one(
        "SELECT count(*) FROM (SELECT 1 FROM bgrun_tasks WHERE state = $1 LIMIT $2) s",
        &[&state, &cap],
    )?;
    Ok(row.get(0))
}

/// Insert a run's result (naming its host); a second result for the same run is refused
/// by the primary key. Returns the stored JSON.
fn insert_result(
    c: &mut impl postgres::GenericClient,
    id: i64,
    attempt: u32,
    host: &str,
    r: &TaskResult,
    now: f64,
) -> Result<Value> {
    let mut v = serde_json::to_value(r)?;
    if let Value::Object(m) = &mut v {
        m.insert("host".to_string(), Value::String(host.to_string()));
    }
    let n = c.execute(
        "INSERT INTO bgrun_results (task_id, attempt, host, status, finished_at, result)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        &[
            &id,
            &i32::try_from(attempt).unwrap_or(i32::MAX),
            &host,
            &r.status.as_str(),
            &now,
            &v,
        ],
    )?;
    if n == 0 {
        anyhow::bail!("task {id} run {attempt} already has a result; not recorded twice");
    }
    Ok(v)
}

fn prune_history(c: &mut impl postgres::GenericClient, task_type: &str) -> Result<()> {
    c.execute(
        "DELETE FROM bgrun_history WHERE task_type = $1 AND id <
           (SELECT min(id) FROM (SELECT id FROM bgrun_history WHERE task_type = $1
              ORDER BY id DESC LIMIT 100) k)",
        &[&task_type],
    )?;
    Ok(())
}

/// Append to the type's history; when its adaptive factor changes, re-rank its queued tasks.
fn record_history(
    c: &mut impl postgres::GenericClient,
    task_type: &str,
    ok: bool,
    duration_s: f64,
    now: f64,
) -> Result<()> {
    let row = c.query_one(
        "INSERT INTO bgrun_history (task_type, ok, duration_s, at) VALUES ($1, $2, $3, $4)
         RETURNING id",
        &[&task_type, &ok, &duration_s, &now],
    )?;
    let id: i64 = row.get(0);
    let recent = c.query(
        "SELECT ok, duration_s, at FROM bgrun_history WHERE task_type = $1
          ORDER BY id DESC LIMIT 10",
        &[&task_type],
    )?;
    let mut h: VecDeque<Exec> = recent
        .iter()
        .map(|r| Exec {
            ok: r.get(0),
            duration_s: r.get(1),
            at: r.get(2),
        })
        .collect();
    h.make_contiguous().reverse();
    let factor = crate::queue::adaptive_factor(Some(&h));
    let old: Option<f64> = c
        .query_opt(
            "SELECT factor FROM bgrun_types WHERE task_type = $1",
            &[&task_type],
        )?
        .map(|r| r.get(0));
    if old.unwrap_or(1.0) != factor || old.is_none() {
        c.execute(
            "INSERT INTO bgrun_types (task_type, factor) VALUES ($1, $2)
             ON CONFLICT (task_type) DO UPDATE SET factor = EXCLUDED.factor",
            &[&task_type, &factor],
        )?;
        c.execute(
            "UPDATE bgrun_tasks SET eff_priority = priority * $2::float8
              WHERE state = 'queued' AND task_type = $1",
            &[&task_type, &factor],
        )?;
    }
    if id % 100 == 0 {
        // Keep the last 100 executions per type.
        prune_history(c, task_type)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_enqueue_function_takes_the_enqueue_lock() {
        let (_, v2) = schema::MIGRATIONS[1];
        assert!(v2.contains(&format!("pg_advisory_xact_lock({LOCK_ENQUEUE})")));
        assert!(v2.contains(&format!("pg_notify('{CHANNEL}'")));
    }

    #[test]
    fn the_turn_function_takes_the_claim_lock() {
        let (_, v3) = schema::MIGRATIONS[2];
        assert!(v3.contains(&format!("pg_advisory_xact_lock({LOCK_CLAIM})")));
        assert!(v3.contains("FOR UPDATE SKIP LOCKED"));
    }

    #[test]
    fn migrations_are_numbered_in_order() {
        let v: Vec<i32> = schema::MIGRATIONS.iter().map(|m| m.0).collect();
        assert!(v.windows(2).all(|w| w[1] == w[0] + 1));
        assert_eq!(v.first(), Some(&1));
    }
}
