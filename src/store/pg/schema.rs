//! The PostgreSQL schema as numbered migrations, applied in order under an advisory lock
//! and recorded in `bgrun_schema_version`. A migration is never edited once released: add
//! the next one.

/// `(version, SQL)`, in order.
pub const MIGRATIONS: &[(i32, &str)] = &[(1, V1), (2, V2), (3, V3)];

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

/// Version 3: a worker's turn in one round trip. `bgrun_turn(...)` runs in the caller's
/// statement (its own transaction, committed without waiting for the disk: the worker's
/// synchronous heartbeat commit right after makes it durable): the fenced end of each
/// finished run (queued again for a retry) with its result, metrics sample and history
/// row, each such type's stored factor and last ten runs before these; then, when
/// `p_want > 0`, the fleet-wide claim lock (the claim statement after it sees every claim
/// committed before) and the claim of up to the room left under `p_fleet_max` and
/// `p_host_limit`, `FOR UPDATE SKIP LOCKED` in effective-priority order, through the
/// primary key; when fewer were claimed than wanted, what is left in the queue. The lock
/// is held for the claim statement and the commit only, with no client round trip inside.
/// Rows: `(r_kind, r_id, r_ty, r_ok, r_x, r_y, r_doc, r_tok, r_n)`, `r_kind` one of
/// `done` (a recorded run: `r_id`), `new`/`prior` (a history row: `r_id`, `r_ty`, `r_ok`,
/// duration `r_x`, time `r_y`), `factor` (`r_ty`, `r_x`), `claim` (`r_id`, attempt `r_n`,
/// effective priority `r_x`, task `r_doc`, lease token `r_tok`) and `left` (ready now
/// `r_ok`, earliest later `r_x`, any queued `r_n` = 1).
const V3: &str = r#"
CREATE FUNCTION bgrun_turn(
    p_ids bigint[], p_toks text[], p_attempts integer[], p_runs integer[], p_statuses text[],
    p_retries jsonb[], p_delays float8[], p_results jsonb[], p_samples jsonb[], p_host text,
    p_types text[], p_ran boolean[], p_oks boolean[], p_durs float8[],
    p_want bigint, p_fleet_max bigint, p_host_limit bigint, p_lease float8, p_worker bigint)
RETURNS TABLE (r_kind text, r_id bigint, r_ty text, r_ok boolean, r_x float8, r_y float8,
               r_doc jsonb, r_tok text, r_n integer)
