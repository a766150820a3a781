import { h } from './dom.js';
import { clockTime, summarize } from './format.js';

/** @typedef {import('./store.js').Store} Store */
/** @typedef {import('./store.js').EventItem} EventItem */
/** @typedef {import('./store.js').GapMarker} GapMarker */

/** Rows kept in the DOM: enough to read back a burst, few enough that layout stays cheap. */
const ROWS = 300;

/** The live event log, newest first, filtered by topic. Appends new rows; never re-renders the lot. */
export class LogView {
  /** @param {Store} store */
  constructor(store) {
    this.store = store;
    this.list = /** @type {HTMLElement} */ (document.getElementById('log'));
    /** How many of the store's log entries are already on the page (or were skipped by the filter). */
    this.rendered = 0;
    /** @type {Set<string>} */
    this.topics = new Set();
    for (const box of /** @type {NodeListOf<HTMLInputElement>} */ (document.querySelectorAll('input[name=topic]'))) {
      if (box.checked) this.topics.add(box.value);
      box.addEventListener('change', () => {
        if (box.checked) this.topics.add(box.value);
        else this.topics.delete(box.value);
        this.rendered = 0;
        this.list.replaceChildren();
        this.render();
      });
    }
  }

  render() {
    const { log, logTotal } = this.store;
    const firstIndex = logTotal - log.length;
    /** @type {HTMLElement[]} */
    const rows = [];
    for (let i = log.length - 1; i >= 0 && firstIndex + i >= this.rendered && rows.length < ROWS; i--) {
      const entry = /** @type {EventItem | GapMarker} */ (log[i]);
      if ('gap' in entry) rows.push(gapRow(entry));
      else if (this.topics.has(entry.topic)) rows.push(this.row(entry));
    }
    this.rendered = logTotal;
    if (rows.length === 0) return;
    this.list.prepend(...rows);
    while (this.list.childElementCount > ROWS) this.list.lastElementChild?.remove();
  }

  /** @param {EventItem} e */
  row(e) {
    const li = h('li', `ev topic-${e.topic} type-${e.type}`);
    li.dataset.seq = String(e.seq);
    li.dataset.topic = e.topic;
    li.append(
      h('time', 'at', clockTime(e.time)),
      h('span', 'seq', `#${e.seq}`),
      h('span', 'type', e.type),
      h('span', 'text', summarize(e, this.store.functionName.bind(this.store))),
    );
    return li;
  }
}

/** @param {GapMarker} g */
function gapRow(g) {
  const li = h('li', 'ev gap');
  li.append(
    h('time', 'at', clockTime(g.time)),
    h('span', 'text', `events after #${g.seq} were no longer buffered: state re-read from the server`),
  );
  return li;
}
