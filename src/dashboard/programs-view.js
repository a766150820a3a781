import { h, reconcile, setText } from './dom.js';
import { modeBadge } from './locks-view.js';
import { resourceKey } from './store.js';

/** @typedef {import('./store.js').Store} Store */
/** @typedef {import('./store.js').Program} Program */
/** @typedef {import('./store.js').ResourceStatus} ResourceStatus */
/** @typedef {import('./store.js').Fn} Fn */

/** Each program with its functions: version, short hash and lock state. */
export class ProgramsView {
  /** @param {Store} store */
  constructor(store) {
    this.store = store;
    this.root = /** @type {HTMLElement} */ (document.getElementById('programs'));
    this.count = /** @type {HTMLElement} */ (document.getElementById('programs-count'));
  }

  render() {
    const s = this.store;
    /** @type {Map<string, ResourceStatus>} */
    const locks = new Map();
    for (const r of s.resources) locks.set(resourceKey(r.resource), r);
    const programs = [...s.programs.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
    setText(this.count, String(programs.length));
    reconcile(
      this.root,
      programs,
      (p) => p.name,
      () => createProgram(),
      (el, p) => {
        const [head, table] = /** @type {HTMLElement[]} */ ([...el.children]);
        if (head !== undefined) {
          const [name, meta, structureBox] = /** @type {HTMLElement[]} */ ([...head.children]);
          const structure = /** @type {HTMLElement | undefined} */ (structureBox?.children[1]);
          if (name !== undefined) setText(name, p.name);
          if (meta !== undefined) setText(meta, `revision ${p.revision} · ${p.functions.size} functions`);
          if (structure !== undefined) lockCell(structure, locks.get(`${p.name}/structure`), '');
        }
        const body = table?.querySelector('tbody');
        if (body === null || body === undefined) return;
        const fns = [...p.functions.values()].sort((a, b) => a.id - b.id);
        reconcile(
          body,
          fns,
          (f) => String(f.id),
          () => createFunctionRow(),
          (tr, f) => {
            const [id, name, version, hash, lock] = /** @type {HTMLElement[]} */ ([...tr.children]);
            if (id !== undefined) setText(id, `f${f.id}`);
            if (name !== undefined) setText(name, f.name);
            if (version !== undefined) setText(version, `v${f.version}`);
            if (hash !== undefined) {
              setText(hash, f.hash.slice(0, 10));
              hash.title = f.hash;
            }
            if (lock !== undefined) lockCell(lock, locks.get(`${p.name}/f${f.id}`), '');
          },
        );
      },
    );
  }
}

/**
 * @param {HTMLElement} cell
 * @param {ResourceStatus | undefined} r
 * @param {string} label
 */
function lockCell(cell, r, label) {
  let [badgeBox, who, queued] = /** @type {HTMLElement[]} */ ([...cell.children]);
  if (badgeBox === undefined || who === undefined || queued === undefined) {
    badgeBox = h('span', 'badge-box');
    who = h('span', 'who');
    queued = h('span', 'badge waiting');
    cell.replaceChildren(badgeBox, who, queued);
  }
  const mode = r?.holders[0]?.mode;
  cell.dataset.lock = mode ?? 'free';
  modeBadge(badgeBox, mode);
  setText(/** @type {Element} */ (badgeBox.firstElementChild), `${label}${mode ?? 'free'}`);
  setText(who, (r?.holders ?? []).map((x) => x.name ?? x.sessionId.slice(0, 8)).join(', '));
  setText(queued, (r?.queue.length ?? 0) === 0 ? '' : `${r?.queue.length} waiting`);
}

function createProgram() {
  const section = h('section', 'program');
  const head = h('header', 'program-head');
  const structure = h('span', 'structure');
  const label = h('span', 'structure-label', 'structure lock (add, remove, rename functions)');
  // "Structure" alone says nothing to someone new: the lock guards which functions exist.
  label.title =
    "Held (write) by whoever adds, removes or renames functions; free means nobody is doing that now. Editing inside a function needs only that function's lock.";
  structure.append(label, h('span', 'lock'));
  head.append(h('h3'), h('span', 'meta'), structure);
  const table = h('table', 'table functions-table');
  const thead = h('thead');
  const tr = h('tr');
  for (const label of ['Id', 'Function', 'Version', 'Hash', 'Lock']) tr.append(h('th', '', label));
  thead.append(tr);
  table.append(thead, h('tbody'));
  section.append(head, table);
  return section;
}

function createFunctionRow() {
  const tr = h('tr');
  tr.append(h('td', 'id'), h('td', 'name'), h('td', 'version'), h('td', 'hash'), h('td', 'lock'));
  return tr;
}
