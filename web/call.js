// The call page: camera and microphone, signalling, one RTCPeerConnection to the SFU, tiles,
// controls and reconnecting. The protocol is described in docs/signalling.md.
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

import { detectLanguage, fragmentParams, getLanguage, has, onLanguageChange, setLanguage, t }
  from './i18n.js';
import { LayoutWatcher } from './layout.js';
import { Signalling } from './signalling.js';
import { isTrackMuted, Tile } from './tiles.js';

const KINDS = ['audio', 'video'];
const MEDIA_CONSTRAINTS = {
  audio: true,
  video: { width: { ideal: 1280 }, height: { ideal: 720 } },
};
// The camera as VP8 simulcast, lowest layer first (docs/signalling.md, "Simulcast").
const SIMULCAST_LAYERS = Object.freeze([
  Object.freeze({ rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 }),
  Object.freeze({ rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 }),
  Object.freeze({ rid: 'f', maxBitrate: 1_500_000 }),
]);
const RIDS = SIMULCAST_LAYERS.map((layer) => layer.rid);
const SPEAKER_ANNOUNCE_GAP_MS = 3000;
const SPEAKER_STORAGE_KEY = 'balie.announceSpeaker';
const BANDWIDTH_SNOOZE_MS = 2 * 60_000; // "Nee, bedankt" keeps the suggestion away this long
const SUGGESTION_TEXT_DELAY_MS = 100; // fill the live region after it is shown, so it is read
const MAX_ATTEMPTS = 20;
const BASE_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 8000;
const DISCONNECTED_GRACE_MS = 3000;
const JOIN_TIMEOUT_MS = 15_000; // socket opened and `joined` received
const CONNECT_TIMEOUT_MS = 20_000; // `joined` received and media flowing
const PERMISSION_HINT_DELAY_MS = 400;
const MAX_ANNOUNCEMENTS = 5;
const RECORDING_STOPPED_CLEAR_MS = 10_000; // "De opname is gestopt" is not read again after this
// Close codes that mean "do not come back" when no `error` message explained them.
const FATAL_CLOSE_CODES = new Map([
  [4400, 'generic'],
  [4401, 'invalid_token'],
  [4408, 'generic'],
  [4409, 'replaced'],
  [4429, 'room_full'],
]);
const NO_RETRY_CODES = new Set(['invalid_token', 'token_expired', 'noToken']);

const $ = (id) => document.getElementById(id);
const ui = {
  status: $('status'),
  langToggle: $('lang-toggle'),
  notice: $('media-notice'),
  noticeText: $('media-notice-text'),
  reload: $('btn-reload'),
  soundBox: $('sound-box'),
  sound: $('btn-sound'),
  message: $('message'),
  messageTitle: $('message-title'),
  messageText: $('message-text'),
  messageAction: $('message-action'),
  call: $('call'),
  tiles: $('tiles'),
  waiting: $('waiting'),
  controls: $('controls'),
  mic: $('btn-mic'),
  cam: $('btn-cam'),
  leave: $('btn-leave'),
  audioOnly: $('btn-audio-only'),
  announcer: $('announcer'),
  settings: $('settings'),
  announceSpeaker: $('btn-announce-speaker'),
  suggestion: $('bandwidth-suggestion'),
  suggestionText: $('bandwidth-suggestion-text'),
  suggestionAccept: $('btn-bandwidth-audio-only'),
  suggestionDismiss: $('btn-bandwidth-dismiss'),
  recordingStatus: $('recording-status'),
  recordingBanner: $('recording-banner'),
  recordingText: $('recording-banner-text'),
  recordingStopped: $('recording-stopped'),
  record: $('btn-record'),
  recordDialog: $('record-dialog'),
  recordForm: $('record-form'),
  recordError: $('record-error'),
  recordCancel: $('record-cancel'),
  recordSubmit: $('record-submit'),
  consentGivenBy: $('consent-given-by'),
  consentStatement: $('consent-statement'),
  consentAgreed: $('consent-agreed'),
  stopDialog: $('stop-dialog'),
  stopForm: $('stop-form'),
  stopError: $('stop-error'),
  stopCancel: $('stop-cancel'),
  stopSubmit: $('stop-submit'),
};

let state = 'connecting';
let token = null;
let localStream = new MediaStream();
let mediaProblem = null; // {missing: ['video'], reason: 'denied'} or null
const muted = { audio: false, video: false };
let session = null; // the current connection attempt, see connect()
let selfInfo = null; // own participant object from `joined`
const participants = new Map(); // id → participant object (the others)
const tiles = new Map(); // id → Tile (the others)
let selfTile = null;
let attempts = 0;
let reconnectTimer = null;
let mediaRequest = null; // the pending camera/microphone request, shared by concurrent starts
let startGeneration = 0;
let suspended = false;
let statusKey = 'status.connecting';
let message = null; // {title, text, action, onAction}
let audioOnly = false; // low-bandwidth mode: no video in either direction
let layerWish = null; // last `publisher_layers` {rid: boolean} on this connection; null = all
let activeSpeaker = null; // participant id from the latest `active_speaker`
let announceSpeaker = readAnnounceSpeaker();
let lastSpeakerAnnouncement = -Infinity;
let lastAnnouncedSpeaker = null;
let speakerAnnounceTimer = null;
let bandwidthLow = false;
let suggestionSnoozedUntil = 0;
let suggestionTimer = null;
let suggestionTextTimer = null;
let roomId = null; // the `room` of the latest `joined`
let recording = null; // {id} while the server says this call is being recorded
let recordingStopped = false; // a recording stopped on this connection: say so
let recordingBusy = false; // a start or stop request is on its way
let recordingStoppedTimer = null;
const layout = new LayoutWatcher({ collect: collectLayout, send: sendLayout });

// ---------------------------------------------------------------- state and texts

