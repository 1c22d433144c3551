// Camera and microphone: ask for both, fall back to what works, and say why something is
// missing. No page elements here, so the device check and waiting room pages can use it too.

export const KINDS = Object.freeze(['audio', 'video']);
export const MEDIA_CONSTRAINTS = Object.freeze({
  audio: true,
  video: { width: { ideal: 1280 }, height: { ideal: 720 } },
});

/** 'denied' | 'notfound' | 'busy' | 'other', from a getUserMedia error. */
export function classifyMediaError(error) {
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

/** Camera and microphone, or as much of them as works: {stream, problem}. Never throws. */
export async function acquireMedia() {
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

/** The texts (i18n keys) that explain a problem from acquireMedia(): what, its effect, the fix. */
export function mediaProblemKeys(problem) {
  const which = problem.missing.length === KINDS.length ? 'both' : problem.missing[0];
  return [`media.missing.${which}`, `media.effect.${which}`, `media.fix.${problem.reason}`];
}
