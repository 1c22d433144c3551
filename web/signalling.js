// The signalling WebSocket to `/rtc` (see docs/signalling.md).
//
// Events (all CustomEvents):
//   open     – the socket is open and `join` has been sent
//   message  – detail: one parsed JSON message from the server
//   close    – detail: {code, reason, wasClean, intentional}; fired once per connection

const PING_INTERVAL_MS = 15_000;
// No message at all (not even a pong) for this long means the socket is dead.
const SILENCE_TIMEOUT_MS = 40_000;

/** `ws(s)://<this host>/rtc`, following the page's own protocol. */
export function signallingUrl(location = window.location) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/rtc`;
}

export class Signalling extends EventTarget {
  #token;
  #url;
  #ws = null;
  #pingTimer = null;
  #lastHeard = 0;
  #closed = false;
  #intentional = false;

  constructor(token, { url = signallingUrl() } = {}) {
    super();
    this.#token = token;
    this.#url = url;
  }

  get isOpen() {
    return this.#ws?.readyState === WebSocket.OPEN;
  }

  connect() {
    if (this.#ws) throw new Error('Signalling.connect() may only be called once');
    let ws;
    try {
      ws = new WebSocket(this.#url);
    } catch (err) {
      console.debug('signalling: cannot open socket', err);
      queueMicrotask(() => this.#finish({ code: 1006, reason: 'cannot open', wasClean: false }));
      return;
    }
    this.#ws = ws;
    ws.addEventListener('open', () => this.#onOpen());
    ws.addEventListener('message', (event) => this.#onMessage(event));
    ws.addEventListener('close', (event) => this.#finish(event));
    // An `error` is always followed by `close`; nothing to do here.
  }

  /** Send one message as JSON. Returns false when the socket is not open. */
  send(message) {
    if (!this.isOpen) return false;
    this.#ws.send(JSON.stringify(message));
    return true;
  }

  /** Close on purpose (after `leave`, or when giving up on this connection). */
  close(code = 1000, reason = '') {
    this.#intentional = true;
    this.#shutdown(code, reason);
    this.#finish({ code, reason, wasClean: true });
  }

  #onOpen() {
    this.#lastHeard = Date.now();
    this.send({ type: 'join', token: this.#token });
    this.#pingTimer = setInterval(() => this.#tick(), PING_INTERVAL_MS);
    this.dispatchEvent(new CustomEvent('open'));
  }

  #onMessage(event) {
    this.#lastHeard = Date.now();
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      console.debug('signalling: ignoring a message that is not JSON');
      return;
    }
    if (message === null || typeof message !== 'object' || typeof message.type !== 'string') {
      console.debug('signalling: ignoring a message without a type');
      return;
    }
    this.dispatchEvent(new CustomEvent('message', { detail: message }));
  }

  #tick() {
    if (Date.now() - this.#lastHeard > SILENCE_TIMEOUT_MS) {
      console.debug('signalling: no answer from the server, closing');
      this.#shutdown(4000, 'silent');
      this.#finish({ code: 1006, reason: 'silent', wasClean: false });
      return;
    }
    this.send({ type: 'ping' });
  }

  #shutdown(code, reason) {
    clearInterval(this.#pingTimer);
    this.#pingTimer = null;
    const ws = this.#ws;
    if (!ws || ws.readyState === WebSocket.CLOSING || ws.readyState === WebSocket.CLOSED) return;
    try {
      // Browsers only accept 1000 or 3000–4999 from scripts.
      ws.close(code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000, reason);
    } catch (err) {
      console.debug('signalling: close failed', err);
    }
  }

  #finish({ code, reason, wasClean }) {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#pingTimer);
    this.#pingTimer = null;
    const detail = { code, reason, wasClean, intentional: this.#intentional };
    this.dispatchEvent(new CustomEvent('close', { detail }));
  }
}