function setState(next) {
  state = next;
  document.body.dataset.callState = next;
  const inCall = next === 'connecting' || next === 'joined' || next === 'reconnecting';
  ui.call.hidden = !inCall;
  ui.controls.hidden = !inCall;
  ui.settings.hidden = !inCall;
  renderWaiting();
  renderSuggestion();
  renderRecordButton();
}

function setStatus(key) {
  statusKey = key;
  ui.status.textContent = t(key);
}

function announce(text) {
  const line = document.createElement('p');
  line.textContent = text;
  ui.announcer.append(line);
  while (ui.announcer.childElementCount > MAX_ANNOUNCEMENTS) ui.announcer.firstElementChild.remove();
}

function showMessage(next) {
  message = next;
  renderMessage();
  ui.message.hidden = false;
  ui.messageTitle.focus();
}

function hideMessage() {
  message = null;
  ui.message.hidden = true;
}

function renderMessage() {
  if (!message) return;
  ui.messageTitle.textContent = t(message.title);
  ui.messageText.textContent = t(message.text);
  ui.messageAction.hidden = !message.action;
  ui.messageAction.textContent = message.action ? t(message.action) : '';
}

function renderLanguageToggle() {
  ui.langToggle.textContent = t('lang.switch');
  ui.langToggle.lang = t('lang.switchLang');
  ui.langToggle.setAttribute('aria-label', t('lang.switchLabel'));
}

function renderWaiting() {
  ui.waiting.hidden = !(state === 'joined' && participants.size === 0);
}

function renderAll() {
  renderLanguageToggle();
  ui.status.textContent = t(statusKey);
  renderMessage();
  renderMediaNotice();
  renderControls();
  renderAnnounceSpeaker();
  renderSuggestionText();
  renderRecording();
  selfTile?.render();
  for (const tile of tiles.values()) tile.render();
}

// ---------------------------------------------------------------- local media

function liveTrack(kind) {
  return localStream.getTracks().find((tr) => tr.kind === kind && tr.readyState === 'live') ?? null;
}

/** Muted as far as the others can tell: switched off, or no working device. */
function isMuted(kind) {
  return muted[kind] || !liveTrack(kind);
}

/** What the others are told: audio-only mode sends no video, so the camera counts as off. */
function isMutedForOthers(kind) {
  return isMuted(kind) || (kind === 'video' && audioOnly);
}

/** A local track sends only when its button is on (and, for the camera, not in audio-only mode). */
function trackEnabled(kind) {
  return !muted[kind] && !(kind === 'video' && audioOnly);
}

function classifyMediaError(error) {
  switch (error?.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'denied';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'notfound';
    case 'NotReadableError':
    case 'AbortError':
      return 'busy';
    default:
      return 'other';
  }
}

async function permissionState(kind) {
  try {
    const name = kind === 'audio' ? 'microphone' : 'camera';
    return (await navigator.permissions.query({ name })).state;
  } catch {
    return 'unknown';
  }
}

/** Try one kind alone. After a refusal, only where permission is already granted (no new prompts). */
async function tryKind(kind, firstReason) {
  if (firstReason === 'denied' && (await permissionState(kind)) !== 'granted') return null;
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ [kind]: MEDIA_CONSTRAINTS[kind] });
    return stream.getTracks()[0] ?? null;
  } catch (error) {
    console.debug(`call: no ${kind}`, error);
    return null;
  }
}

/** Camera and microphone, or as much of them as works. Never throws. */
async function acquireMedia() {
  if (!navigator.mediaDevices?.getUserMedia) {
    return { stream: new MediaStream(), problem: { missing: [...KINDS], reason: 'unsupported' } };
  }
  try {
    return { stream: await navigator.mediaDevices.getUserMedia(MEDIA_CONSTRAINTS), problem: null };
  } catch (error) {
    console.debug('call: getUserMedia failed', error);
    const reason = classifyMediaError(error);
    const tracks = [];
    for (const kind of KINDS) {
      const track = await tryKind(kind, reason);
      if (track) tracks.push(track);
    }
    const stream = new MediaStream(tracks);
    const missing = KINDS.filter((kind) => !stream.getTracks().some((tr) => tr.kind === kind));
    return { stream, problem: missing.length ? { missing, reason } : null };
  }
}

function ensureLocalMedia() {
  if (localStream.getTracks().some((tr) => tr.readyState === 'live')) return Promise.resolve();
  mediaRequest ??= requestLocalMedia().finally(() => {
    mediaRequest = null;
    renderControls();
  });
  renderControls();
  return mediaRequest;
}

async function requestLocalMedia() {
  const hint = setTimeout(() => setStatus('status.media'), PERMISSION_HINT_DELAY_MS);
  const { stream, problem } = await acquireMedia();
  clearTimeout(hint);
  for (const track of localStream.getTracks()) track.stop();
  localStream = stream;
  mediaProblem = problem;
  for (const track of localStream.getTracks()) {
    track.enabled = trackEnabled(track.kind);
    track.addEventListener('ended', () => onLocalTrackEnded(track));
  }
  renderMediaNotice();
  renderSelf();
}

function stopLocalMedia() {
  for (const track of localStream.getTracks()) track.stop();
  localStream = new MediaStream();
  selfTile?.clearTracks();
}

function onLocalTrackEnded(track) {
  if (!localStream.getTracks().includes(track)) return;
  console.debug('call: local track ended', track.kind);
  sendMute(track.kind);
  renderSelf();
  renderControls();
}

function renderMediaNotice() {
  const problem = mediaProblem;
  ui.notice.hidden = !problem;
  if (!problem) return;
  const which = problem.missing.length === KINDS.length ? 'both' : problem.missing[0];
  const lines = [`media.missing.${which}`, `media.effect.${which}`, `media.fix.${problem.reason}`];
  ui.noticeText.replaceChildren(
    ...lines.map((key) => {
      const p = document.createElement('p');
      p.textContent = t(key);
      return p;
    }),
  );
  ui.reload.hidden = problem.reason === 'unsupported';
}

