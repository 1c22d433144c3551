// Accessibility announcements: a polite live region for what happens in the call (people
// joining and leaving, audio-only mode, errors), and the optional "say who is speaking" setting.

import { t } from './i18n.js';
import { call } from './store.js';
import { ui } from './ui.js';

const MAX_ANNOUNCEMENTS = 5;
const SPEAKER_ANNOUNCE_GAP_MS = 3000;
const SPEAKER_STORAGE_KEY = 'balie.announceSpeaker';

let announceSpeaker = readAnnounceSpeaker();
let lastSpeakerAnnouncement = -Infinity;
let lastAnnouncedSpeaker = null;
let speakerAnnounceTimer = null;

export function announce(text) {
  const line = document.createElement('p');
  line.textContent = text;
  ui.announcer.append(line);
  while (ui.announcer.childElementCount > MAX_ANNOUNCEMENTS) ui.announcer.firstElementChild.remove();
}

/** Change a text only when it differs: live regions read every change out loud. */
export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

export function displayName(participant) {
  return participant.name || t('tile.unknown');
}

/** Say who speaks (only when switched on), at most once per SPEAKER_ANNOUNCE_GAP_MS. */
export function announceSpeakerSoon() {
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
  const id = call.activeSpeaker;
  if (!id || id === call.selfInfo?.id || id === lastAnnouncedSpeaker) return;
  const participant = call.participants.get(id);
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

export function toggleAnnounceSpeaker() {
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
export function renderAnnounceSpeaker() {
  ui.announceSpeaker.setAttribute('aria-pressed', String(announceSpeaker));
  ui.announceSpeaker.querySelector('.label').textContent = t('speaker.announce');
  ui.announceSpeaker.querySelector('.toggle-state').textContent = t(
    announceSpeaker ? 'setting.on' : 'setting.off',
  );
}
