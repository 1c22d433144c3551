// The camera as VP8 simulcast (docs/signalling.md, "Simulcast"): the layers it is sent in, and
// switching layers off and on as the server asks (`publisher_layers`) or audio-only mode needs.

import { call } from './store.js';

// Lowest layer first.
export const SIMULCAST_LAYERS = Object.freeze([
  Object.freeze({ rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 }),
  Object.freeze({ rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 }),
  Object.freeze({ rid: 'f', maxBitrate: 1_500_000 }),
]);
const RIDS = SIMULCAST_LAYERS.map((layer) => layer.rid);

/** The camera's send encodings for a new connection (all inactive in audio-only mode). */
export function sendEncodings() {
  return SIMULCAST_LAYERS.map((layer) =>
    call.audioOnly ? { ...layer, active: false } : { ...layer },
  );
}

/** Whether the encoding with this rid should send: the server's wish, unless in audio-only mode. */
function wantActive(rid) {
  if (call.audioOnly) return false;
  if (!rid) return true; // no simulcast (no camera): one plain encoding
  return call.layerWish?.[rid] ?? true;
}

export function handlePublisherLayers(current, msg) {
  const active = msg.active;
  if (!active || typeof active !== 'object') return;
  const next = { ...(call.layerWish ?? Object.fromEntries(RIDS.map((rid) => [rid, true]))) };
  for (const [rid, value] of Object.entries(active)) {
    if (typeof value === 'boolean') next[rid] = value;
  }
  call.layerWish = next;
  applyEncodings(current);
}

/** Bring the camera sender's encodings in line with wantActive(), one setParameters at a time. */
export function applyEncodings(current) {
  if (!current?.videoSender || current.encodingsQueued) return;
  current.encodingsQueued = true;
  current.encodings = current.encodings.then(async () => {
    current.encodingsQueued = false;
    if (call.session !== current) return;
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
