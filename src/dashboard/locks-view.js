import { h, reconcile, setClass, setText } from './dom.js';
import { countdown, resourceName } from './format.js';
import { resourceKey } from './store.js';

/** @typedef {import('./store.js').Store} Store */
/** @typedef {import('./store.js').ResourceStatus} ResourceStatus */
/** @typedef {import('./store.js').Holder} Holder */
/** @typedef {import('./store.js').Waiter} Waiter */

/** Longer queues show their head and a count: a row must stay one glance. */
const QUEUE_SHOWN = 8;

/** One row per held or awaited resource: holders with their countdowns, then the queue in order. */
export class LocksView {
  /** @param {Store} store */
  constructor(store) {
    this.store = store;
    this.body = /** @type {HTMLElement} */ (document.getElementById('locks'));
    this.empty = /** @type {HTMLElement} */ (document.getElementById('locks-empty'));
    this.count = /** @type {HTMLElement} */ (document.getElementById('locks-count'));
  }

  render() {
    // Path locks are shown as their tree (paths-view.js).
    const rs = this.store.resources.filter((r) => r.resource.path === undefined);
    this.empty.hidden = rs.length > 0;
    // Counted as the header counts: resources held, and those only awaited.
    const held = rs.filter((r) => r.holders.length > 0).length;
    setText(
      this.count,
      rs.length === 0 ? '' : `${held} held${held < rs.length ? ` · ${rs.length - held} awaited` : ''}`,
    );
    reconcile(
      this.body,
      rs,
      (r) => resourceKey(r.resource),
      () => this.createRow(),
      (tr, r) => this.updateRow(tr, r),
    );
    this.tick();
  }

  createRow() {
    const tr = h('tr');
    const res = h('td', 'res');
    res.append(h('span', 'res-name'), h('span', 'res-sub'));
    tr.append(res, h('td', 'mode'), h('td', 'holders'), h('td', 'expiries'), h('td', 'queue'));
    tr.children[4]?.append(h('ol', 'waiters'), h('span', 'more'));
    return tr;
  }

  /** @param {HTMLElement} tr @param {ResourceStatus} r */
  updateRow(tr, r) {
    const [res, mode, holders, expiries, queue] = /** @type {HTMLElement[]} */ ([...tr.children]);
    const nameOf = this.store.functionName.bind(this.store);
    const full = resourceName(r.resource, nameOf);
    const slash = full.indexOf('/');
    setText(/** @type {Element} */ (res?.children[0]), full.slice(slash + 1));
    setText(
      /** @type {Element} */ (res?.children[1]),
      r.resource.structure === true ? r.resource.program : `${r.resource.program} · f${r.resource.function}`,
    );

    const held = r.holders[0]?.mode;
    setClass(tr, held === undefined ? 'row-waiting' : `row-${held}`);
    if (mode !== undefined) modeBadge(mode, held);

    const byHolder = (/** @type {Holder} */ x) => x.sessionId;
    if (holders !== undefined) holders.dataset.free = r.holders.length === 0 ? this.headWaitsFor(r) : '';
    if (holders !== undefined) {
      reconcile(
        holders,
        r.holders,
        byHolder,
        () => holderLine(),
        (el, x) => {
          setText(/** @type {Element} */ (el.children[0]), x.name ?? x.sessionId.slice(0, 8));
          setText(/** @type {Element} */ (el.children[1]), x.description ?? '');
        },
      );
    }
    if (expiries !== undefined) {
      reconcile(
        expiries,
        r.holders,
        byHolder,
        () => expiryLine(),
        (el, x) => {
          const granted = Date.parse(x.grantedAt);
          const expires = Date.parse(x.expiresAt);
          el.dataset.expires = String(expires);
          el.dataset.window = String(Math.min(this.store.warningMs, (expires - granted) / 5));
        },
      );
    }
    if (queue !== undefined) this.updateQueue(queue, r.queue);
  }

