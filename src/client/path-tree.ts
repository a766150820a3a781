// Path locks as the tree of their paths (for `lockstep status`, the MCP bridge's path_status):
// a lock covers everything below its path, so a reader sees a directory's lock above its files'.

/** One segment of the tree: the lock on its path, if there is one, and what is below it. */
export interface PathNode<T> {
  /** The last segment ("main.ts"). */
  name: string;
  /** The whole path ("src/app/main.ts"). */
  path: string;
  lock: T | undefined;
  children: PathNode<T>[];
}

/** The locks of one program as a tree of their paths, segments in byte order. */
export function pathTree<T>(locks: ReadonlyArray<{ path: string; lock: T }>): PathNode<T>[] {
  const root: PathNode<T> = { name: '', path: '', lock: undefined, children: [] };
  for (const { path, lock } of locks) {
    let node = root;
    for (const name of path.split('/')) {
      let next = node.children.find((c) => c.name === name);
      if (next === undefined) {
        next = { name, path: node.path === '' ? name : `${node.path}/${name}`, lock: undefined, children: [] };
        node.children.push(next);
      }
      node = next;
    }
    node.lock = lock;
  }
  const sort = (nodes: PathNode<T>[]) => {
    nodes.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const n of nodes) sort(n.children);
  };
  sort(root.children);
  return root.children;
}

/**
 * The tree as indented lines: a node with one child and no lock is joined with it ("src/app/"),
 * so a deep lock takes one line; `describe` says what a lock is.
 */
export function pathTreeLines<T>(nodes: readonly PathNode<T>[], describe: (lock: T) => string, indent = ''): string[] {
  const out: string[] = [];
  for (let node of nodes) {
    let name = node.name;
    while (node.lock === undefined && node.children.length === 1) {
      node = node.children[0] as PathNode<T>;
      name = `${name}/${node.name}`;
    }
    const dir = node.children.length > 0 ? '/' : '';
    out.push(`${indent}${name}${dir}${node.lock === undefined ? '' : `  ${describe(node.lock)}`}`);
    out.push(...pathTreeLines(node.children, describe, `${indent}  `));
  }
  return out;
}

/**
 * What a path nobody holds is to someone who wants it: free, or free here but held above it or
 * below it, which blocks a lock on it all the same (a lock covers what is below its path). `held`:
 * the paths of the program held now.
 */
export function freePathLabel(path: string, held: readonly string[]): string {
  const around = [
    ...(held.some((h) => path.startsWith(`${h}/`)) ? ['above'] : []),
    ...(held.some((h) => h.startsWith(`${path}/`)) ? ['below'] : []),
  ];
  return around.length === 0 ? 'free' : `free here; held ${around.join(' and ')}`;
}
