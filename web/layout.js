// How each remote video is shown on this screen, for the `video_layout` message
// (docs/signalling.md). The server uses it to pick a simulcast layer per video, and sends nothing
// at all for a video that is not visible.
//
// The watcher observes one box per remote tile (the box the video fills) with a ResizeObserver and
// an IntersectionObserver (threshold 0), and listens to `visibilitychange` and window resizes
// (zoom changes devicePixelRatio). Any change schedules a report; reports are debounced. What a
// report contains is decided by the caller (`collect`), which asks `measure(box)` for each video.

export const LAYOUT_DEBOUNCE_MS = 200;
// Keep reporting while things keep changing (e.g. while a window is being dragged larger).
const LAYOUT_MAX_WAIT_MS = 1000;
const MAX_PIXELS = 16384;

function pageVisible() {
  return document.visibilityState !== 'hidden';
}

/** Whether the element is rendered: not display:none (itself or a parent), not `hidden`. */
function displayed(el) {
  if (!el.isConnected) return false;
  if (typeof el.checkVisibility === 'function') {
    return el.checkVisibility({ checkVisibilityCSS: true, visibilityProperty: true });
  }
  return el.getClientRects().length > 0;
}

/** Whole device pixels, within what the server accepts (0…16384). */
function devicePixels(value) {
  return Number.isFinite(value) ? Math.min(MAX_PIXELS, Math.max(0, Math.round(value))) : 0;
}

function inViewport(rect) {
  return (
    rect.bottom > 0 &&
    rect.right > 0 &&
    rect.top < window.innerHeight &&
    rect.left < window.innerWidth
  );
}

export class LayoutWatcher {
  #collect;
  #send;
  #delay;
  #boxes = new Set();
  #onScreen = new WeakMap(); // box → isIntersecting from the IntersectionObserver
  #resizeObserver = null;
  #intersectionObserver = null;
  #timer = null;
  #firstChange = 0;
  #force = false;
  #last = null; // the `tracks` object last sent
  #lastJson = null;

  /**
   * @param {object} options
   * @param {() => object|null} options.collect the `tracks` map to report now, or null (no call)
   * @param {(tracks: object) => boolean} options.send sends it; false when it could not be sent
   * @param {number} [options.delay] debounce in milliseconds
   */
  constructor({ collect, send, delay = LAYOUT_DEBOUNCE_MS }) {
    this.#collect = collect;
    this.#send = send;
    this.#delay = delay;
    const changed = () => this.schedule();
    if (typeof ResizeObserver === 'function') this.#resizeObserver = new ResizeObserver(changed);
    if (typeof IntersectionObserver === 'function') {
      this.#intersectionObserver = new IntersectionObserver(
        (entries) => {
          for (const entry of entries) this.#onScreen.set(entry.target, entry.isIntersecting);
          this.schedule();
        },
        { threshold: 0 },
      );
    }
    document.addEventListener('visibilitychange', changed);
    window.addEventListener('resize', changed);
  }

  /** Start watching a tile's video box. */
  observe(box) {
    if (!box || this.#boxes.has(box)) return;
    this.#boxes.add(box);
    this.#resizeObserver?.observe(box);
    this.#intersectionObserver?.observe(box);
    this.schedule();
  }

  unobserve(box) {
    if (!box || !this.#boxes.delete(box)) return;
    this.#resizeObserver?.unobserve(box);
    this.#intersectionObserver?.unobserve(box);
    this.#onScreen.delete(box);
    this.schedule();
  }

  /**
   * Rendered size in device pixels, and whether the box can be seen at all: page visible, box
   * displayed, in the viewport, not empty. The caller adds its own reasons (camera off, audio
   * only).
   */
  measure(box) {
    if (!box) return { width: 0, height: 0, visible: false };
    const rect = box.getBoundingClientRect();
    const ratio = window.devicePixelRatio || 1;
    const width = devicePixels(rect.width * ratio);
    const height = devicePixels(rect.height * ratio);
    // Until the IntersectionObserver has reported (it does so asynchronously after observe()),
    // work it out from the box's position.
    const onScreen = this.#onScreen.has(box) ? this.#onScreen.get(box) : inViewport(rect);
    const visible = pageVisible() && displayed(box) && onScreen && width > 0 && height > 0;
    return { width, height, visible };
  }

  /** Report soon. With `force`, report even when nothing changed (after an answer: new mids). */
  schedule({ force = false } = {}) {
    if (force) this.#force = true;
    const now = performance.now();
    if (this.#timer === null) this.#firstChange = now;
    else clearTimeout(this.#timer);
    const wait = Math.max(0, Math.min(this.#delay, this.#firstChange + LAYOUT_MAX_WAIT_MS - now));
    this.#timer = setTimeout(() => this.flush(), wait);
  }

  /** Report now if anything changed since the last report (or when forced). */
  flush() {
    clearTimeout(this.#timer);
    this.#timer = null;
    const force = this.#force;
    this.#force = false;
    const tracks = this.#collect();
    if (!tracks) return;
    const json = JSON.stringify(tracks);
    const empty = json === '{}';
    if (empty && (this.#lastJson === null || this.#lastJson === '{}')) return;
    if (!force && json === this.#lastJson) return;
    if (this.#send(tracks)) {
      this.#last = tracks;
      this.#lastJson = json;
    }
  }

  /** A new connection: the server knows nothing yet. */
  reset() {
    clearTimeout(this.#timer);
    this.#timer = null;
    this.#force = false;
    this.#last = null;
    this.#lastJson = null;
  }

  /** A copy of the `tracks` object last sent, or null. */
  get last() {
    return this.#last ? structuredClone(this.#last) : null;
  }
}
