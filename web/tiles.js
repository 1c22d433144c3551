// One video tile per person: <figure data-participant-id> with the video (or initials when the
// camera is off), visible "microphone off" / "camera off" / "audio only" indicators and a
// <figcaption class="tile-name"> that also shows "Spreekt" while the person is the active speaker
// (class `speaking` and data-speaking="true" on the figure).

import { has, t } from './i18n.js';

const SVG_NS = 'http://www.w3.org/2000/svg';

/** "Jan de Vries" → "JV"; "Fatima" → "F"; nothing usable → "?". */
export function initials(name) {
  const words = String(name ?? '')
    .trim()
    .split(/\s+/)
    .map((word) => word.replace(/^[^\p{L}\p{N}]+/u, ''))
    .filter(Boolean);
  if (words.length === 0) return '?';
  const first = Array.from(words[0])[0];
  const last = words.length > 1 ? Array.from(words.at(-1))[0] : '';
  return `${first}${last}`.toLocaleUpperCase();
}

/** The role in the page language ("medewerker"); unknown roles are shown as they are. */
export function roleLabel(role) {
  if (!role) return '';
  return has(`role.${role}`) ? t(`role.${role}`) : String(role);
}

/** Whether a participant object from the server reports a muted track of `kind`. */
export function isTrackMuted(participant, kind) {
  return (participant?.tracks ?? []).some((track) => track.kind === kind && track.muted);
}

function icon(name) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('class', 'icon');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  const use = document.createElementNS(SVG_NS, 'use');
  use.setAttribute('href', `#i-${name}`);
  svg.append(use);
  return svg;
}

function element(tag, className, attributes = {}) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  for (const [name, value] of Object.entries(attributes)) el.setAttribute(name, value);
  return el;
}

function indicator(className, iconName) {
  const el = element('span', `tile-indicator ${className}`, { hidden: '' });
  const text = element('span', 'tile-indicator-text');
  el.append(icon(iconName), text);
  return { el, text };
}

export class Tile {
  /**
   * @param {object} options
   * @param {boolean} [options.self] the own preview: mirrored, muted, captioned "Jij"
   * @param {(error: Error) => void} [options.onAutoplayBlocked] audio could not start by itself
   */
  constructor({ self = false, onAutoplayBlocked = () => {} } = {}) {
    this.self = self;
    this.info = { id: '', name: '', role: '', micMuted: false, camMuted: false };
    this.speaking = false;
    this.audioOnly = false; // low-bandwidth mode: show initials and "Alleen geluid", no video
    this.videoPaused = false; // the server paused this video: the connection is too weak
    this.stream = new MediaStream();
    this.bindings = new Map(); // track → AbortController for its event listeners
    this.onAutoplayBlocked = onAutoplayBlocked;
    this.#build();
    this.render();
  }

  #build() {
    this.el = element('figure', `tile${this.self ? ' tile-self' : ''}`);
    if (this.self) this.el.dataset.self = 'true';

    // The box the video fills; its size and visibility are what `video_layout` reports. (The
    // <video> itself is hidden while no frames arrive, so it cannot be measured.)
    const media = element('div', 'tile-media');
    this.media = media;
    this.video = element('video', 'tile-video', { autoplay: '', playsinline: '' });
    this.video.muted = true; // sound goes through the <audio> element; own preview is silent
    this.placeholder = element('div', 'tile-placeholder', { 'aria-hidden': 'true' });
    this.initialsEl = element('span', 'tile-initials');
    this.placeholder.append(this.initialsEl);

    const indicators = element('div', 'tile-indicators');
    this.mic = indicator('mic-muted', 'mic-off');
    this.cam = indicator('cam-muted', 'cam-off');
    this.audioOnlyIndicator = indicator('tile-audio-only', 'audio');
    this.videoPausedIndicator = indicator('tile-video-paused', 'cam-off');
    indicators.append(
      this.mic.el,
      this.cam.el,
      this.audioOnlyIndicator.el,
      this.videoPausedIndicator.el,
    );
    media.append(this.video, this.placeholder, indicators);
    this.el.append(media);

    if (!this.self) {
      this.audio = element('audio', 'tile-audio', { autoplay: '' });
      this.el.append(this.audio);
    }

