import { h, setText } from './dom.js';

/** @typedef {import('./store.js').Store} Store */
/** @typedef {import('./store.js').ResourceStatus} ResourceStatus */

/**
 * @typedef {object} PathNode
 * @property {string} name the last segment
 * @property {string} path the whole path
 * @property {ResourceStatus | undefined} lock
 * @property {PathNode[]} children
 */

/**
 * The path locks of one program as the tree of their paths, segments sorted: a lock covers
 * everything below it, so a directory's lock is shown above its files'.
 * @param {ResourceStatus[]} locks path locks of one program
 * @returns {PathNode[]}
 */
export function pathTree(locks) {
  /** @type {PathNode} */
  const root = { name: '', path: '', lock: undefined, children: [] };
  for (const r of locks) {
    let node = root;
    for (const name of String(r.resource.path).split('/')) {
      let next = node.children.find((c) => c.name === name);
      if (next === undefined) {
        next = { name, path: node.path === '' ? name : `${node.path}/${name}`, lock: undefined, children: [] };
        node.children.push(next);
      }
      node = next;
    }
    node.lock = r;
  }
  /** @param {PathNode[]} nodes */
  const sort = (nodes) => {
    nodes.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const n of nodes) sort(n.children);
  };
  sort(root.children);
  return root.children;
}

/** Path locks as a tree per program: each locked path with its holders and its queue in order. */
export class PathsView {
  /** @param {Store} store */
  constructor(store) {
    this.store = store;
    this.body = /** @type {HTMLElement} */ (document.getElementById('paths'));
    this.empty = /** @type {HTMLElement} */ (document.getElementById('paths-empty'));
    this.count = /** @type {HTMLElement} */ (document.getElementById('paths-count'));
  }

  render() {
    const locks = this.store.resources.filter((r) => r.resource.path !== undefined);
    this.empty.hidden = locks.length > 0;
    const held = locks.filter((r) => r.holders.length > 0).length;
    setText(
      this.count,
      locks.length === 0 ? '' : `${held} held${held < locks.length ? ` · ${locks.length - held} awaited` : ''}`,
    );
    /** @type {Map<string, ResourceStatus[]>} */
    const byProgram = new Map();
    for (const r of locks) byProgram.set(r.resource.program, [...(byProgram.get(r.resource.program) ?? []), r]);
    // Rebuilt whole: a tree of a few dozen locks, re-read once per burst of lock events.
    this.body.replaceChildren(
      ...[...byProgram].map(([program, rs]) => {
        const section = h('div', 'path-program');
        section.dataset.program = program;
        section.append(h('div', 'path-program-name', program), this.list(pathTree(rs)));
        return section;
      }),
    );
  }

  /** @param {PathNode[]} nodes */
  list(nodes) {
    const ul = h('ul', 'path-tree');
    for (const node of nodes) {
      const li = h('li', 'path-node');
      li.dataset.path = node.path;
      const line = h('div', node.lock === undefined ? 'path-line' : `path-line ${lineClass(node.lock)}`);
      line.append(h('span', 'seg', node.children.length > 0 ? `${node.name}/` : node.name));
      if (node.lock !== undefined) line.append(...this.lockParts(node.lock));
      li.append(line);
      if (node.children.length > 0) li.append(this.list(node.children));
      ul.append(li);
    }
    return ul;
  }

  /** @param {ResourceStatus} r */
  lockParts(r) {
    const me = this.store.selfId;
    const holders = h('span', 'path-holders');
    for (const x of r.holders) {
      const el = h('span', 'holder');
      el.append(
        h('span', `badge mode-${x.mode}`, x.mode),
        h('span', 'who', x.sessionId === me ? 'you' : (x.name ?? x.sessionId.slice(0, 8))),
      );
      if (x.description !== undefined) el.append(h('span', 'desc', x.description));
      holders.append(el);
    }
    if (r.holders.length === 0) holders.append(h('span', 'badge free', 'free'));
    const queue = h('ol', 'waiters');
    for (const q of [...r.queue].sort((a, b) => a.position - b.position)) {
      const li = h('li', `waiter mode-${q.mode}`);
      li.append(
        h('span', 'pos', String(q.position)),
        h('span', 'who', q.name ?? q.sessionId.slice(0, 8)),
        h('span', 'tag', q.mode),
      );
      queue.append(li);
    }
    return [holders, queue];
  }
}

/** @param {ResourceStatus} r */
function lineClass(r) {
  const mode = r.holders[0]?.mode;
  return mode === undefined ? 'row-waiting' : `row-${mode}`;
}
