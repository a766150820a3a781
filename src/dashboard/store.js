// What the dashboard knows, and how snapshots and events change it. Rendering reads it; nothing
// here touches the DOM. Each change names the views it affects in `dirty`.

/**
 * @typedef {{ program: string, function?: number, structure?: true, path?: string }} Resource
 * @typedef {{ sessionId: string, name: string, role: string, state: string, connectedAt: number }} Agent
 * @typedef {{ sessionId: string, name?: string, mode: string, fence: number, grantedAt: string, expiresAt: string, description?: string }} Holder
 * @typedef {{ ticket: string, sessionId: string, name?: string, mode: string, position: number, upgrade: boolean, description?: string }} Waiter
 * @typedef {{ resource: Resource, holders: Holder[], queue: Waiter[] }} ResourceStatus
 * @typedef {{ id: number, name: string, hash: string, version: number }} Fn
 * @typedef {{ name: string, revision: number, functions: Map<number, Fn> }} Program
 * @typedef {{ seq: number, time: string, topic: string, type: string, data: Record<string, any> }} EventItem
 * @typedef {{ gap: true, time: string, seq: number }} GapMarker
 * @typedef {'agents' | 'locks' | 'programs' | 'log' | 'header'} Part
 */

/** Events kept in memory for the log; the DOM shows fewer (see log-view.js). */
const LOG_KEEP = 2000;

/** @param {Resource} r */
export function resourceKey(r) {
  if (r.path !== undefined) return `${r.program}:${r.path}`;
  return r.structure === true ? `${r.program}/structure` : `${r.program}/f${r.function}`;
}

/** By program, the structure first, then functions by id, then paths. @param {Resource} a @param {Resource} b */
function compareResources(a, b) {
  if (a.program !== b.program) return a.program < b.program ? -1 : 1;
  if (a.path !== undefined || b.path !== undefined) {
    if (a.path === undefined) return -1;
    if (b.path === undefined) return 1;
    return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
  }
  return (a.structure === true ? 0 : (a.function ?? 0)) - (b.structure === true ? 0 : (b.function ?? 0));
}

export class Store {
  constructor() {
    /** @type {Map<string, Agent>} */
    this.agents = new Map();
    /** @type {ResourceStatus[]} */
    this.resources = [];
    /** @type {Map<string, Program>} */
    this.programs = new Map();
    /** @type {(EventItem | GapMarker)[]} */
    this.log = [];
    /** How many log entries were ever appended: the log view renders those past its own count. */
    this.logTotal = 0;
    this.lastSeq = 0;
    /** The server run the sequence numbers belong to; a restarted server starts a new one. */
    this.runId = '';
    /** True once a snapshot was taken: from then on a reconnect replays instead. */
    this.synced = false;
    this.selfId = '';
    this.warningMs = 60000;
    /** Server clock minus ours, so countdowns agree with the server's expiries. */
    this.skewMs = 0;
    /** When the connection was lost (ms since epoch); 0 while what is shown is live. */
    this.staleSince = 0;
    /** Refused edits and lock requests seen on the event stream since the page opened. */
    this.refusals = { conflicts: 0, denials: 0 };
    /** @type {Set<Part>} */
    this.dirty = new Set();
  }

  now() {
    return Date.now() + this.skewMs;
  }

  /** @param {...Part} parts */
  touch(...parts) {
    for (const p of parts) this.dirty.add(p);
  }

  /** @param {any[]} agents as agent.list gives them */
  setAgents(agents) {
    this.agents.clear();
    for (const a of agents) this.putAgent(a);
    this.touch('agents', 'header');
  }

  /** @param {ResourceStatus[]} resources as lock.status gives them */
  setLocks(resources) {
    this.resources = [...resources].sort((a, b) => compareResources(a.resource, b.resource));
    this.touch('locks', 'agents', 'programs', 'header');
  }

  /** @param {string[]} names every program that exists now */
  keepPrograms(names) {
    const keep = new Set(names);
    for (const name of this.programs.keys()) if (!keep.has(name)) this.programs.delete(name);
    this.touch('programs', 'header');
  }

  /** @param {{ name: string, revision: number, functions: Fn[] }} p as program.get gives it */
  setProgram(p) {
    const functions = new Map();
    for (const f of p.functions) functions.set(f.id, { id: f.id, name: f.name, hash: f.hash, version: f.version });
    this.programs.set(p.name, { name: p.name, revision: p.revision, functions });
    this.touch('programs', 'locks', 'agents', 'header');
  }

