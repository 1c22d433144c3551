// The call's controls: microphone, camera, audio-only (low bandwidth) mode, the toolbar's arrow
// keys, and the suggestion to switch to audio only when the connection is weak.

import { announce } from './announcer.js';
import { t } from './i18n.js';
import { liveTrack, isMutedForOthers, trackEnabled } from './local-media.js';
import { layout, renderSelf } from './participants.js';
import { applyEncodings } from './simulcast.js';
import { call } from './store.js';
import { ui } from './ui.js';

const BANDWIDTH_SNOOZE_MS = 2 * 60_000; // "Nee, bedankt" keeps the suggestion away this long
const SUGGESTION_TEXT_DELAY_MS = 100; // fill the live region after it is shown, so it is read

let suggestionSnoozedUntil = 0;
let suggestionTimer = null;
let suggestionTextTimer = null;

/** A device is there, or may still come (the browser is still asking for permission). */
function canToggle(kind) {
  return Boolean(liveTrack(kind)) || call.mediaRequest !== null;
}

function renderToggle(button, kind, prefix) {
  const available = canToggle(kind);
  const muted = call.muted[kind];
  const isOff = !available || muted;
  button.disabled = !available;
  // The label names what a press does ("Microfoon uit"); no aria-pressed as well, or screen
  // readers would announce the state twice and contradict the label.
  button.dataset.off = String(available && muted);
  button.querySelector('.label').textContent = t(
    !available ? `${prefix}.none` : muted ? `${prefix}.unmute` : `${prefix}.mute`,
  );
  button.querySelector('use').setAttribute('href', `#i-${prefix}${isOff ? '-off' : ''}`);
}

export function renderControls() {
  renderToggle(ui.mic, 'audio', 'mic');
  renderToggle(ui.cam, 'video', 'cam');
  ui.leave.querySelector('.label').textContent = t('leave');
  renderAudioOnlyButton();
}

/** Like the camera button, the label says what a press does; no aria-pressed. */
function renderAudioOnlyButton() {
  const { audioOnly } = call;
  ui.audioOnly.dataset.off = String(audioOnly);
  const label = audioOnly ? 'audioOnly.stop' : 'audioOnly.start';
  ui.audioOnly.querySelector('.label').textContent = t(label);
  ui.audioOnly.querySelector('use').setAttribute('href', audioOnly ? '#i-cam' : '#i-audio');
}

export function sendMute(kind) {
  const { session } = call;
  if (session?.published) session.sig.send({ type: 'mute', kind, muted: isMutedForOthers(kind) });
}

export function toggleMute(kind) {
  if (!canToggle(kind)) return;
  call.muted[kind] = !call.muted[kind];
  const track = liveTrack(kind);
  if (track) track.enabled = trackEnabled(kind);
  sendMute(kind);
  renderControls();
  renderSelf();
}

/** Arrow keys, Home and End move between the toolbar buttons. */
export function onToolbarKey(event) {
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

export function focusControls() {
  const target = [ui.mic, ui.cam, ui.leave].find((b) => !b.disabled);
  target?.focus();
}

// ---------------------------------------------------------------- audio only (low bandwidth)

export function sendAudioOnly() {
  const { session } = call;
  if (session?.joined) session.sig.send({ type: 'audio_only', enabled: call.audioOnly });
}

/**
 * Audio-only mode: the server sends us no video, we send none (all simulcast layers inactive) and
 * the others see our camera as off. The camera button keeps its own state, so turning audio-only
 * off brings back exactly what the person had chosen.
 */
export function setAudioOnly(next) {
  next = Boolean(next);
  if (next === call.audioOnly) return;
  call.audioOnly = next;
  const camera = liveTrack('video');
  if (camera) camera.enabled = trackEnabled('video');
  sendAudioOnly();
  applyEncodings(call.session);
  sendMute('video');
  if (!next) snoozeSuggestion(); // they chose video; do not suggest audio-only right away
  for (const tile of call.tiles.values()) tile.setAudioOnly(next);
  renderSelf();
  renderControls();
  renderSuggestion();
  layout.schedule();
  announce(t(next ? 'announce.audioOnlyOn' : 'announce.audioOnlyOff'));
}

// ---------------------------------------------------------------- weak connection

export function handleBandwidth(msg) {
  call.bandwidthLow = msg.low === true;
  renderSuggestion();
}

function suggestionWanted() {
  return (
    call.bandwidthLow &&
    !call.audioOnly &&
    call.state === 'joined' &&
    Date.now() >= suggestionSnoozedUntil
  );
}

export function renderSuggestion() {
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

export function renderSuggestionText() {
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

export function snoozeSuggestion() {
  suggestionSnoozedUntil = Date.now() + BANDWIDTH_SNOOZE_MS;
  clearTimeout(suggestionTimer);
  suggestionTimer = setTimeout(renderSuggestion, BANDWIDTH_SNOOZE_MS + 50);
  renderSuggestion();
}
