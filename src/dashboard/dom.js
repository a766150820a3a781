// Small DOM helpers: keyed list updates that touch only what changed.

/**
 * @param {string} tag
 * @param {string} [className]
 * @param {string} [text]
 * @returns {HTMLElement}
 */
export function h(tag, className, text) {
  const el = document.createElement(tag);
  if (className !== undefined && className !== '') el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

/** Writes only on change: an unchanged text costs a comparison, not a layout. */
export function setText(/** @type {Element} */ el, /** @type {string} */ text) {
  if (el.textContent !== text) el.textContent = text;
}

export function setClass(/** @type {Element} */ el, /** @type {string} */ className) {
  if (el.className !== className) el.className = className;
}

/** @type {WeakMap<Element, Map<string, HTMLElement>>} */
const keyed = new WeakMap();

/**
 * Makes parent's children one element per item, in order, reusing the element of each key:
 * new keys are created, gone keys removed, and existing elements only updated and moved.
 * @template T
 * @param {Element} parent
 * @param {readonly T[]} items
 * @param {(item: T) => string} keyOf
 * @param {(item: T) => HTMLElement} create
 * @param {(el: HTMLElement, item: T) => void} update
 */
export function reconcile(parent, items, keyOf, create, update) {
  let rows = keyed.get(parent);
  if (rows === undefined) {
    rows = new Map();
    keyed.set(parent, rows);
  }
  const keys = items.map(keyOf);
  const wanted = new Set(keys);
  for (const [key, el] of rows) {
    if (!wanted.has(key)) {
      el.remove();
      rows.delete(key);
    }
  }
  let cursor = parent.firstElementChild;
  items.forEach((item, i) => {
    const key = /** @type {string} */ (keys[i]);
    let el = rows.get(key);
    if (el === undefined) {
      el = create(item);
      el.dataset.key = key;
      rows.set(key, el);
    }
    update(el, item);
    if (el === cursor) cursor = cursor.nextElementSibling;
    else parent.insertBefore(el, cursor);
  });
}
