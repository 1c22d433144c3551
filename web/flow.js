// The call from start to end: starting (camera and microphone first), reconnecting with backoff
// after a lost connection, giving up, fatal errors, leaving and starting again.

import { focusControls, renderControls } from './controls.js';
import { has } from './i18n.js';
import { ensureLocalMedia, stopLocalMedia } from './local-media.js';
import { clearRemoteMedia, removeAllParticipants, renderSelf } from './participants.js';
import { renderRecordButton } from './recording.js';
import { connect, teardownSession } from './session.js';
import { hideMessage, setState, setStatus, showMessage } from './status.js';
import { call } from './store.js';
import { ui } from './ui.js';

const MAX_ATTEMPTS = 20;
const BASE_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 8000;
const NO_RETRY_CODES = new Set(['invalid_token', 'token_expired', 'noToken']);

function backoff(attempt) {
  return Math.min(BASE_BACKOFF_MS * 2 ** (attempt - 1), MAX_BACKOFF_MS);
}

export function reconnect(reason) {
  if (call.state === 'left' || call.state === 'error' || call.suspended) return;
  console.debug('call: reconnecting:', reason);
  teardownSession();
  clearRemoteMedia();
  call.attempts += 1;
  if (call.attempts > MAX_ATTEMPTS) {
    giveUp();
    return;
  }
  setState('reconnecting');
  setStatus('status.reconnecting');
  clearTimeout(call.reconnectTimer);
  call.reconnectTimer = setTimeout(connect, backoff(call.attempts));
}

function stopCall() {
  clearTimeout(call.reconnectTimer);
  call.reconnectTimer = null;
  teardownSession();
  removeAllParticipants();
  stopLocalMedia();
  call.selfInfo = null;
  call.roomId = null;
  renderSelf();
  renderControls();
  renderRecordButton();
}

function giveUp() {
  stopCall();
  setState('error');
  setStatus('status.error');
  showMessage({
    title: 'msg.gaveUp.title',
    text: 'msg.gaveUp.text',
    action: 'msg.retry',
    onAction: restart,
  });
}

/** A fatal problem: show what it means and what to do. */
export function fail(code) {
  stopCall();
  setState('error');
  setStatus('status.error');
  const known = has(`msg.${code}.title`) ? code : 'generic';
  const action = NO_RETRY_CODES.has(known)
    ? null
    : has(`msg.${known}.action`)
      ? `msg.${known}.action`
      : 'msg.retry';
  showMessage({
    title: `msg.${known}.title`,
    text: `msg.${known}.text`,
    action,
    onAction: restart,
  });
}

export function leave() {
  if (call.state === 'left' || call.state === 'error') return;
  call.session?.sig.send({ type: 'leave' });
  teardownSession(1000);
  stopCall();
  setState('left');
  setStatus('status.left');
  showMessage({
    title: 'msg.left.title',
    text: 'msg.left.text',
    action: 'msg.left.action',
    onAction: restart,
  });
}

export async function startCall() {
  const generation = ++call.startGeneration;
  setState('connecting');
  setStatus('status.connecting');
  await ensureLocalMedia();
  if (generation !== call.startGeneration) return; // a newer start took over
  if (call.state !== 'connecting') {
    stopLocalMedia(); // left while the browser was asking for permission
    return;
  }
  setStatus('status.connecting');
  connect();
}

function restart() {
  const hadFocus = ui.message.contains(document.activeElement);
  call.attempts = 0;
  hideMessage();
  startCall();
  if (hadFocus) focusControls();
}
