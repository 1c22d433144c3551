// Recording: the banner everyone sees while the call is recorded (the server says so), and for
// the employee the button and dialogs that start a recording (with the resident's consent) and
// stop it, through the recordings API with the join token.

import { announce, setText } from './announcer.js';
import { has, t } from './i18n.js';
import { call } from './store.js';
import { $, ui } from './ui.js';

const RECORDING_STOPPED_CLEAR_MS = 10_000; // "De opname is gestopt" is not read again after this

let recordingStopped = false; // a recording stopped on this connection: say so
let recordingBusy = false; // a start or stop request is on its way
let recordingStoppedTimer = null;

/** The server says whether this call is being recorded (also to everyone who joins later). */
export function handleRecording(msg) {
  const wasActive = call.recording !== null;
  const active = msg.active === true;
  const id = typeof msg.recording_id === 'string' ? msg.recording_id : null;
  call.recording = active ? { id } : null;
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
export function resetRecording() {
  clearTimeout(recordingStoppedTimer);
  call.recording = null;
  recordingStopped = false;
  renderRecording();
  closeDialog(ui.stopDialog);
}

export function renderRecording() {
  const active = call.recording !== null;
  ui.recordingStatus.dataset.active = String(active);
  document.body.dataset.recording = String(active);
  ui.recordingBanner.hidden = !active;
  setText(ui.recordingText, active ? t('recording.active') : '');
  setText(ui.recordingStopped, recordingStopped ? t('recording.stopped') : '');
  renderRecordButton();
}

/** Only the employee starts and stops recordings. Like the others, the label says what a press does. */
export function renderRecordButton() {
  const show = call.selfInfo?.role === 'employee' && call.roomId !== null;
  ui.record.hidden = !show;
  ui.record.dataset.recording = String(call.recording !== null);
  ui.record.querySelector('.label').textContent = t(call.recording ? 'record.stop' : 'record.start');
  ui.record.querySelector('use').setAttribute('href', call.recording ? '#i-stop' : '#i-record');
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
  if (!ui.record.hidden && !ui.controls.hidden && call.state !== 'left' && call.state !== 'error') {
    ui.record.focus();
  }
}

function onRecordClick() {
  if (call.recording) openStopDialog();
  else openStartDialog();
}

/** The name of the resident, when exactly one resident is in the call. */
function residentName() {
  const residents = [...call.participants.values()].filter((p) => p.role === 'resident');
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
  if (recordingBusy || !call.roomId) return;
  showError(ui.recordError, null);
  const consent = readConsentForm();
  if (!consent) return;
  const path = `/api/v1/rooms/${encodeURIComponent(call.roomId)}/recordings`;
  const result = await recordingRequest(path, { consent });
  // On success the banner comes with the server's `recording` message, which also closes this.
  if (result.ok) closeDialog(ui.recordDialog);
  else showRequestError(ui.recordDialog, ui.recordError, result.code);
}

async function submitStop(event) {
  event.preventDefault();
  if (recordingBusy) return;
  const id = call.recording?.id;
  if (!id || !call.roomId) {
    closeDialog(ui.stopDialog);
    return;
  }
  const room = encodeURIComponent(call.roomId);
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
    const headers = { Authorization: `Bearer ${call.token}` };
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

export function wireRecording() {
  ui.record.addEventListener('click', onRecordClick);
  ui.recordForm.addEventListener('submit', submitStart);
  ui.stopForm.addEventListener('submit', submitStop);
  ui.recordCancel.addEventListener('click', () => closeDialog(ui.recordDialog));
  ui.stopCancel.addEventListener('click', () => closeDialog(ui.stopDialog));
  ui.recordDialog.addEventListener('close', onDialogClose);
  ui.stopDialog.addEventListener('close', onDialogClose);
}
