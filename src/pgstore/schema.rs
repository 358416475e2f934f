//! The PostgreSQL schema as numbered migrations, applied in order under an advisory lock
//! and recorded in `bgrun_schema_version`. A migration is never edited once released: add
//! the next one.

/// `(version, SQL)`, in order.
pub const MIGRATIONS: &[(i32, &str)] = &[(1, V1)];

/// The newest schema this bgrun knows.
pub fn latest() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// Version 1: tasks with their claims, results, metrics, adaptive-priority history,
/// workers. Times are Unix seconds (float8) from the database's clock, so hosts with
/// skewed clocks agree on lease expiry.
const V1: &str = r#"
CREATE TABLE bgrun_tasks (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dedup_key     text    NOT NULL,
    task_type     text    NOT NULL,
    priority      bigint  NOT NULL,
    -- priority x the type's adaptive factor, kept current when the factor changes
    eff_priority  float8  NOT NULL,
    -- queued | running | done
    state         text    NOT NULL CHECK (state IN ('queued', 'running', 'done')),
    -- runs already made
    attempt       integer NOT NULL DEFAULT 0,
    max_retries   integer NOT NULL,
    not_before    float8,
    task          jsonb   NOT NULL,
    enqueued_at   float8  NOT NULL,
    -- the claim: lease token and expiry, who holds it
    lease_token   text,
    lease_expires float8,
    worker_id     bigint,
    host          text,
    started_at    float8,
    -- `bgrun stop` asked the holder to stop it
    stop_requested boolean NOT NULL DEFAULT false,
    -- done: how it ended
    final_status  text,
    finished_at   float8
);
-- Dedup: one live task per key, enforced by the database (INSERT ... ON CONFLICT DO NOTHING).
CREATE UNIQUE INDEX bgrun_tasks_live_key ON bgrun_tasks (dedup_key)
    WHERE state IN ('queued', 'running');
-- Claims: the queued tasks in run order.
CREATE INDEX bgrun_tasks_claim ON bgrun_tasks (eff_priority DESC, id)
    WHERE state = 'queued';
-- Expired leases, running per host.
CREATE INDEX bgrun_tasks_running ON bgrun_tasks (lease_expires)
    WHERE state = 'running';
CREATE INDEX bgrun_tasks_done ON bgrun_tasks (finished_at)
    WHERE state = 'done';

CREATE TABLE bgrun_results (
    task_id     bigint  NOT NULL,
    -- the run number (1 = first run)
    attempt     integer NOT NULL,
    host        text    NOT NULL,
    status      text    NOT NULL,
    finished_at float8  NOT NULL,
    result      jsonb   NOT NULL,
    PRIMARY KEY (task_id, attempt)
);
CREATE INDEX bgrun_results_recent ON bgrun_results (finished_at DESC);

CREATE TABLE bgrun_metrics (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at     float8 NOT NULL,
    host   text   NOT NULL,
    sample jsonb  NOT NULL
);
CREATE INDEX bgrun_metrics_at ON bgrun_metrics (at);

-- Adaptive priority: each type's recent executions and its current factor.
CREATE TABLE bgrun_history (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_type  text    NOT NULL,
    ok         boolean NOT NULL,
    duration_s float8  NOT NULL,
    at         float8  NOT NULL
);
CREATE INDEX bgrun_history_type ON bgrun_history (task_type, id DESC);
CREATE TABLE bgrun_types (
    task_type text   PRIMARY KEY,
    factor    float8 NOT NULL
);

CREATE TABLE bgrun_workers (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    host         text   NOT NULL,
    pid          integer NOT NULL,
    started_at   float8 NOT NULL,
    heartbeat_at float8 NOT NULL,
    stopped_at   float8
);
CREATE INDEX bgrun_workers_live ON bgrun_workers (heartbeat_at) WHERE stopped_at IS NULL;
"#;
