import { h, reconcile, setClass, setText } from './dom.js';
import { duration, plural, resourceName } from './format.js';

/** @typedef {import('./store.js').Store} Store */
/** @typedef {import('./store.js').Agent} Agent */

/** One row per session: agents before observers, then oldest connection first. */
export class AgentsView {
  /** @param {Store} store */
  constructor(store) {
    this.store = store;
    this.body = /** @type {HTMLElement} */ (document.getElementById('agents'));
    this.count = /** @type {HTMLElement} */ (document.getElementById('agents-count'));
  }

  render() {
    const s = this.store;
    const agents = [...s.agents.values()].sort((a, b) =>
      a.role === b.role ? a.connectedAt - b.connectedAt : a.role === 'agent' ? -1 : 1,
    );
    // The header's numbers, counted the same way (store.sessionCounts).
    const { agents: working, observers } = s.sessionCounts();
    setText(this.count, `${working} · ${plural(observers, 'observer')}`);
    const bySession = s.bySession();
    const nameOf = s.functionName.bind(s);
    // With one program its name on every chip is noise.
    const label = (/** @type {import('./store.js').Resource} */ r) =>
      s.programs.size > 1 ? resourceName(r, nameOf) : resourceName(r, nameOf).slice(r.program.length + 1);
    reconcile(
      this.body,
      agents,
      (a) => a.sessionId,
      () => createRow(),
      (tr, a) => {
        const [name, since, holds, waits] = /** @type {HTMLElement[]} */ ([...tr.children]);
        const mine = bySession.get(a.sessionId);
        setClass(tr, a.state === 'detached' ? 'is-detached' : '');
        if (name !== undefined) {
          setText(/** @type {Element} */ (name.children[0]), a.name);
          setText(
            /** @type {Element} */ (name.children[1]),
            a.sessionId === s.selfId
              ? `${a.role} · this page`
              : a.state === 'detached'
                ? `${a.role} · detached`
                : a.role,
          );
        }
        if (since !== undefined) since.dataset.since = String(a.connectedAt);
        if (holds !== undefined) {
          const held = (mine?.holds ?? []).map((x) => ({
            text: `${label(x.resource)} · ${x.mode}`,
            kind: `mode-${x.mode}`,
          }));
          // An agent that holds nothing and waits for nothing is idle: said, not left as a blank row.
          const idle = a.role === 'agent' && held.length === 0 && (mine?.waits.size ?? 0) === 0;
          chips(holds, idle ? [{ text: a.state === 'detached' ? 'idle · detached' : 'idle', kind: 'idle' }] : held);
        }
        if (waits !== undefined) {
          const waiting = [...(mine?.waits.values() ?? [])].flatMap((t) =>
            t.at.map((p) => ({ text: `${label(p.resource)} #${p.position} · ${t.mode}`, kind: 'waiting' })),
          );
          chips(waits, waiting);
        }
      },
    );
    this.tick();
  }

  tick() {
    const now = this.store.now();
    for (const el of /** @type {NodeListOf<HTMLElement>} */ (this.body.querySelectorAll('td.since'))) {
      setText(el, duration(now - Number(el.dataset.since)));
    }
  }
}

/** Chips shown per cell before "+N": a session holding a hundred locks must not take a screen. */
const CHIPS_SHOWN = 4;

/**
 * Rebuilt only when their text changes, which is rare next to how often rows are visited.
 * @param {HTMLElement} cell
 * @param {{ text: string, kind: string }[]} items
 */
function chips(cell, items) {
  const sig = items.map((i) => i.text).join('|');
  if (cell.dataset.sig === sig) return;
  cell.dataset.sig = sig;
  const box = h('div', 'chips');
  for (const i of items.slice(0, CHIPS_SHOWN)) {
    const chip = h('span', `chip ${i.kind}`, i.text);
    chip.title = i.text;
    box.append(chip);
  }
  if (items.length > CHIPS_SHOWN) box.append(h('span', 'chip extra', `+${items.length - CHIPS_SHOWN}`));
  cell.replaceChildren(box);
}

function createRow() {
  const tr = h('tr');
  const name = h('td', 'name');
  name.append(h('span', 'who'), h('span', 'note'));
  tr.append(name, h('td', 'since'), h('td', 'holds'), h('td', 'waits'));
  return tr;
}