// ---------------------------------------------------------------- tiles

function renderSelf() {
  selfTile.update({
    id: selfInfo?.id ?? '',
    name: selfInfo?.name ?? '',
    role: selfInfo?.role ?? '',
    micMuted: isMuted('audio'),
    camMuted: isMuted('video'),
  });
  selfTile.setAudioOnly(audioOnly);
  selfTile.setSpeaking(Boolean(activeSpeaker) && activeSpeaker === selfInfo?.id);
  selfTile.setTracks(localStream.getVideoTracks());
}

function showSoundButton() {
  ui.soundBox.hidden = false;
}

function participantTileInfo(participant) {
  return {
    id: participant.id,
    name: participant.name ?? '',
    role: participant.role ?? '',
    micMuted: isTrackMuted(participant, 'audio'),
    camMuted: isTrackMuted(participant, 'video'),
  };
}

function upsertParticipant(participant, { announceJoin = false } = {}) {
  if (!participant?.id || participant.id === selfInfo?.id) return;
  const isNew = !participants.has(participant.id);
  participants.set(participant.id, participant);
  let tile = tiles.get(participant.id);
  if (!tile) {
    tile = new Tile({ onAutoplayBlocked: showSoundButton });
    tile.setAudioOnly(audioOnly);
    tile.setSpeaking(activeSpeaker === participant.id);
    tiles.set(participant.id, tile);
    ui.tiles.append(tile.el);
    layout.observe(tile.media);
  }
  tile.update(participantTileInfo(participant));
  if (isNew) {
    if (session?.pc) syncRemoteMedia(session);
    if (announceJoin) announce(t('announce.joined', { name: displayName(participant) }));
  }
  layout.schedule(); // a camera switched off or on counts as a change of visibility
  renderWaiting();
}

function removeParticipant(id, reason) {
  const participant = participants.get(id);
  participants.delete(id);
  const tile = tiles.get(id);
  if (tile) {
    layout.unobserve(tile.media);
    tile.destroy();
  }
  tiles.delete(id);
  renderWaiting();
  if (!participant || reason === 'replaced' || reason === 'silent') return;
  const key = reason === 'disconnected' ? 'announce.disconnected' : 'announce.left';
  announce(t(key, { name: displayName(participant) }));
}

function displayName(participant) {
  return participant.name || t('tile.unknown');
}

/** After (re)joining: the server's list is the truth; announce who came and went meanwhile. */
function replaceParticipants(list) {
  const ids = new Set(list.map((p) => p?.id));
  for (const id of [...participants.keys()]) if (!ids.has(id)) removeParticipant(id, 'left');
  for (const participant of list) upsertParticipant(participant, { announceJoin: true });
}

function clearRemoteMedia() {
  for (const tile of tiles.values()) tile.clearTracks();
}

function removeAllParticipants() {
  for (const id of [...participants.keys()]) removeParticipant(id, 'silent');
}

// ---------------------------------------------------------------- controls

/** A device is there, or may still come (the browser is still asking for permission). */
function canToggle(kind) {
  return Boolean(liveTrack(kind)) || mediaRequest !== null;
}

function renderToggle(button, kind, prefix) {
  const available = canToggle(kind);
  const isOff = !available || muted[kind];
  button.disabled = !available;
  // The label names what a press does ("Microfoon uit"); no aria-pressed as well, or screen
  // readers would announce the state twice and contradict the label.
  button.dataset.off = String(available && muted[kind]);
  button.querySelector('.label').textContent = t(
    !available ? `${prefix}.none` : muted[kind] ? `${prefix}.unmute` : `${prefix}.mute`,
  );
  button.querySelector('use').setAttribute('href', `#i-${prefix}${isOff ? '-off' : ''}`);
}

function renderControls() {
  renderToggle(ui.mic, 'audio', 'mic');
  renderToggle(ui.cam, 'video', 'cam');
  ui.leave.querySelector('.label').textContent = t('leave');
  renderAudioOnlyButton();
}

/** Like the camera button, the label says what a press does; no aria-pressed. */
function renderAudioOnlyButton() {
  ui.audioOnly.dataset.off = String(audioOnly);
  const label = audioOnly ? 'audioOnly.stop' : 'audioOnly.start';
  ui.audioOnly.querySelector('.label').textContent = t(label);
  ui.audioOnly.querySelector('use').setAttribute('href', audioOnly ? '#i-cam' : '#i-audio');
}

function sendMute(kind) {
  if (session?.published) session.sig.send({ type: 'mute', kind, muted: isMutedForOthers(kind) });
}

function toggleMute(kind) {
  if (!canToggle(kind)) return;
  muted[kind] = !muted[kind];
  const track = liveTrack(kind);
  if (track) track.enabled = trackEnabled(kind);
  sendMute(kind);
  renderControls();
  renderSelf();
}

/** Arrow keys, Home and End move between the toolbar buttons. */
function onToolbarKey(event) {
  const keys = ['ArrowLeft', 'ArrowRight', 'ArrowUp', 'ArrowDown', 'Home', 'End'];
  if (!keys.includes(event.key)) return;
  const buttons = [...ui.controls.querySelectorAll('button')].filter((b) => !b.disabled && !b.hidden);
  const index = buttons.indexOf(document.activeElement);
  if (index < 0 || buttons.length === 0) return;
  event.preventDefault();
  const last = buttons.length - 1;
  const next = {
    ArrowLeft: index === 0 ? last : index - 1,
    ArrowUp: index === 0 ? last : index - 1,
    ArrowRight: index === last ? 0 : index + 1,
    ArrowDown: index === last ? 0 : index + 1,
    Home: 0,
    End: last,
  }[event.key];
  buttons[next].focus();
}

