import { sql } from './nodes.ts';

// What the cluster workload checks the store against. The store keeps no epoch with a revision and
// the journal keeps a state, not a log, so the test adds, on its own database only, deferred
// triggers that log at COMMIT time every revision, every journal change of a lock and every
// takeover, each with the lease as it stands then and whether the committing backend is one of
// the lease holder's. A write that commits after its leader was deposed shows as not by the
// holder (a takeover replaces the holder's backends, each recorded by pid and start time) or under
// a later epoch than its node had.

export interface AuditRow {
  id: number;
  tbl: 'revisions' | 'cluster_locks' | 'lockstep_lease';
  op: 'INSERT' | 'UPDATE' | 'DELETE';
  data: any;
  epoch: number;
  url: string | null;
  byHolder: boolean;
  /** Commit time, epoch ms of the database's clock (the same machine's clock as the test's). */
  at: number;
}

const INSTALL = `
  CREATE TABLE workload_audit (
    id bigserial PRIMARY KEY, tbl text NOT NULL, op text NOT NULL, data jsonb NOT NULL,
    epoch bigint NOT NULL, url text, by_holder boolean NOT NULL, at double precision NOT NULL);
  CREATE FUNCTION workload_audit() RETURNS trigger LANGUAGE plpgsql AS $$
  DECLARE l lockstep_lease;
  BEGIN
    SELECT * INTO l FROM lockstep_lease WHERE id = 1;
    INSERT INTO workload_audit (tbl, op, data, epoch, url, by_holder, at)
      VALUES (TG_TABLE_NAME, TG_OP, to_jsonb(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END), l.epoch, l.url,
        EXISTS (SELECT 1 FROM unnest(l.pids, l.pid_starts) AS b(pid, started) JOIN pg_stat_activity a
                  ON a.pid = b.pid AND a.backend_start = b.started WHERE b.pid = pg_backend_pid()),
        extract(epoch FROM clock_timestamp()) * 1000);
    RETURN NULL;
  END $$;
  CREATE CONSTRAINT TRIGGER workload_audit AFTER INSERT ON revisions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION workload_audit();
  CREATE CONSTRAINT TRIGGER workload_audit AFTER INSERT OR UPDATE OR DELETE ON cluster_locks
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION workload_audit();
  CREATE CONSTRAINT TRIGGER workload_audit AFTER UPDATE ON lockstep_lease
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (OLD.epoch IS DISTINCT FROM NEW.epoch)
    EXECUTE FUNCTION workload_audit();`;

/** Installs the audit on a database whose schema a node has created. */
export async function installAudit(db: string): Promise<void> {
  await sql(db, INSTALL);
}

export async function readAudit(db: string): Promise<AuditRow[]> {
  const rows = await sql(db, 'SELECT id, tbl, op, data, epoch, url, by_holder, at FROM workload_audit ORDER BY id');
  return rows.map((r) => ({
    id: Number(r.id),
    tbl: r.tbl,
    op: r.op,
    data: r.data,
    epoch: Number(r.epoch),
    url: r.url,
    byHolder: r.by_holder,
    at: r.at,
  }));
}

/** Each function's nodes as the store holds them at its last revision. */
export async function finalNodes(db: string): Promise<Map<number, number[]>> {
  const rows = await sql(
    db,
    `SELECT DISTINCT ON (function_id) function_id, body FROM function_versions
     WHERE program = 'main' ORDER BY function_id, version DESC`,
  );
  return new Map(
    rows.map((r) => [Number(r.function_id), (JSON.parse(r.body).nodes as Array<{ id: number }>).map((n) => n.id)]),
  );
}
