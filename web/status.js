// The page's state and its texts: the status line, the message box for errors and leaving, the
// language toggle, and rendering everything again after a language change.

import { t } from './i18n.js';
import { renderAnnounceSpeaker } from './announcer.js';
import { renderControls, renderSuggestion, renderSuggestionText } from './controls.js';
import { renderMediaNotice } from './local-media.js';
import { renderRecordButton, renderRecording } from './recording.js';
import { call, inCall } from './store.js';
import { ui } from './ui.js';

export function setState(next) {
  call.state = next;
  document.body.dataset.callState = next;
  const shown = inCall();
  ui.call.hidden = !shown;
  ui.controls.hidden = !shown;
  ui.settings.hidden = !shown;
  renderWaiting();
  renderSuggestion();
  renderRecordButton();
}

export function setStatus(key) {
  call.statusKey = key;
  ui.status.textContent = t(key);
}

export function showMessage(next) {
  call.message = next;
  renderMessage();
  ui.message.hidden = false;
  ui.messageTitle.focus();
}

export function hideMessage() {
  call.message = null;
  ui.message.hidden = true;
}

function renderMessage() {
  const { message } = call;
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

export function renderWaiting() {
  ui.waiting.hidden = !(call.state === 'joined' && call.participants.size === 0);
}

export function renderAll() {
  renderLanguageToggle();
  ui.status.textContent = t(call.statusKey);
  renderMessage();
  renderMediaNotice();
  renderControls();
  renderAnnounceSpeaker();
  renderSuggestionText();
  renderRecording();
  call.selfTile?.render();
  for (const tile of call.tiles.values()) tile.render();
}
