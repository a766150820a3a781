import { AgentsView } from './agents-view.js';
import { setText } from './dom.js';
import { clockTime, plural } from './format.js';
import { LocksView } from './locks-view.js';
import { LogView } from './log-view.js';
import { PathsView } from './paths-view.js';
import { ProgramsView } from './programs-view.js';
import { Rpc, RpcFailure } from './rpc.js';
import { Store } from './store.js';

/** @typedef {import('./rpc.js').ConnState} ConnState */

const TOPICS = ['agents', 'locks', 'edits'];
/** Lock events come in bursts (one release can grant many): one lock.status read per burst. */
const LOCKS_DEBOUNCE_MS = 40;
/** An observer that never calls anything would be closed by the server's idle timeout. */
const KEEPALIVE_MS = 60_000;

const store = new Store();
const views = {
  agents: new AgentsView(store),
  locks: new LocksView(store),
  paths: new PathsView(store),
  programs: new ProgramsView(store),
  log: new LogView(store),
};
const conn = /** @type {HTMLElement} */ (document.getElementById('conn'));
const summary = /** @type {HTMLElement} */ (document.getElementById('summary'));
const seq = /** @type {HTMLElement} */ (document.getElementById('seq'));
const refusals = /** @type {HTMLElement} */ (document.getElementById('refusals'));
const staleBanner = /** @type {HTMLElement} */ (document.getElementById('stale'));
const standbyBanner = /** @type {HTMLElement} */ (document.getElementById('standby'));

// The token stays in the fragment: it is never sent to the server in a URL or a Referer.
const token = new URLSearchParams(location.hash.slice(1)).get('token');

