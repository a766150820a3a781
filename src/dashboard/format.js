// Text for people: durations, resource names, one line per event.

/** @typedef {import('./store.js').Resource} Resource */
/** @typedef {import('./store.js').EventItem} EventItem */
/** @typedef {(program: string, id: number) => string | undefined} NameOf */

const pad = (/** @type {number} */ n) => String(n).padStart(2, '0');

/** "42s", "3m 07s", "2h 05m", "4d 3h": coarse enough to read at a glance. */
export function duration(/** @type {number} */ ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${pad(s % 60)}s`;
  const hours = Math.floor(m / 60);
  if (hours < 48) return `${hours}h ${pad(m % 60)}m`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}

/** A ticking countdown: "29:59", "1:02:03". */
export function countdown(/** @type {number} */ ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const hours = Math.floor(s / 3600);
  const rest = `${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
  return hours > 0 ? `${hours}:${rest}` : rest.replace(/^0/, '');
}

export function clockTime(/** @type {string} */ iso) {
  const d = new Date(iso);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** "main/parse", or "main/f7" for a function whose name is not known (yet). */
export function resourceName(/** @type {Resource} */ r, /** @type {NameOf} */ nameOf) {
  if (r.structure === true) return `${r.program}/structure`;
  if (r.path !== undefined) return `${r.program}:${r.path}`;
  return `${r.program}/${nameOf(r.program, r.function ?? 0) ?? `f${r.function}`}`;
}

/** @param {Resource[]} rs @param {NameOf} nameOf */
function names(rs, nameOf) {
  const shown = rs
    .slice(0, 3)
    .map((r) => resourceName(r, nameOf))
    .join(', ');
  return rs.length > 3 ? `${shown} +${rs.length - 3}` : shown;
}

/** "1 lock", "3 locks". */
export function plural(/** @type {number} */ n, /** @type {string} */ noun) {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** Why an edit was refused, by the conflict event's `reason`. */
const CONFLICT_REASONS = {
  hash: 'changed since it was read',
  fence: 'stale fence: the lock was lost or granted again since',
  lock: 'the lock was not held',
};

/** @param {{ holders: { sessionId: string, name?: string, mode: string }[] }[]} blockers */
function blockedBy(blockers) {
  const holders = new Map();
  for (const b of blockers)
    for (const x of b.holders) holders.set(x.sessionId, `${x.name ?? x.sessionId.slice(0, 8)} (${x.mode})`);
  return holders.size === 0 ? '' : `: held by ${[...holders.values()].join(', ')}`;
}

/** @param {{ resource: Resource }[]} gs */
const resourcesOf = (gs) => gs.map((g) => g.resource);

/**
 * One line saying what happened.
 * @param {EventItem} e
 * @param {NameOf} nameOf
 */
export function summarize(e, nameOf) {
  const d = e.data;
  const who = d.name ?? d.sessionId ?? '?';
  switch (`${e.topic}.${e.type}`) {
    case 'agents.joined':
      return `${who} joined as ${d.role}`;
    case 'agents.left':
      return `${who} left (${d.reason})`;
    case 'agents.detached':
      return `${who} dropped; its locks wait for a resume`;
    case 'agents.resumed':
      return `${who} resumed its session`;
    case 'locks.granted':
      return `${who} got ${d.grants[0]?.mode ?? ''} on ${names(resourcesOf(d.grants), nameOf)}${d.ticket === null ? '' : ' after waiting'}`;
    case 'locks.queued':
      return `${who} waits for ${d.mode} on ${d.positions.map((/** @type {any} */ p) => `${resourceName(p.resource, nameOf)} #${p.position}`).join(', ')}`;
    case 'locks.released':
      return `${who} released ${names(resourcesOf(d.locks), nameOf)}${d.reason === 'release' ? '' : ` (${d.reason})`}`;
    case 'locks.renewed':
      return `${who} renewed ${names(resourcesOf(d.locks), nameOf)}`;
    case 'locks.downgraded':
      return `${who} downgraded ${names(resourcesOf(d.locks), nameOf)} to read`;
    case 'locks.expiring':
      return `${who}'s lease on ${names(resourcesOf(d.locks), nameOf)} ends soon`;
    case 'locks.expired':
      return `${who}'s lease on ${names(resourcesOf(d.locks), nameOf)} expired`;
    case 'locks.dequeued':
      return `${who} stopped waiting (${d.reason})`;
    case 'locks.denied':
      return `${who} was denied ${d.mode} on ${names(d.resources, nameOf)}${blockedBy(d.blockers ?? [])}`;
    case 'locks.deadlock':
      return `${who} refused to wait: deadlock ${d.cycle.map((/** @type {any} */ c) => c.name ?? c.sessionId).join(' → ')}`;
    case 'edits.committed': {
      const changed = d.functions
        .map((/** @type {any} */ f) => f.name)
        .slice(0, 4)
        .join(', ');
      return `${who} committed r${d.revision} in ${d.program}${d.kind === 'edit' ? '' : ` (${d.kind})`}${changed === '' ? '' : `: ${changed}`}`;
    }
    case 'edits.conflict': {
      /** @type {Resource[]} */
      const rs = d.functions.map((/** @type {number} */ id) => ({ program: d.program, function: id }));
      if (d.structure === true) rs.push({ program: d.program, structure: true });
      const why = CONFLICT_REASONS[/** @type {keyof typeof CONFLICT_REASONS} */ (d.reason)] ?? d.reason;
      return `${who}'s ${d.method} was refused on ${names(rs, nameOf)}: ${why}`;
    }
    case 'edits.programCreated':
      return `${who} created program ${d.program}`;
    case 'edits.programDeleted':
      return `${who} deleted program ${d.program}`;
    default:
      return `${e.type}`;
  }
}