LANGUAGE plpgsql AS $fn$
DECLARE
    claimed integer := 0;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    IF cardinality(p_ids) > 0 THEN
        RETURN QUERY
        WITH n AS (SELECT extract(epoch FROM clock_timestamp())::float8 AS t),
        u AS (SELECT * FROM unnest(p_ids, p_toks, p_attempts, p_runs, p_statuses, p_retries,
                                   p_delays, p_results, p_samples, p_types, p_ran, p_oks,
                                   p_durs)
              AS u(id, tok, attempt, run, status, retry, delay, result, sample, ty, ran, ok,
                   dur)),
        upd AS (
          UPDATE bgrun_tasks t SET
              state = CASE WHEN u.retry IS NULL THEN 'done' ELSE 'queued' END,
              attempt = u.attempt,
              final_status = CASE WHEN u.retry IS NULL THEN u.status END,
              finished_at = CASE WHEN u.retry IS NULL THEN n.t END,
              task = CASE WHEN u.retry IS NULL THEN t.task ELSE u.retry
                || jsonb_build_object('enqueued_at', n.t, 'not_before', n.t + u.delay) END,
              not_before = CASE WHEN u.retry IS NULL THEN t.not_before
                ELSE n.t + u.delay END,
              lease_token = NULL, lease_expires = NULL,
              worker_id = CASE WHEN u.retry IS NULL THEN t.worker_id END,
              host = CASE WHEN u.retry IS NULL THEN t.host END,
              started_at = CASE WHEN u.retry IS NULL THEN t.started_at END
            FROM u, n
           WHERE t.id = u.id AND t.lease_token = u.tok AND t.state = 'running'
          RETURNING t.id),
        res AS (
          INSERT INTO bgrun_results (task_id, attempt, host, status, finished_at, result)
          SELECT u.id, u.run, p_host, u.status, n.t, u.result FROM u JOIN upd USING (id), n
          ON CONFLICT DO NOTHING),
        met AS (
          INSERT INTO bgrun_metrics (at, host, sample)
          SELECT n.t, p_host, u.sample FROM u JOIN upd USING (id), n),
        hist AS (
          INSERT INTO bgrun_history (task_type, ok, duration_s, at)
          SELECT u.ty, u.ok, u.dur, n.t FROM u JOIN upd USING (id), n
           WHERE u.ran ORDER BY u.id
          RETURNING id, task_type, ok, duration_s, at),
        tys AS (SELECT DISTINCT u.ty FROM u WHERE u.ran)
        SELECT 'done'::text, upd.id, NULL::text, NULL::boolean, NULL::float8, NULL::float8,
               NULL::jsonb, NULL::text, NULL::integer FROM upd
        UNION ALL
        SELECT 'new', hist.id, hist.task_type, hist.ok, hist.duration_s, hist.at, NULL, NULL,
               NULL FROM hist
        UNION ALL
        SELECT 'prior', r.id, tys.ty, r.ok, r.duration_s, r.at, NULL, NULL, NULL FROM tys
          CROSS JOIN LATERAL (SELECT h.id, h.ok, h.duration_s, h.at FROM bgrun_history h
                               WHERE h.task_type = tys.ty ORDER BY h.id DESC LIMIT 10) r
        UNION ALL
        SELECT 'factor', NULL, f.task_type, NULL, f.factor, NULL, NULL, NULL, NULL
          FROM bgrun_types f WHERE f.task_type IN (SELECT tys.ty FROM tys);
    END IF;
    IF p_want > 0 THEN
        PERFORM pg_advisory_xact_lock(7090761987000369155);
        RETURN QUERY
        WITH n AS (SELECT extract(epoch FROM clock_timestamp())::float8 AS t)
        UPDATE bgrun_tasks t
           SET state = 'running', lease_token = gen_random_uuid()::text,
               lease_expires = n.t + p_lease, worker_id = p_worker, host = p_host,
               started_at = n.t
          FROM n
         WHERE t.id = ANY (ARRAY(
             SELECT q.id FROM bgrun_tasks q
              WHERE q.state = 'queued'
                AND (q.not_before IS NULL OR q.not_before <= (SELECT n.t FROM n))
              ORDER BY q.eff_priority DESC, q.id
              LIMIT greatest(least(p_want,
                  p_fleet_max - (SELECT count(*) FROM (SELECT 1 FROM bgrun_tasks a
                                  WHERE a.state = 'running' LIMIT p_fleet_max) s),
                  coalesce(p_host_limit - (SELECT count(*) FROM (SELECT 1 FROM bgrun_tasks b
                                  WHERE b.state = 'running' AND b.host = p_host
                                  LIMIT p_host_limit) s), p_want)), 0)
              FOR UPDATE SKIP LOCKED))
        RETURNING 'claim'::text, t.id, NULL::text, NULL::boolean, t.eff_priority,
                  NULL::float8, t.task, t.lease_token, t.attempt;
        GET DIAGNOSTICS claimed = ROW_COUNT;
        IF claimed < p_want THEN
            -- Fewer than asked: the fleet or host is full, other workers hold the rest,
            -- or the queue is (nearly) empty. Which tasks are left, ready now or later.
            RETURN QUERY
            SELECT 'left'::text, NULL::bigint, NULL::text,
                   bool_or(s.not_before IS NULL
                           OR s.not_before <= extract(epoch FROM clock_timestamp())),
                   min(s.not_before) FILTER (WHERE s.not_before
                           > extract(epoch FROM clock_timestamp())),
                   NULL::float8, NULL::jsonb, NULL::text, (count(*) > 0)::integer
              FROM (SELECT q.not_before FROM bgrun_tasks q WHERE q.state = 'queued'
                     LIMIT 1000) s;
        END IF;
    END IF;
END
$fn$;
"#;