function focusControls() {
  const target = [ui.mic, ui.cam, ui.leave].find((b) => !b.disabled);
  target?.focus();
}

// ---------------------------------------------------------------- audio only (low bandwidth)

function sendAudioOnly() {
  if (session?.joined) session.sig.send({ type: 'audio_only', enabled: audioOnly });
}

/**
 * Audio-only mode: the server sends us no video, we send none (all simulcast layers inactive) and
 * the others see our camera as off. The camera button keeps its own state, so turning audio-only
 * off brings back exactly what the person had chosen.
 */
function setAudioOnly(next) {
  next = Boolean(next);
  if (next === audioOnly) return;
  audioOnly = next;
  const camera = liveTrack('video');
  if (camera) camera.enabled = trackEnabled('video');
  sendAudioOnly();
  applyEncodings(session);
  sendMute('video');
  if (!audioOnly) snoozeSuggestion(); // they chose video; do not suggest audio-only right away
  for (const tile of tiles.values()) tile.setAudioOnly(audioOnly);
  renderSelf();
  renderControls();
  renderSuggestion();
  layout.schedule();
  announce(t(audioOnly ? 'announce.audioOnlyOn' : 'announce.audioOnlyOff'));
}

// ---------------------------------------------------------------- simulcast layers

/** Whether the encoding with this rid should send: the server's wish, unless in audio-only mode. */
function wantActive(rid) {
  if (audioOnly) return false;
  if (!rid) return true; // no simulcast (no camera): one plain encoding
  return layerWish?.[rid] ?? true;
}

function handlePublisherLayers(current, msg) {
  const active = msg.active;
  if (!active || typeof active !== 'object') return;
  const next = { ...(layerWish ?? Object.fromEntries(RIDS.map((rid) => [rid, true]))) };
  for (const [rid, value] of Object.entries(active)) {
    if (typeof value === 'boolean') next[rid] = value;
  }
  layerWish = next;
  applyEncodings(current);
}

/** Bring the camera sender's encodings in line with wantActive(), one setParameters at a time. */
function applyEncodings(current) {
  if (!current?.videoSender || current.encodingsQueued) return;
  current.encodingsQueued = true;
  current.encodings = current.encodings.then(async () => {
    current.encodingsQueued = false;
    if (session !== current) return;
    await setEncodings(current.videoSender);
  });
}

async function setEncodings(sender) {
  try {
    const parameters = sender.getParameters();
    let changed = false;
    for (const encoding of parameters.encodings ?? []) {
      const want = wantActive(encoding.rid);
      if ((encoding.active ?? true) !== want) {
        encoding.active = want;
        changed = true;
      }
    }
    if (changed) await sender.setParameters(parameters);
  } catch (error) {
    console.debug('call: setParameters failed', error);
  }
}

// ---------------------------------------------------------------- video layout

/** `{mid: {width, height, visible}}` for every remote video now being received, or null. */
function collectLayout() {
  const current = session;
  if (!current?.pc || !current.joined || current.pc.signalingState === 'closed') return null;
  const tracks = {};
  for (const transceiver of current.pc.getTransceivers()) {
    const { mid } = transceiver;
    if (mid == null || transceiver.currentDirection !== 'recvonly') continue;
    const info = current.tracks[mid];
    if (!info?.participant_id) continue;
    if ((info.kind ?? transceiver.receiver.track?.kind) !== 'video') continue;
    const tile = tiles.get(info.participant_id);
    const shown = layout.measure(tile?.media);
    // A camera that is off, or audio-only mode, needs no video at all.
    const visible = shown.visible && !audioOnly && !tile.info.camMuted;
    tracks[mid] = { width: shown.width, height: shown.height, visible };
  }
  return tracks;
}

function sendLayout(tracks) {
  return Boolean(session?.sig.send({ type: 'video_layout', tracks }));
}

// ---------------------------------------------------------------- active speaker

function setActiveSpeaker(id) {
  activeSpeaker = typeof id === 'string' && id ? id : null;
  for (const [participantId, tile] of tiles) tile.setSpeaking(participantId === activeSpeaker);
  selfTile.setSpeaking(Boolean(activeSpeaker) && activeSpeaker === selfInfo?.id);
  announceSpeakerSoon();
}

/** Say who speaks (only when switched on), at most once per SPEAKER_ANNOUNCE_GAP_MS. */
function announceSpeakerSoon() {
  if (!announceSpeaker || speakerAnnounceTimer !== null) return;
  const wait = lastSpeakerAnnouncement + SPEAKER_ANNOUNCE_GAP_MS - performance.now();
  if (wait > 0) {
    // Too soon: say who is speaking when the gap is over, skipping anyone in between.
    speakerAnnounceTimer = setTimeout(() => {
      speakerAnnounceTimer = null;
      announceSpeakerSoon();
    }, wait);
    return;
  }
  const id = activeSpeaker;
  if (!id || id === selfInfo?.id || id === lastAnnouncedSpeaker) return;
  const participant = participants.get(id);
  if (!participant) return;
  announce(t('announce.speaking', { name: displayName(participant) }));
  lastAnnouncedSpeaker = id;
  lastSpeakerAnnouncement = performance.now();
}

function readAnnounceSpeaker() {
  try {
    return window.localStorage.getItem(SPEAKER_STORAGE_KEY) === 'true';
  } catch {
    return false; // storage can be blocked
  }
}

function toggleAnnounceSpeaker() {
  announceSpeaker = !announceSpeaker;
  try {
    window.localStorage.setItem(SPEAKER_STORAGE_KEY, String(announceSpeaker));
  } catch {
    // not remembering the choice is fine
  }
  lastAnnouncedSpeaker = null;
  clearTimeout(speakerAnnounceTimer);
  speakerAnnounceTimer = null;
  renderAnnounceSpeaker();
}