    this.caption = element('figcaption', 'tile-name');
    this.nameEl = element('span', 'tile-person');
    this.separator = element('span', 'visually-hidden');
    this.roleEl = element('span', 'tile-role');
    this.speakingSeparator = element('span', 'visually-hidden');
    this.speakingEl = element('span', 'speaking-label', { hidden: '' });
    this.speakingText = element('span', 'speaking-label-text');
    this.speakingEl.append(icon('audio'), this.speakingText);
    this.caption.append(
      this.nameEl,
      this.separator,
      this.roleEl,
      this.speakingSeparator,
      this.speakingEl,
    );
    this.el.append(this.caption);
  }

  /** Update who this is and their mute state: {id, name, role, micMuted, camMuted}. */
  update(info) {
    this.info = { ...this.info, ...info };
    if (this.info.id) this.el.dataset.participantId = this.info.id;
    else delete this.el.dataset.participantId;
    this.render();
  }

  /** Set the texts again, e.g. after a language change. */
  render() {
    const { name, role, micMuted, camMuted } = this.info;
    const shownName = this.self ? t('tile.you') : name || t('tile.unknown');
    const shownRole = this.self ? '' : roleLabel(role);
    this.nameEl.textContent = shownName;
    this.separator.textContent = shownRole ? ', ' : '';
    this.roleEl.textContent = shownRole;
    this.roleEl.hidden = !shownRole;
    this.el.dataset.role = role || '';
    this.initialsEl.textContent = initials(this.self && name ? name : shownName);

    this.mic.text.textContent = t('tile.micMuted');
    this.cam.text.textContent = t('tile.camMuted');
    this.mic.el.hidden = !micMuted;
    this.cam.el.hidden = !camMuted;
    this.el.classList.toggle('is-mic-muted', Boolean(micMuted));

    this.audioOnlyIndicator.text.textContent = t('tile.audioOnly');
    this.audioOnlyIndicator.el.hidden = !this.audioOnly || Boolean(camMuted);
    this.videoPausedIndicator.text.textContent = t('tile.videoPaused');
    this.videoPausedIndicator.el.hidden = !this.videoPaused || this.audioOnly || Boolean(camMuted);

    this.speakingText.textContent = t('tile.speaking');
    this.speakingEl.hidden = !this.speaking;
    this.speakingSeparator.textContent = this.speaking ? ', ' : '';
    this.el.classList.toggle('speaking', this.speaking);
    if (this.speaking) this.el.dataset.speaking = 'true';
    else delete this.el.dataset.speaking;
    this.#renderMedia();
  }

  /** Mark this person as the one speaking now (or not). */
  setSpeaking(speaking) {
    if (this.speaking === Boolean(speaking)) return;
    this.speaking = Boolean(speaking);
    this.render();
  }

  /** Audio-only mode: initials and "Alleen geluid" instead of the video. */
  setAudioOnly(audioOnly) {
    if (this.audioOnly === Boolean(audioOnly)) return;
    this.audioOnly = Boolean(audioOnly);
    this.render();
  }

  /** The server paused (or resumed) this video because the connection is too weak for it. */
  setVideoPaused(paused) {
    if (this.videoPaused === Boolean(paused)) return;
    this.videoPaused = Boolean(paused);
    this.render();
  }

  /** Show exactly these tracks (receiver tracks for others, the camera track for yourself). */
  setTracks(tracks) {
    const next = new Set(tracks.filter(Boolean));
    let changed = false;
    for (const track of this.stream.getTracks()) {
      if (next.has(track)) continue;
      this.#unbind(track);
      this.stream.removeTrack(track);
      changed = true;
    }
    for (const track of next) {
      if (this.bindings.has(track)) continue;
      this.stream.addTrack(track);
      this.#bind(track);
      changed = true;
    }
    if (changed) this.#attach();
    this.#renderMedia();
  }

  /** Add one track, replacing an earlier track of the same kind. */
  addTrack(track) {
    const others = this.stream.getTracks().filter((tr) => tr.kind !== track.kind);
    this.setTracks([...others, track]);
  }

  clearTracks() {
    this.setTracks([]);
  }

  /** Start the sound; reports a browser that blocks it until the user clicks. */
  playAudio() {
    if (!this.audio || this.stream.getAudioTracks().length === 0) return Promise.resolve(true);
    return this.audio.play().then(
      () => true,
      (error) => {
        if (error?.name === 'NotAllowedError') this.onAutoplayBlocked(error);
        else console.debug('tile: audio did not start', error);
        return false;
      },
    );
  }

  destroy() {
    this.clearTracks();
    this.video.srcObject = null;
    if (this.audio) this.audio.srcObject = null;
    this.el.remove();
  }

  #bind(track) {
    const controller = new AbortController();
    const refresh = () => this.#renderMedia();
    for (const type of ['mute', 'unmute', 'ended']) {
      track.addEventListener(type, refresh, { signal: controller.signal });
    }
    this.bindings.set(track, controller);
  }

  #unbind(track) {
    this.bindings.get(track)?.abort();
    this.bindings.delete(track);
  }

  #attach() {
    // Setting srcObject again makes the elements pick up added or removed tracks.
    this.video.srcObject = this.stream.getTracks().length ? this.stream : null;
    if (this.audio) {
      this.audio.srcObject = this.stream.getAudioTracks().length ? this.stream : null;
      this.playAudio();
    }
  }

  #renderMedia() {
    const video = this.stream.getVideoTracks()[0];
    const live = Boolean(video) && video.readyState === 'live' && !video.muted;
    const showVideo = live && !this.info.camMuted && !this.audioOnly && !this.videoPaused;
    this.video.hidden = !showVideo;
    this.placeholder.hidden = showVideo;
    this.el.classList.toggle('has-video', showVideo);
    if (showVideo && this.video.srcObject && this.video.paused) {
      this.video.play().catch((error) => console.debug('tile: video did not start', error));
    }
  }
}