  /** The connection is gone: everything shown is as it was at `at`, and may no longer be true. */
  markStale(/** @type {number} */ at) {
    if (this.staleSince !== 0) return;
    this.staleSince = at;
    this.touch('locks', 'agents', 'programs', 'header');
  }

  markLive() {
    if (this.staleSince === 0) return;
    this.staleSince = 0;
    this.touch('locks', 'agents', 'programs', 'header');
  }

  /** Events after the last one seen are gone: say so in the log, the snapshot fills the state. */
  markGap() {
    this.appendLog({ gap: true, time: new Date(this.now()).toISOString(), seq: this.lastSeq });
  }

  /**
   * Applies one event. Returns what the caller must fetch because events do not carry it:
   * lock queues are re-read from lock.status rather than rebuilt from events, and a program first
   * seen in an edit is read whole.
   * @param {EventItem} item
   * @returns {{ locks?: true, program?: string }}
   */
  apply(item) {
    this.lastSeq = item.seq;
    this.appendLog(item);
    this.touch('header');
    const d = item.data;
    if (item.topic === 'agents') {
      if (item.type === 'left') this.agents.delete(d.sessionId);
      else
        this.putAgent({
          sessionId: d.sessionId,
          name: d.name,
          role: d.role,
          connectedAt: d.connectedAt,
          state: item.type === 'detached' ? 'detached' : 'connected',
        });
      this.touch('agents');
      return {};
    }
    if (item.topic === 'locks') {
      if (item.type === 'denied') this.refusals.denials++;
      return { locks: true };
    }
    if (item.type === 'conflict') {
      this.refusals.conflicts++;
      return {};
    }
    if (item.type === 'programDeleted') {
      this.programs.delete(d.program);
      this.touch('programs');
      return {};
    }
    if (item.type === 'programCreated') return { program: d.program };
    if (item.type !== 'committed') return {};
    const p = this.programs.get(d.program);
    if (p === undefined) return { program: d.program };
    // A snapshot taken after this revision already has it (and anything later).
    if (d.revision <= p.revision) return {};
    p.revision = d.revision;
    let renamed = d.removed.length > 0;
    for (const f of d.functions) {
      renamed ||= p.functions.get(f.id)?.name !== f.name;
      p.functions.set(f.id, { id: f.id, name: f.name, hash: f.hash, version: f.version });
    }
    for (const id of d.removed) p.functions.delete(id);
    this.touch('programs');
    // Locks and agents show resources by function name.
    if (renamed) this.touch('locks', 'agents');
    return {};
  }

  /** @param {{ sessionId: string, name: string, role: string, state?: string, connectedAt: string }} a */
  putAgent(a) {
    this.agents.set(a.sessionId, {
      sessionId: a.sessionId,
      name: a.name,
      role: a.role,
      state: a.state ?? 'connected',
      connectedAt: Date.parse(a.connectedAt),
    });
  }

  /** @param {EventItem | GapMarker} entry */
  appendLog(entry) {
    this.log.push(entry);
    this.logTotal++;
    if (this.log.length > LOG_KEEP * 1.5) this.log.splice(0, this.log.length - LOG_KEEP);
    this.touch('log');
  }

  /**
   * Sessions by role, counted once for the header and the Agents panel alike: every session the
   * server lists (detached ones and this page included), agents apart from observers.
   */
  sessionCounts() {
    let agents = 0;
    let observers = 0;
    for (const a of this.agents.values()) {
      if (a.role === 'agent') agents++;
      else observers++;
    }
    return { agents, observers };
  }

  /** Per session: the resources it holds and its queued tickets with positions. */
  bySession() {
    /** @type {Map<string, { holds: { resource: Resource, mode: string }[], waits: Map<string, { mode: string, at: { resource: Resource, position: number }[] }> }>} */
    const out = new Map();
    const entry = (/** @type {string} */ id) => {
      let e = out.get(id);
      if (e === undefined) {
        e = { holds: [], waits: new Map() };
        out.set(id, e);
      }
      return e;
    };
    for (const r of this.resources) {
      for (const h of r.holders) entry(h.sessionId).holds.push({ resource: r.resource, mode: h.mode });
      for (const q of r.queue) {
        const waits = entry(q.sessionId).waits;
        let t = waits.get(q.ticket);
        if (t === undefined) {
          t = { mode: q.mode, at: [] };
          waits.set(q.ticket, t);
        }
        t.at.push({ resource: r.resource, position: q.position });
      }
    }
    return out;
  }

  /** @param {string} program @param {number} id */
  functionName(program, id) {
    return this.programs.get(program)?.functions.get(id)?.name;
  }
}