/** A true on/off setting: constant label, state in aria-pressed (and visibly "Aan"/"Uit"). */
function renderAnnounceSpeaker() {
  ui.announceSpeaker.setAttribute('aria-pressed', String(announceSpeaker));
  ui.announceSpeaker.querySelector('.label').textContent = t('speaker.announce');
  ui.announceSpeaker.querySelector('.toggle-state').textContent = t(
    announceSpeaker ? 'setting.on' : 'setting.off',
  );
}

// ---------------------------------------------------------------- weak connection

function handleBandwidth(msg) {
  bandwidthLow = msg.low === true;
  renderSuggestion();
}

function suggestionWanted() {
  return (
    bandwidthLow && !audioOnly && state === 'joined' && Date.now() >= suggestionSnoozedUntil
  );
}

function renderSuggestion() {
  const show = suggestionWanted();
  if (show === !ui.suggestion.hidden) return;
  if (show) {
    // Shown empty first, then filled: screen readers read a live region's new content, not a
    // region that appears with its content already in it.
    ui.suggestionText.textContent = '';
    ui.suggestion.hidden = false;
    clearTimeout(suggestionTextTimer);
    suggestionTextTimer = setTimeout(renderSuggestionText, SUGGESTION_TEXT_DELAY_MS);
  } else {
    hideSuggestion();
  }
}

function renderSuggestionText() {
  if (!ui.suggestion.hidden) ui.suggestionText.textContent = t('bandwidth.text');
}

function hideSuggestion() {
  clearTimeout(suggestionTextTimer);
  const hadFocus = ui.suggestion.contains(document.activeElement);
  ui.suggestion.hidden = true;
  ui.suggestionText.textContent = '';
  // Do not leave keyboard users stranded on <body>: go to the button that does the same thing.
  if (hadFocus && !ui.controls.hidden) ui.audioOnly.focus();
}

function snoozeSuggestion() {
  suggestionSnoozedUntil = Date.now() + BANDWIDTH_SNOOZE_MS;
  clearTimeout(suggestionTimer);
  suggestionTimer = setTimeout(renderSuggestion, BANDWIDTH_SNOOZE_MS + 50);
  renderSuggestion();
}

// ---------------------------------------------------------------- recording

/** Change a text only when it differs: live regions read every change out loud. */
function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

/** The server says whether this call is being recorded (also to everyone who joins later). */
function handleRecording(msg) {
  const wasActive = recording !== null;
  const active = msg.active === true;
  const id = typeof msg.recording_id === 'string' ? msg.recording_id : null;
  recording = active ? { id } : null;
  clearTimeout(recordingStoppedTimer);
  recordingStopped = wasActive && !active;
  if (recordingStopped) {
    recordingStoppedTimer = setTimeout(() => {
      recordingStopped = false;
      renderRecording();
    }, RECORDING_STOPPED_CLEAR_MS);
  }
  renderRecording();
  // A dialog that no longer fits closes (the recording started or stopped, maybe elsewhere).
  closeDialog(active ? ui.recordDialog : ui.stopDialog);
}

/** The connection is gone: forget the state without announcing; the next one is told again. */
function resetRecording() {
  clearTimeout(recordingStoppedTimer);
  recording = null;
  recordingStopped = false;
  renderRecording();
  closeDialog(ui.stopDialog);
}

function renderRecording() {
  const active = recording !== null;
  ui.recordingStatus.dataset.active = String(active);
  document.body.dataset.recording = String(active);
  ui.recordingBanner.hidden = !active;
  setText(ui.recordingText, active ? t('recording.active') : '');
  setText(ui.recordingStopped, recordingStopped ? t('recording.stopped') : '');
  renderRecordButton();
}

/** Only the employee starts and stops recordings. Like the others, the label says what a press does. */
function renderRecordButton() {
  const show = selfInfo?.role === 'employee' && roomId !== null;
  ui.record.hidden = !show;
  ui.record.dataset.recording = String(recording !== null);
  ui.record.querySelector('.label').textContent = t(recording ? 'record.stop' : 'record.start');
  ui.record.querySelector('use').setAttribute('href', recording ? '#i-stop' : '#i-record');
  if (!show) {
    closeDialog(ui.recordDialog);
    closeDialog(ui.stopDialog);
  }
}

function closeDialog(dialog) {
  if (dialog.open) dialog.close();
}

/** Back to the button that opened the dialog (if it is still there). */
function onDialogClose() {
  if (!ui.record.hidden && !ui.controls.hidden && state !== 'left' && state !== 'error') {
    ui.record.focus();
  }
}

function onRecordClick() {
  if (recording) openStopDialog();
  else openStartDialog();
}

/** The name of the resident, when exactly one resident is in the call. */
function residentName() {
  const residents = [...participants.values()].filter((p) => p.role === 'resident');
  return residents.length === 1 ? (residents[0].name ?? '') : '';
}

function openStartDialog() {
  if (ui.recordDialog.open) return;
  ui.recordForm.reset();
  ui.consentGivenBy.value = residentName();
  ui.consentStatement.value = t('record.statementDefault');
  for (const field of consentFields()) setFieldError(field, null);
  showError(ui.recordError, null);
  ui.recordDialog.showModal();
  ui.consentGivenBy.focus();
}

function openStopDialog() {
  if (ui.stopDialog.open) return;
  showError(ui.stopError, null);
  ui.stopDialog.showModal();
  ui.stopSubmit.focus();
}

function consentFields() {
  return [ui.consentGivenBy, ui.consentStatement, ui.consentAgreed];
}

/** A text by key, kept in the page language by translatePage() through data-i18n; or none. */
function showError(el, key) {
  if (key) {
    el.dataset.i18n = key;
    el.textContent = t(key);
  } else {
    delete el.dataset.i18n;
    el.textContent = '';
  }
}

