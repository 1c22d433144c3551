// The call page's entry module: wires call.html's buttons to the modules that do the work and
// starts the call. The modules, by concern:
//   devices.js, local-media.js   camera and microphone
//   session.js, signalling.js    the call session: signalling socket and RTCPeerConnection
//   simulcast.js                 the camera's simulcast layers
//   flow.js                      starting, reconnecting, errors, leaving
//   participants.js, tiles.js, layout.js   tiles, who speaks, and the video layout reports
//   controls.js                  microphone, camera, audio-only and the weak-connection hint
//   recording.js                 the recording banner and the employee's start/stop dialogs
//   announcer.js                 screen-reader announcements
//   status.js, i18n.js           the page state, its texts and the two languages
//   store.js, ui.js              the shared state and the page's elements
// The protocol is described in docs/signalling.md.
//
// Hooks for automated tests:
//   window.balie.state            'connecting' | 'joined' | 'reconnecting' | 'left' | 'error'
//   window.balie.pc()             the current RTCPeerConnection or null
//   window.balie.participants()   copies of the other participants' objects from the server
//   window.balie.selfId()         own participant id (null before joining)
//   window.balie.lastLayout()     the `tracks` of the last `video_layout` sent (null before any)
//   window.balie.audioOnly()      whether audio-only (low-bandwidth) mode is on
//   window.balie.activeSpeaker()  the participant id of the last `active_speaker`, or null
//   window.balie.publisherLayers() the last `publisher_layers` wish {q, h, f} on this connection
//                                 (null: none yet, all layers active)
//   window.balie.recording()      the id of the recording running in this call, or null
//   document.body.dataset.callState mirrors window.balie.state

import { toggleAnnounceSpeaker } from './announcer.js';
import { onToolbarKey, setAudioOnly, snoozeSuggestion, toggleMute } from './controls.js';
import { leave, startCall } from './flow.js';
import { detectLanguage, fragmentParams, getLanguage, onLanguageChange, setLanguage }
  from './i18n.js';
import { clearRemoteMedia, createSelfTile, layout } from './participants.js';
import { wireRecording } from './recording.js';
import { connect, teardownSession } from './session.js';
import { renderAll, setState, setStatus, showMessage } from './status.js';
import { call } from './store.js';
import { ui } from './ui.js';

function readToken() {
  return fragmentParams().get('token')?.trim() || null;
}

function wireUi() {
  ui.mic.addEventListener('click', () => toggleMute('audio'));
  ui.cam.addEventListener('click', () => toggleMute('video'));
  ui.leave.addEventListener('click', leave);
  ui.audioOnly.addEventListener('click', () => setAudioOnly(!call.audioOnly));
  ui.announceSpeaker.addEventListener('click', toggleAnnounceSpeaker);
  ui.suggestionAccept.addEventListener('click', () => {
    setAudioOnly(true);
    ui.audioOnly.focus(); // its label now says how to undo this
  });
  ui.suggestionDismiss.addEventListener('click', snoozeSuggestion);
  ui.suggestion.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') snoozeSuggestion(); // same as "Nee, bedankt"
  });
  ui.controls.addEventListener('keydown', onToolbarKey);
  wireRecording();
  ui.messageAction.addEventListener('click', () => call.message?.onAction?.());
  ui.reload.addEventListener('click', () => window.location.reload());
  ui.sound.addEventListener('click', async () => {
    ui.soundBox.hidden = true;
    await Promise.all([...call.tiles.values()].map((tile) => tile.playAudio()));
  });
  ui.langToggle.addEventListener('click', () => {
    setLanguage(getLanguage() === 'nl' ? 'en' : 'nl', { remember: true });
  });
  onLanguageChange(renderAll);
  window.addEventListener('hashchange', onHashChange);
  window.addEventListener('pagehide', onPageHide);
  window.addEventListener('pageshow', onPageShow);
}

function onHashChange() {
  const next = readToken();
  if (next && next !== call.token) {
    window.location.reload();
    return;
  }
  const lang = fragmentParams().get('lang');
  if (lang && lang !== getLanguage()) setLanguage(lang);
}

/** Closing the tab or going elsewhere: tell the server at once instead of after the grace period. */
function onPageHide() {
  if (!call.session) return;
  call.session.sig.send({ type: 'leave' });
  teardownSession(1000);
  clearTimeout(call.reconnectTimer);
  call.suspended = true;
}

/** Back from the browser's back/forward cache: join again. */
function onPageShow(event) {
  if (!event.persisted || !call.suspended) return;
  call.suspended = false;
  call.attempts = 0;
  if (call.state === 'joined' || call.state === 'reconnecting' || call.state === 'connecting') {
    clearRemoteMedia();
    setState('reconnecting');
    setStatus('status.reconnecting');
    connect();
  }
}

function exposeForTests() {
  window.balie = Object.freeze({
    get state() {
      return call.state;
    },
    pc: () => call.session?.pc ?? null,
    participants: () => [...call.participants.values()].map((p) => structuredClone(p)),
    selfId: () => call.selfInfo?.id ?? null,
    localStream: () => call.localStream,
    lastLayout: () => layout.last,
    audioOnly: () => call.audioOnly,
    activeSpeaker: () => call.activeSpeaker,
    publisherLayers: () => (call.layerWish ? { ...call.layerWish } : null),
    recording: () => call.recording?.id ?? null,
  });
}

function main() {
  createSelfTile();
  wireUi();
  exposeForTests();
  setLanguage(detectLanguage()); // renders all texts through onLanguageChange
  call.token = readToken();
  if (!call.token) {
    setState('error');
    setStatus('status.error');
    showMessage({ title: 'msg.noToken.title', text: 'msg.noToken.text', action: null });
    return;
  }
  startCall();
}

main();
