// What the call page knows right now, shared by its modules (one object, so that every module
// sees the same values; each module changes only the fields of its own concern).

export const call = {
  state: 'connecting', // 'connecting' | 'joined' | 'reconnecting' | 'left' | 'error'
  token: null,
  localStream: new MediaStream(),
  mediaProblem: null, // {missing: ['video'], reason: 'denied'} or null
  muted: { audio: false, video: false },
  mediaRequest: null, // the pending camera/microphone request, shared by concurrent starts
  session: null, // the current connection attempt, see session.js connect()
  selfInfo: null, // own participant object from `joined`
  roomId: null, // the `room` of the latest `joined`
  participants: new Map(), // id → participant object (the others)
  tiles: new Map(), // id → Tile (the others)
  selfTile: null,
  attempts: 0,
  reconnectTimer: null,
  startGeneration: 0,
  suspended: false,
  statusKey: 'status.connecting',
  message: null, // {title, text, action, onAction}
  audioOnly: false, // low-bandwidth mode: no video in either direction
  layerWish: null, // last `publisher_layers` {rid: boolean} on this connection; null = all
  activeSpeaker: null, // participant id from the latest `active_speaker`
  bandwidthLow: false,
  recording: null, // {id} while the server says this call is being recorded
};

/** Whether the page is in a call (or getting into one). */
export function inCall() {
  return call.state === 'connecting' || call.state === 'joined' || call.state === 'reconnecting';
}
