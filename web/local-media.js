// The own camera and microphone in the call: the local stream, its on/off state as the others
// see it, and the notice that explains a missing device.

import { acquireMedia, mediaProblemKeys } from './devices.js';
import { t } from './i18n.js';
import { renderControls, sendMute } from './controls.js';
import { renderSelf } from './participants.js';
import { setStatus } from './status.js';
import { call } from './store.js';
import { ui } from './ui.js';

const PERMISSION_HINT_DELAY_MS = 400;

export function liveTrack(kind) {
  return (
    call.localStream.getTracks().find((tr) => tr.kind === kind && tr.readyState === 'live') ?? null
  );
}

/** Muted as far as the others can tell: switched off, or no working device. */
export function isMuted(kind) {
  return call.muted[kind] || !liveTrack(kind);
}

/** What the others are told: audio-only mode sends no video, so the camera counts as off. */
export function isMutedForOthers(kind) {
  return isMuted(kind) || (kind === 'video' && call.audioOnly);
}

/** A local track sends only when its button is on (and, for the camera, not in audio-only mode). */
export function trackEnabled(kind) {
  return !call.muted[kind] && !(kind === 'video' && call.audioOnly);
}

export function ensureLocalMedia() {
  if (call.localStream.getTracks().some((tr) => tr.readyState === 'live')) return Promise.resolve();
  call.mediaRequest ??= requestLocalMedia().finally(() => {
    call.mediaRequest = null;
    renderControls();
  });
  renderControls();
  return call.mediaRequest;
}

async function requestLocalMedia() {
  const hint = setTimeout(() => setStatus('status.media'), PERMISSION_HINT_DELAY_MS);
  const { stream, problem } = await acquireMedia();
  clearTimeout(hint);
  for (const track of call.localStream.getTracks()) track.stop();
  call.localStream = stream;
  call.mediaProblem = problem;
  for (const track of call.localStream.getTracks()) {
    track.enabled = trackEnabled(track.kind);
    track.addEventListener('ended', () => onLocalTrackEnded(track));
  }
  renderMediaNotice();
  renderSelf();
}

export function stopLocalMedia() {
  for (const track of call.localStream.getTracks()) track.stop();
  call.localStream = new MediaStream();
  call.selfTile?.clearTracks();
}

function onLocalTrackEnded(track) {
  if (!call.localStream.getTracks().includes(track)) return;
  console.debug('call: local track ended', track.kind);
  sendMute(track.kind);
  renderSelf();
  renderControls();
}

export function renderMediaNotice() {
  const problem = call.mediaProblem;
  ui.notice.hidden = !problem;
  if (!problem) return;
  ui.noticeText.replaceChildren(
    ...mediaProblemKeys(problem).map((key) => {
      const p = document.createElement('p');
      p.textContent = t(key);
      return p;
    }),
  );
  ui.reload.hidden = problem.reason === 'unsupported';
}
