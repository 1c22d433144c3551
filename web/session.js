// The call session: one connection attempt with its signalling socket (signalling.js) and its
// RTCPeerConnection to the SFU. It handles the server's messages, the offer/answer exchange in
// both directions and ICE, and notices when media stops flowing (docs/signalling.md).

import { renderSuggestion, handleBandwidth, sendAudioOnly, sendMute } from './controls.js';
import { fail, reconnect } from './flow.js';
import { KINDS } from './devices.js';
import { t } from './i18n.js';
import { announce } from './announcer.js';
import { isMutedForOthers, liveTrack } from './local-media.js';
import {
  layout,
  removeParticipant,
  renderSelf,
  replaceParticipants,
  setActiveSpeaker,
  upsertParticipant,
} from './participants.js';
import { renderRecordButton, handleRecording, resetRecording } from './recording.js';
import { Signalling } from './signalling.js';
import { applyEncodings, handlePublisherLayers, sendEncodings } from './simulcast.js';
import { hideMessage, setState, setStatus } from './status.js';
import { call } from './store.js';

const DISCONNECTED_GRACE_MS = 3000;
const JOIN_TIMEOUT_MS = 15_000; // socket opened and `joined` received
const CONNECT_TIMEOUT_MS = 20_000; // `joined` received and media flowing
// Close codes that mean "do not come back" when no `error` message explained them.
const FATAL_CLOSE_CODES = new Map([
  [4400, 'generic'],
  [4401, 'invalid_token'],
  [4408, 'generic'],
  [4409, 'replaced'],
  [4429, 'room_full'],
]);

export function connect() {
  clearTimeout(call.reconnectTimer);
  call.reconnectTimer = null;
  const sig = new Signalling(call.token);
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
  call.session = current;
  sig.addEventListener('message', (event) => {
    if (call.session === current) handleMessage(current, event.detail);
  });
  sig.addEventListener('close', (event) => {
    if (call.session === current) handleSocketClose(event.detail);
  });
  current.timers.join = setTimeout(() => reconnect('no joined in time'), JOIN_TIMEOUT_MS);
  sig.connect();
}

export function teardownSession(closeCode = 4000) {
  const current = call.session;
  call.session = null;
  // What the old connection told us no longer holds; the next one tells us again.
  layout.reset();
  call.bandwidthLow = false;
  renderSuggestion();
  resetRecording();
  if (call.activeSpeaker) setActiveSpeaker(null);
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
      call.tiles.get(msg.participant_id)?.setVideoPaused(msg.paused === true);
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
  const wasReconnecting = call.state === 'reconnecting';
  current.joined = true;
  call.selfInfo = msg.participant ?? null;
  call.roomId = typeof msg.room === 'string' ? msg.room : null;
  if (call.audioOnly) sendAudioOnly(); // the server forgets it with the old connection
  setState('joined');
  setStatus('status.joined');
  hideMessage();
  renderSelf();
  replaceParticipants(Array.isArray(msg.participants) ? msg.participants : []);
  if (wasReconnecting) announce(t('announce.reconnected'));
  startPeerConnection(current, msg.ice_servers);
}

function handleParticipantUpdated(participant) {
  if (participant?.id && participant.id === call.selfInfo?.id) {
    call.selfInfo = { ...call.selfInfo, name: participant.name, role: participant.role };
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
  if (detail.intentional || call.state === 'left' || call.state === 'error') return;
  const fatalCode = FATAL_CLOSE_CODES.get(detail.code);
  if (fatalCode) fail(fatalCode);
  else reconnect(`socket closed (${detail.code})`);
}

/** Run SDP and ICE work one step at a time, for this connection only. */
function enqueue(current, step) {
  current.queue = current.queue
    .then(() => (call.session === current ? step() : undefined))
    .catch((error) => {
      console.debug('call: negotiation failed', error);
      if (call.session === current) reconnect('negotiation failed');
    });
}

function startPeerConnection(current, iceServers) {
  const pc = new RTCPeerConnection({ iceServers: Array.isArray(iceServers) ? iceServers : [] });
  current.pc = pc;
  // A new connection starts with all layers; the server sends `publisher_layers` again if needed.
  call.layerWish = null;
  layout.reset();
  // Audio first, then video. A missing device still gets its (empty) sender, reported as muted.
  const streams = [call.localStream];
  pc.addTransceiver(liveTrack('audio') ?? 'audio', { direction: 'sendonly', streams });
  const camera = liveTrack('video');
  const video = camera
    ? pc.addTransceiver(camera, {
        direction: 'sendonly',
        streams,
        sendEncodings: sendEncodings(),
      })
    : pc.addTransceiver('video', { direction: 'sendonly', streams });
  current.videoSender = video.sender;
  pc.addEventListener('icecandidate', (event) => sendCandidate(current, event.candidate));
  pc.addEventListener('track', (event) => handleRemoteTrack(current, event));
  pc.addEventListener('connectionstatechange', () => handleConnectionState(current));
  current.timers.connect = setTimeout(() => {
    if (call.session === current && !current.connected) reconnect('media did not connect in time');
  }, CONNECT_TIMEOUT_MS);
  enqueue(current, () => sendOffer(current));
}

function sendCandidate(current, candidate) {
  if (call.session !== current) return;
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
  call.tiles.get(id)?.addTrack(event.track);
}

/** Give every remote tile exactly the receiver tracks the latest server offer assigns to it. */
export function syncRemoteMedia(current) {
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
  for (const [id, tile] of call.tiles) tile.setTracks(byParticipant.get(id) ?? []);
  layout.schedule();
}

function handleConnectionState(current) {
  if (call.session !== current) return;
  const pcState = current.pc.connectionState ?? current.pc.iceConnectionState;
  if (pcState !== 'disconnected') {
    clearTimeout(current.timers.disconnected);
    current.timers.disconnected = null;
  }
  if (pcState === 'connected') {
    current.connected = true;
    call.attempts = 0;
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
