//! The PostgreSQL schema as numbered migrations, applied in order under an advisory lock
//! and recorded in `bgrun_schema_version`. A migration is never edited once released: add
//! the next one.

/// `(version, SQL)`, in order.
pub const MIGRATIONS: &[(i32, &str)] = &[(1, V1), (2, V2)];

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

/// Version 2: enqueue in one round trip. `bgrun_enqueue(version, tasks, max_queue, lease)`
/// checks the schema version, takes the enqueue lock (its own statement, so the queue depth
/// is read after it), inserts each task unless a live duplicate exists (the partial unique
/// index), notifies the workers, and says whether a lease expired and whether a worker is
/// alive, all in the caller's single statement (its own transaction). When the tasks might
/// overflow `max_queue` it changes nothing and answers `{"overflow": true}`: the caller then
/// takes the general path (drop the lowest priority, visibly).
/// `tasks`: `[{"key", "type", "priority", "max_retries", "task"}]`. Answers
/// `{"version", "now", "ids": [[id, inserted]...], "expired", "alive"}`.
const V2: &str = r#"
CREATE FUNCTION bgrun_enqueue(p_version integer, p_tasks jsonb, p_max_queue bigint,
                              p_lease float8) RETURNS jsonb
LANGUAGE plpgsql AS $fn$
DECLARE
    v      integer;
    now_s  float8;
    queued bigint;
    t      jsonb;
    f      float8;
    new_id bigint;
    ids    jsonb := '[]';
    added  integer := 0;
BEGIN
    SELECT coalesce(max(version), 0) INTO v FROM bgrun_schema_version;
    IF v <> p_version THEN
        RETURN jsonb_build_object('version', v);
    END IF;
    PERFORM pg_advisory_xact_lock(7090761987000369154);
    now_s := extract(epoch FROM clock_timestamp());
    SELECT count(*) INTO queued FROM (SELECT 1 FROM bgrun_tasks WHERE state = 'queued'
                                       LIMIT p_max_queue + 1) s;
    IF queued + jsonb_array_length(p_tasks) > p_max_queue THEN
        RETURN jsonb_build_object('version', v, 'overflow', true);
    END IF;
    FOR t IN SELECT value FROM jsonb_array_elements(p_tasks) LOOP
        SELECT factor INTO f FROM bgrun_types WHERE task_type = t->>'type';
        new_id := NULL;
        INSERT INTO bgrun_tasks (dedup_key, task_type, priority, eff_priority, state, attempt,
                                 max_retries, task, enqueued_at)
        VALUES (t->>'key', t->>'type', (t->>'priority')::bigint,
                (t->>'priority')::float8 * coalesce(f, 1.0), 'queued', 0,
                (t->>'max_retries')::integer,
                jsonb_set(jsonb_set(t->'task', '{enqueued_at}', to_jsonb(now_s)),
                          '{first_enqueued_at}', to_jsonb(now_s)),
                now_s)
        ON CONFLICT (dedup_key) WHERE state IN ('queued', 'running') DO NOTHING
        RETURNING id INTO new_id;
        IF new_id IS NULL THEN
            SELECT id INTO new_id FROM bgrun_tasks
             WHERE dedup_key = t->>'key' AND state IN ('queued', 'running');
            ids := ids || jsonb_build_array(jsonb_build_array(new_id, false));
        ELSE
            ids := ids || jsonb_build_array(jsonb_build_array(new_id, true));
            added := added + 1;
        END IF;
    END LOOP;
    IF added > 0 THEN
        PERFORM pg_notify('bgrun_queue', '');
    END IF;
    RETURN jsonb_build_object(
        'version', v, 'now', now_s, 'ids', ids,
        'expired', EXISTS (SELECT 1 FROM bgrun_tasks WHERE state = 'running'
                            AND lease_expires < now_s),
        'alive', EXISTS (SELECT 1 FROM bgrun_workers WHERE stopped_at IS NULL
                          AND heartbeat_at > now_s - 2 * p_lease));
END
$fn$;
"#;