/** The error text above a field (`<id>-error`, linked with aria-describedby) and aria-invalid. */
function setFieldError(field, key) {
  showError($(`${field.id}-error`), key);
  if (key) field.setAttribute('aria-invalid', 'true');
  else field.removeAttribute('aria-invalid');
}

/** The consent from the form, or null after marking what is missing (focus on the first). */
function readConsentForm() {
  const givenBy = ui.consentGivenBy.value.trim();
  const statement = ui.consentStatement.value.trim();
  const problems = new Map([
    [ui.consentGivenBy, givenBy ? null : 'record.missing.givenBy'],
    [ui.consentStatement, statement ? null : 'record.missing.statement'],
    [ui.consentAgreed, ui.consentAgreed.checked ? null : 'record.missing.agreed'],
  ]);
  for (const [field, key] of problems) setFieldError(field, key);
  const first = [...problems].find(([, key]) => key)?.[0];
  if (first) {
    first.focus();
    return null;
  }
  return { given_by: givenBy, statement };
}

async function submitStart(event) {
  event.preventDefault();
  if (recordingBusy || !roomId) return;
  showError(ui.recordError, null);
  const consent = readConsentForm();
  if (!consent) return;
  const path = `/api/v1/rooms/${encodeURIComponent(roomId)}/recordings`;
  const result = await recordingRequest(path, { consent });
  // On success the banner comes with the server's `recording` message, which also closes this.
  if (result.ok) closeDialog(ui.recordDialog);
  else showRequestError(ui.recordDialog, ui.recordError, result.code);
}

async function submitStop(event) {
  event.preventDefault();
  if (recordingBusy) return;
  const id = recording?.id;
  if (!id || !roomId) {
    closeDialog(ui.stopDialog);
    return;
  }
  const room = encodeURIComponent(roomId);
  const result = await recordingRequest(
    `/api/v1/rooms/${room}/recordings/${encodeURIComponent(id)}/stop`,
  );
  if (result.ok) closeDialog(ui.stopDialog);
  else showRequestError(ui.stopDialog, ui.stopError, result.code);
}