  /**
   * A free resource with a queue is not stalled: its head asked for a batch, granted all at once,
   * and another resource of that batch is still held. Says which, and by whom.
   * @param {ResourceStatus} r
   */
  headWaitsFor(r) {
    const head = [...r.queue].sort((a, b) => a.position - b.position)[0];
    if (head === undefined) return '';
    const nameOf = this.store.functionName.bind(this.store);
    const who = head.name ?? head.sessionId.slice(0, 8);
    const blocking = this.store.resources.filter(
      (o) =>
        o !== r &&
        o.queue.some((q) => q.ticket === head.ticket) &&
        (o.holders.length > 0 || o.queue[0]?.ticket !== head.ticket),
    );
    if (blocking.length === 0) return `free: ${who} is being granted it`;
    const what = blocking.map((o) => {
      const by = o.holders.map((x) => x.name ?? x.sessionId.slice(0, 8)).join(', ');
      return `${resourceName(o.resource, nameOf)}${by === '' ? ' (queued there)' : ` (held by ${by})`}`;
    });
    return `free: ${who} waits for it together with ${what.join(', ')}`;
  }

  /** @param {HTMLElement} cell @param {Waiter[]} queue */
  updateQueue(cell, queue) {
    const [list, more] = /** @type {HTMLElement[]} */ ([...cell.children]);
    if (list === undefined || more === undefined) return;
    const shown = [...queue].sort((a, b) => a.position - b.position).slice(0, QUEUE_SHOWN);
    reconcile(
      list,
      shown,
      (q) => q.ticket,
      () => waiterItem(),
      (li, q) => {
        setClass(li, `waiter mode-${q.mode}`);
        li.title = q.description ?? '';
        const [pos, who, tag] = /** @type {HTMLElement[]} */ ([...li.children]);
        if (pos !== undefined) setText(pos, String(q.position));
        if (who !== undefined) setText(who, q.name ?? q.sessionId.slice(0, 8));
        if (who !== undefined) who.title = who.textContent ?? '';
        if (tag !== undefined) setText(tag, q.upgrade ? `${q.mode} upgrade` : q.mode);
      },
    );
    setText(more, queue.length > QUEUE_SHOWN ? `+${queue.length - QUEUE_SHOWN} more` : '');
  }

  /** Moves every countdown on; a lease in its warning window turns "expiring". */
  tick() {
    const now = this.store.now();
    const stale = this.store.staleSince !== 0;
    for (const el of /** @type {NodeListOf<HTMLElement>} */ (this.body.querySelectorAll('.expiry'))) {
      if (stale) {
        // A countdown to an expiry nobody can confirm any more would be a made-up fact.
        setClass(el, 'expiry is-stale');
        setText(/** @type {Element} */ (el.children[0]), '—');
        /** @type {HTMLElement} */ (el.children[1]).hidden = true;
        continue;
      }
      const left = Number(el.dataset.expires) - now;
      const expiring = left <= Number(el.dataset.window);
      setClass(el, expiring ? 'expiry is-expiring' : 'expiry');
      setText(/** @type {Element} */ (el.children[0]), countdown(left));
      /** @type {HTMLElement} */ (el.children[1]).hidden = !expiring;
    }
  }
}

/** @param {HTMLElement} cell @param {string | undefined} mode */
export function modeBadge(cell, mode) {
  let badge = /** @type {HTMLElement | null} */ (cell.firstElementChild);
  if (badge === null) {
    badge = h('span');
    cell.append(badge);
  }
  setClass(badge, mode === undefined ? 'badge free' : `badge mode-${mode}`);
  setText(badge, mode ?? 'free');
}

function holderLine() {
  const el = h('div', 'holder');
  el.append(h('span', 'who'), h('span', 'desc'));
  return el;
}

function expiryLine() {
  const el = h('div', 'expiry');
  const badge = h('span', 'badge expiring', 'expiring');
  badge.hidden = true;
  el.append(h('span', 'ttl'), badge);
  return el;
}

function waiterItem() {
  const li = h('li', 'waiter');
  li.append(h('span', 'pos'), h('span', 'who'), h('span', 'tag'));
  return li;
}
