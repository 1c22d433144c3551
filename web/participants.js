// Tiles and layout: the own preview and one tile per other participant, who is speaking, and the
// `video_layout` reports of how big each remote video is shown (layout.js).

import { announce, announceSpeakerSoon, displayName } from './announcer.js';
import { t } from './i18n.js';
import { LayoutWatcher } from './layout.js';
import { isMuted } from './local-media.js';
import { syncRemoteMedia } from './session.js';
import { renderWaiting } from './status.js';
import { call } from './store.js';
import { isTrackMuted, Tile } from './tiles.js';
import { ui } from './ui.js';

export const layout = new LayoutWatcher({ collect: collectLayout, send: sendLayout });

/** The own preview tile, first in the grid. */
export function createSelfTile() {
  call.selfTile = new Tile({ self: true });
  ui.tiles.prepend(call.selfTile.el);
}

export function renderSelf() {
  const { selfTile, selfInfo, activeSpeaker } = call;
  selfTile.update({
    id: selfInfo?.id ?? '',
    name: selfInfo?.name ?? '',
    role: selfInfo?.role ?? '',
    micMuted: isMuted('audio'),
    camMuted: isMuted('video'),
  });
  selfTile.setAudioOnly(call.audioOnly);
  selfTile.setSpeaking(Boolean(activeSpeaker) && activeSpeaker === selfInfo?.id);
  selfTile.setTracks(call.localStream.getVideoTracks());
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

export function upsertParticipant(participant, { announceJoin = false } = {}) {
  if (!participant?.id || participant.id === call.selfInfo?.id) return;
  const isNew = !call.participants.has(participant.id);
  call.participants.set(participant.id, participant);
  let tile = call.tiles.get(participant.id);
  if (!tile) {
    tile = new Tile({ onAutoplayBlocked: showSoundButton });
    tile.setAudioOnly(call.audioOnly);
    tile.setSpeaking(call.activeSpeaker === participant.id);
    call.tiles.set(participant.id, tile);
    ui.tiles.append(tile.el);
    layout.observe(tile.media);
  }
  tile.update(participantTileInfo(participant));
  if (isNew) {
    if (call.session?.pc) syncRemoteMedia(call.session);
    if (announceJoin) announce(t('announce.joined', { name: displayName(participant) }));
  }
  layout.schedule(); // a camera switched off or on counts as a change of visibility
  renderWaiting();
}

export function removeParticipant(id, reason) {
  const participant = call.participants.get(id);
  call.participants.delete(id);
  const tile = call.tiles.get(id);
  if (tile) {
    layout.unobserve(tile.media);
    tile.destroy();
  }
  call.tiles.delete(id);
  renderWaiting();
  if (!participant || reason === 'replaced' || reason === 'silent') return;
  const key = reason === 'disconnected' ? 'announce.disconnected' : 'announce.left';
  announce(t(key, { name: displayName(participant) }));
}

/** After (re)joining: the server's list is the truth; announce who came and went meanwhile. */
export function replaceParticipants(list) {
  const ids = new Set(list.map((p) => p?.id));
  for (const id of [...call.participants.keys()]) if (!ids.has(id)) removeParticipant(id, 'left');
  for (const participant of list) upsertParticipant(participant, { announceJoin: true });
}

export function clearRemoteMedia() {
  for (const tile of call.tiles.values()) tile.clearTracks();
}

export function removeAllParticipants() {
  for (const id of [...call.participants.keys()]) removeParticipant(id, 'silent');
}

export function setActiveSpeaker(id) {
  const activeSpeaker = typeof id === 'string' && id ? id : null;
  call.activeSpeaker = activeSpeaker;
  for (const [participantId, tile] of call.tiles) tile.setSpeaking(participantId === activeSpeaker);
  call.selfTile.setSpeaking(Boolean(activeSpeaker) && activeSpeaker === call.selfInfo?.id);
  announceSpeakerSoon();
}

/** `{mid: {width, height, visible}}` for every remote video now being received, or null. */
function collectLayout() {
  const current = call.session;
  if (!current?.pc || !current.joined || current.pc.signalingState === 'closed') return null;
  const tracks = {};
  for (const transceiver of current.pc.getTransceivers()) {
    const { mid } = transceiver;
    if (mid == null || transceiver.currentDirection !== 'recvonly') continue;
    const info = current.tracks[mid];
    if (!info?.participant_id) continue;
    if ((info.kind ?? transceiver.receiver.track?.kind) !== 'video') continue;
    const tile = call.tiles.get(info.participant_id);
    const shown = layout.measure(tile?.media);
    // A camera that is off, or audio-only mode, needs no video at all.
    const visible = shown.visible && !call.audioOnly && !tile.info.camMuted;
    tracks[mid] = { width: shown.width, height: shown.height, visible };
  }
  return tracks;
}

function sendLayout(tracks) {
  return Boolean(call.session?.sig.send({ type: 'video_layout', tracks }));
}