/** POST to the recordings API with the join token. Never throws: {ok, answer} or {ok, code}. */
async function recordingRequest(path, body) {
  setRecordingBusy(true);
  try {
    const headers = { Authorization: `Bearer ${token}` };
    const init = { method: 'POST', headers, cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    const answer = await response.json().catch(() => null);
    if (response.ok) return { ok: true, answer };
    const code = answer?.error?.code;
    console.debug('call: recording request refused', response.status, code, answer?.error?.message);
    return { ok: false, code: typeof code === 'string' ? code : 'generic' };
  } catch (error) {
    console.debug('call: recording request failed', error);
    return { ok: false, code: 'network' };
  } finally {
    setRecordingBusy(false);
  }
}

/** While a request runs, the buttons that send one do nothing (they keep focus: no `disabled`). */
function setRecordingBusy(busy) {
  recordingBusy = busy;
  for (const button of [ui.recordSubmit, ui.stopSubmit]) {
    if (busy) button.setAttribute('aria-disabled', 'true');
    else button.removeAttribute('aria-disabled');
  }
}

/** In the dialog when it is still open (role=alert reads it), else through the announcer. */
function showRequestError(dialog, el, code) {
  const key = has(`record.error.${code}`) ? `record.error.${code}` : 'record.error.generic';
  if (dialog.open) showError(el, key);
  else announce(t(key));
}

function wireRecording() {
  ui.record.addEventListener('click', onRecordClick);
  ui.recordForm.addEventListener('submit', submitStart);
  ui.stopForm.addEventListener('submit', submitStop);
  ui.recordCancel.addEventListener('click', () => closeDialog(ui.recordDialog));
  ui.stopCancel.addEventListener('click', () => closeDialog(ui.stopDialog));
  ui.recordDialog.addEventListener('close', onDialogClose);
  ui.stopDialog.addEventListener('close', onDialogClose);
}

// ---------------------------------------------------------------- connection

function connect() {
  clearTimeout(reconnectTimer);
  reconnectTimer = null;
  const sig = new Signalling(token);
  const current = {
    sig,
    pc: null,
    tracks: {}, // mid → {participant_id, track_id, kind} from the latest server offer
    queue: Promise.resolve(),
    pendingCandidates: [],
    published: false,
    connected: false,
    joined: false,
    videoSender: null, // the camera's RTCRtpSender (simulcast when there is a camera)
    encodings: Promise.resolve(), // setParameters calls, one at a time
    encodingsQueued: false,
    timers: {},
  };
  session = current;
  sig.addEventListener('message', (event) => {
    if (session === current) handleMessage(current, event.detail);
  });
  sig.addEventListener('close', (event) => {
    if (session === current) handleSocketClose(event.detail);
  });
  current.timers.join = setTimeout(() => reconnect('no joined in time'), JOIN_TIMEOUT_MS);
  sig.connect();
}

function teardownSession(closeCode = 4000) {
  const current = session;
  session = null;
  // What the old connection told us no longer holds; the next one tells us again.
  layout.reset();
  bandwidthLow = false;
  renderSuggestion();
  resetRecording();
  if (activeSpeaker) setActiveSpeaker(null);
  if (!current) return;
  for (const timer of Object.values(current.timers)) clearTimeout(timer);
  if (current.pc) current.pc.close();
  current.sig.close(closeCode);
}

function handleMessage(current, msg) {
  switch (msg.type) {
    case 'joined':
      handleJoined(current, msg);
      break;
    case 'answer':
      enqueue(current, () => handleAnswer(current, msg));
      break;
    case 'offer':
      enqueue(current, () => handleOffer(current, msg));
      break;
    case 'candidate':
      enqueue(current, () => handleRemoteCandidate(current, msg.candidate));
      break;
    case 'participant_joined':
      upsertParticipant(msg.participant, { announceJoin: true });
      break;
    case 'participant_updated':
      handleParticipantUpdated(msg.participant);
      break;
    case 'participant_left':
      removeParticipant(msg.participant_id, msg.reason);
      break;
    case 'publisher_layers':
      handlePublisherLayers(current, msg);
      break;
    case 'active_speaker':
      setActiveSpeaker(msg.participant_id ?? null);
      break;
    case 'video_paused':
      tiles.get(msg.participant_id)?.setVideoPaused(msg.paused === true);
      break;
    case 'bandwidth':
      handleBandwidth(msg);
      break;
    case 'recording':
      handleRecording(msg);
      break;
    case 'error':
      handleServerError(msg);
      break;
    case 'pong':
      break;
    default:
      console.debug('call: ignoring message', msg.type);
  }
}

function handleJoined(current, msg) {
  clearTimeout(current.timers.join);
  const wasReconnecting = state === 'reconnecting';
  current.joined = true;
  selfInfo = msg.participant ?? null;
  roomId = typeof msg.room === 'string' ? msg.room : null;
  if (audioOnly) sendAudioOnly(); // the server forgets it with the old connection
  setState('joined');
  setStatus('status.joined');
  hideMessage();
  renderSelf();
  replaceParticipants(Array.isArray(msg.participants) ? msg.participants : []);
  if (wasReconnecting) announce(t('announce.reconnected'));
  startPeerConnection(current, msg.ice_servers);
}

function handleParticipantUpdated(participant) {
  if (participant?.id && participant.id === selfInfo?.id) {
    selfInfo = { ...selfInfo, name: participant.name, role: participant.role };
    renderSelf();
    renderRecordButton();
    return;
  }
  upsertParticipant(participant);
}

function handleServerError(msg) {
  if (!msg.fatal) {
    console.debug('call: server reported', msg.code, msg.message);
    return;
  }
  fail(typeof msg.code === 'string' ? msg.code : 'generic');
}

function handleSocketClose(detail) {
  if (detail.intentional || state === 'left' || state === 'error') return;
  const fatalCode = FATAL_CLOSE_CODES.get(detail.code);
  if (fatalCode) fail(fatalCode);
  else reconnect(`socket closed (${detail.code})`);
}

/** Run SDP and ICE work one step at a time, for this connection only. */
function enqueue(current, step) {
  current.queue = current.queue
    .then(() => (session === current ? step() : undefined))
    .catch((error) => {
      console.debug('call: negotiation failed', error);
      if (session === current) reconnect('negotiation failed');
    });
}

function startPeerConnection(current, iceServers) {
  const pc = new RTCPeerConnection({ iceServers: Array.isArray(iceServers) ? iceServers : [] });
  current.pc = pc;
  // A new connection starts with all layers; the server sends `publisher_layers` again if needed.
  layerWish = null;
  layout.reset();
  // Audio first, then video. A missing device still gets its (empty) sender, reported as muted.
  const streams = [localStream];
  pc.addTransceiver(liveTrack('audio') ?? 'audio', { direction: 'sendonly', streams });
  const camera = liveTrack('video');
  const video = camera
    ? pc.addTransceiver(camera, {
        direction: 'sendonly',
        streams,
        sendEncodings: SIMULCAST_LAYERS.map((layer) =>
          audioOnly ? { ...layer, active: false } : { ...layer },
        ),
      })
    : pc.addTransceiver('video', { direction: 'sendonly', streams });
  current.videoSender = video.sender;
  pc.addEventListener('icecandidate', (event) => sendCandidate(current, event.candidate));
  pc.addEventListener('track', (event) => handleRemoteTrack(current, event));
  pc.addEventListener('connectionstatechange', () => handleConnectionState(current));
  current.timers.connect = setTimeout(() => {
    if (session === current && !current.connected) reconnect('media did not connect in time');
  }, CONNECT_TIMEOUT_MS);
  enqueue(current, () => sendOffer(current));
}

function sendCandidate(current, candidate) {
  if (session !== current) return;
  if (candidate && !candidate.candidate) return; // an empty "end of generation" marker
  const json = candidate
    ? { candidate: candidate.candidate, sdpMid: candidate.sdpMid, sdpMLineIndex: candidate.sdpMLineIndex }
    : null;
  current.sig.send({ type: 'candidate', candidate: json });
}

async function sendOffer(current) {
  const offer = await current.pc.createOffer();
  await current.pc.setLocalDescription(offer);
  current.sig.send({ type: 'offer', sdp: current.pc.localDescription.sdp });
}

async function handleAnswer(current, msg) {
  const { pc } = current;
  if (!pc || pc.signalingState !== 'have-local-offer') {
    console.debug('call: ignoring an answer in state', pc?.signalingState);
    return;
  }
  await pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
  await flushCandidates(current);
  current.published = true;
  for (const kind of KINDS) if (isMutedForOthers(kind)) sendMute(kind);
  applyEncodings(current);
}

async function handleOffer(current, msg) {
  const { pc } = current;
  current.tracks = msg.tracks && typeof msg.tracks === 'object' ? msg.tracks : {};
  await pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
  await flushCandidates(current);
  const answer = await pc.createAnswer();
  await pc.setLocalDescription(answer);
  current.sig.send({ type: 'answer', sdp: pc.localDescription.sdp });
  syncRemoteMedia(current);
  layout.schedule({ force: true }); // new mids: tell the server how their videos are shown
  applyEncodings(current); // in case an earlier setParameters failed during negotiation
}

async function handleRemoteCandidate(current, candidate) {
  if (!current.pc?.remoteDescription) {
    current.pendingCandidates.push(candidate);
    return;
  }
  await addCandidate(current.pc, candidate);
}

async function flushCandidates(current) {
  const pending = current.pendingCandidates.splice(0);
  for (const candidate of pending) await addCandidate(current.pc, candidate);
}

async function addCandidate(pc, candidate) {
  try {
    await pc.addIceCandidate(candidate ?? undefined);
  } catch (error) {
    console.debug('call: ignoring a candidate', error);
  }
}

function handleRemoteTrack(current, event) {
  const info = current.tracks[event.transceiver?.mid];
  const id = info?.participant_id ?? event.streams?.[0]?.id;
  tiles.get(id)?.addTrack(event.track);
}

/** Give every remote tile exactly the receiver tracks the latest server offer assigns to it. */
function syncRemoteMedia(current) {
  const byParticipant = new Map();
  for (const transceiver of current.pc.getTransceivers()) {
    const info = transceiver.mid == null ? null : current.tracks[transceiver.mid];
    if (!info?.participant_id) continue;
    const direction = transceiver.currentDirection;
    if (direction === 'inactive' || direction === 'sendonly' || direction === 'stopped') continue;
    const list = byParticipant.get(info.participant_id) ?? [];
    list.push(transceiver.receiver.track);
    byParticipant.set(info.participant_id, list);
  }
  for (const [id, tile] of tiles) tile.setTracks(byParticipant.get(id) ?? []);
  layout.schedule();
}

function handleConnectionState(current) {
  if (session !== current) return;
  const pcState = current.pc.connectionState ?? current.pc.iceConnectionState;
  if (pcState !== 'disconnected') {
    clearTimeout(current.timers.disconnected);
    current.timers.disconnected = null;
  }
  if (pcState === 'connected') {
    current.connected = true;
    attempts = 0;
    clearTimeout(current.timers.connect);
  } else if (pcState === 'disconnected') {
    current.timers.disconnected ??= setTimeout(
      () => reconnect('media disconnected'),
      DISCONNECTED_GRACE_MS,
    );
  } else if (pcState === 'failed') {
    reconnect('media failed');
  }
}

function backoff(attempt) {
  return Math.min(BASE_BACKOFF_MS * 2 ** (attempt - 1), MAX_BACKOFF_MS);
}

function reconnect(reason) {
  if (state === 'left' || state === 'error' || suspended) return;
  console.debug('call: reconnecting:', reason);
  teardownSession();
  clearRemoteMedia();
  attempts += 1;
  if (attempts > MAX_ATTEMPTS) {
    giveUp();
    return;
  }
  setState('reconnecting');
  setStatus('status.reconnecting');
  clearTimeout(reconnectTimer);
  reconnectTimer = setTimeout(connect, backoff(attempts));
}

function stopCall() {
  clearTimeout(reconnectTimer);
  reconnectTimer = null;
  teardownSession();
  removeAllParticipants();
  stopLocalMedia();
  selfInfo = null;
  roomId = null;
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
function fail(code) {
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

function leave() {
  if (state === 'left' || state === 'error') return;
  session?.sig.send({ type: 'leave' });
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

async function startCall() {
  const generation = ++startGeneration;
  setState('connecting');
  setStatus('status.connecting');
  await ensureLocalMedia();
  if (generation !== startGeneration) return; // a newer start took over
  if (state !== 'connecting') {
    stopLocalMedia(); // left while the browser was asking for permission
    return;
  }
  setStatus('status.connecting');
  connect();
}

function restart() {
  const hadFocus = ui.message.contains(document.activeElement);
  attempts = 0;
  hideMessage();
  startCall();
  if (hadFocus) focusControls();
}

// ---------------------------------------------------------------- page

function readToken() {
  return fragmentParams().get('token')?.trim() || null;
}

function wireUi() {
  ui.mic.addEventListener('click', () => toggleMute('audio'));
  ui.cam.addEventListener('click', () => toggleMute('video'));
  ui.leave.addEventListener('click', leave);
  ui.audioOnly.addEventListener('click', () => setAudioOnly(!audioOnly));
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
  ui.messageAction.addEventListener('click', () => message?.onAction?.());
  ui.reload.addEventListener('click', () => window.location.reload());
  ui.sound.addEventListener('click', async () => {
    ui.soundBox.hidden = true;
    await Promise.all([...tiles.values()].map((tile) => tile.playAudio()));
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
  if (next && next !== token) {
    window.location.reload();
    return;
  }
  const lang = fragmentParams().get('lang');
  if (lang && lang !== getLanguage()) setLanguage(lang);
}

/** Closing the tab or going elsewhere: tell the server at once instead of after the grace period. */
function onPageHide() {
  if (!session) return;
  session.sig.send({ type: 'leave' });
  teardownSession(1000);
  clearTimeout(reconnectTimer);
  suspended = true;
}

/** Back from the browser's back/forward cache: join again. */
function onPageShow(event) {
  if (!event.persisted || !suspended) return;
  suspended = false;
  attempts = 0;
  if (state === 'joined' || state === 'reconnecting' || state === 'connecting') {
    clearRemoteMedia();
    setState('reconnecting');
    setStatus('status.reconnecting');
    connect();
  }
}

function exposeForTests() {
  window.balie = Object.freeze({
    get state() {
      return state;
    },
    pc: () => session?.pc ?? null,
    participants: () => [...participants.values()].map((p) => structuredClone(p)),
    selfId: () => selfInfo?.id ?? null,
    localStream: () => localStream,
    lastLayout: () => layout.last,
    audioOnly: () => audioOnly,
    activeSpeaker: () => activeSpeaker,
    publisherLayers: () => (layerWish ? { ...layerWish } : null),
    recording: () => recording?.id ?? null,
  });
}

function main() {
  selfTile = new Tile({ self: true });
  ui.tiles.prepend(selfTile.el);
  wireUi();
  exposeForTests();
  setLanguage(detectLanguage()); // renders all texts through onLanguageChange
  token = readToken();
  if (!token) {
    setState('error');
    setStatus('status.error');
    showMessage({ title: 'msg.noToken.title', text: 'msg.noToken.text', action: null });
    return;
  }
  startCall();
}

main();