const rpc = new Rpc(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`, {
  onOpen: openSession,
  onNotification(method, params) {
    if (method === 'event') follow(store.apply(params));
    else if (method === 'server.shutdown') showState('retrying', `server stopping (${params.reason})`);
    schedule();
  },
  onState: showState,
});

/** @param {Rpc} r */
async function openSession(r) {
  const hello = await r
    .call('session.hello', {
      protocol: 1,
      name: 'dashboard',
      role: 'observer',
      ...(token === null ? {} : { token }),
    })
    .catch((err) => {
      if (err instanceof RpcFailure && err.data?.type === 'NOT_LEADER') showStandby(err.data.leader);
      throw err;
    });
  standbyBanner.hidden = true;
  store.selfId = hello.sessionId;
  store.warningMs = hello.lock.warningMs;
  syncClock().catch(() => undefined);
  const resume = store.synced;
  const sub = await r.call(
    'events.subscribe',
    resume ? { topics: TOPICS, since: store.lastSeq, runId: store.runId } : { topics: TOPICS },
  );
  store.lastSeq = sub.seq;
  store.runId = sub.runId;
  store.touch('header');
  if (resume && !sub.truncated) {
    // The replay brings the events; the snapshot of who is connected and what is held makes sure
    // nothing shown while the page was stale survives a missed event.
    await Promise.all([
      r.call('agent.list').then((x) => store.setAgents(x.agents)),
      r.call('lock.status', {}).then((x) => store.setLocks(x.resources)),
    ]);
    schedule();
    return;
  }
  if (resume) store.markGap();
  // Until every answer is in, a reconnect must take the snapshot again rather than resume.
  store.synced = false;
  // Each answer replaces its part of the state when it arrives: it reflects every event that came
  // before it on this socket, and the events after it are applied on top.
  await Promise.all([
    r.call('agent.list').then((x) => store.setAgents(x.agents)),
    r.call('lock.status', {}).then((x) => store.setLocks(x.resources)),
    r.call('program.list').then((x) => {
      store.keepPrograms(x.programs.map((/** @type {{ name: string }} */ p) => p.name));
      return Promise.all(x.programs.map((/** @type {{ name: string }} */ p) => fetchProgram(p.name)));
    }),
  ]);
  store.synced = true;
  schedule();
}

/** @param {{ locks?: true, program?: string }} need */
function follow(need) {
  if (need.locks) refreshLocks();
  if (need.program !== undefined) void fetchProgram(need.program);
}

/** @param {string} name */
function fetchProgram(name) {
  return rpc.call('program.get', { program: name }).then(
    (p) => {
      store.setProgram(p);
      schedule();
    },
    // Deleted in between: its programDeleted event says so.
    () => undefined,
  );
}

let locksTimer = /** @type {ReturnType<typeof setTimeout> | undefined} */ (undefined);
let locksInFlight = false;
let locksAgain = false;

function refreshLocks() {
  if (locksInFlight) locksAgain = true;
  else if (locksTimer === undefined) locksTimer = setTimeout(readLocks, LOCKS_DEBOUNCE_MS);
}

async function readLocks() {
  locksTimer = undefined;
  locksInFlight = true;
  try {
    store.setLocks((await rpc.call('lock.status', {})).resources);
    schedule();
  } catch {
    // Disconnected: the next session's replay or snapshot brings the locks back.
  } finally {
    locksInFlight = false;
    if (locksAgain) {
      locksAgain = false;
      refreshLocks();
    }
  }
}

/**
 * A cluster standby has no locks or sessions to show: say so, and link the leader's dashboard
 * (its advertised ws://host:port/ws is served at http://host:port/). The page keeps retrying here,
 * so it comes back by itself if this node becomes the leader.
 * @param {unknown} leader
 */
function showStandby(leader) {
  standbyBanner.replaceChildren();
  if (typeof leader !== 'string') {
    standbyBanner.textContent = 'This node is a cluster standby, and no leader is known yet.';
  } else {
    const link = document.createElement('a');
    const url = new URL(leader);
    url.protocol = url.protocol === 'wss:' ? 'https:' : 'http:';
    url.pathname = '/';
    link.href = `${url.toString()}${location.hash}`;
    link.textContent = url.host;
    standbyBanner.append('This node is a cluster standby. The leader is ', link, '.');
  }
  standbyBanner.hidden = false;
}

async function syncClock() {
  const sent = Date.now();
  const { time } = await rpc.call('session.ping');
  const received = Date.now();
  store.skewMs = Date.parse(time) - (sent + received) / 2;
}

let frame = 0;

/** Renders at most once per animation frame, and only the parts that changed. */
function schedule() {
  if (frame === 0 && store.dirty.size > 0) frame = requestAnimationFrame(render);
}

function render() {
  frame = 0;
  const dirty = new Set(store.dirty);
  store.dirty.clear();
  if (dirty.has('locks')) views.locks.render();
  if (dirty.has('locks')) views.paths.render();
  if (dirty.has('agents')) views.agents.render();
  if (dirty.has('programs')) views.programs.render();
  if (dirty.has('log')) views.log.render();
  if (dirty.has('header')) renderHeader();
}

function renderHeader() {
  // The same counts as the locks panel's: resources held, and requests (tickets) waiting.
  const held = store.resources.filter((r) => r.holders.length > 0).length;
  const waiting = new Set(store.resources.flatMap((r) => r.queue.map((q) => q.ticket))).size;
  const { agents, observers } = store.sessionCounts();
  setText(
    summary,
    `${plural(agents, 'agent')} · ${plural(observers, 'observer')} · ${plural(held, 'lock')} held · ${waiting} waiting`,
  );
  const { conflicts, denials } = store.refusals;
  refusals.hidden = conflicts + denials === 0;
  refusals.dataset.conflicts = String(conflicts);
  refusals.dataset.denials = String(denials);
  setText(refusals, `${plural(conflicts, 'conflict')} · ${plural(denials, 'denial')}`);
  setText(seq, `seq ${store.lastSeq}`);
  seq.dataset.seq = String(store.lastSeq);
  const stale = store.staleSince !== 0;
  staleBanner.hidden = !stale;
  if (stale) document.body.dataset.stale = 'true';
  else delete document.body.dataset.stale;
  setText(
    staleBanner,
    stale
      ? `Connection lost at ${clockTime(new Date(store.staleSince).toISOString())}: the locks, queues and agents below are as they were then and may no longer exist. They are read again on reconnect.`
      : '',
  );
}

/** @param {ConnState} state @param {string} detail */
function showState(state, detail) {
  // Stale from the moment the socket is lost until the next session has read the state again.
  if (state === 'live') store.markLive();
  else if (store.runId !== '') store.markStale(Date.now());
  schedule();
  conn.dataset.state = state;
  const label = { connecting: 'connecting', live: 'live', retrying: 'reconnecting', failed: 'failed' }[state];
  setText(conn, detail === '' ? label : `${label}: ${detail}`);
}

// Countdowns tick faster than they show seconds, so a lease turns "expiring" within a quarter
// second of entering its warning window.
setInterval(() => views.locks.tick(), 250);
setInterval(() => views.agents.tick(), 1000);
setInterval(() => void rpc.call('session.ping').catch(() => undefined), KEEPALIVE_MS);
rpc.start();
