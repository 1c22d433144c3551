// Texts for the call page: Dutch (default, plain language at B1 level) and English.
//
// The language comes from the URL fragment (`#token=…&lang=en`), else from the choice the
// person made earlier with the language button (kept in localStorage), else Dutch.
// Query strings are never used: the fragment is not sent to the server.

const STORAGE_KEY = 'balie.lang';
export const LANGUAGES = Object.freeze(['nl', 'en']);
export const DEFAULT_LANGUAGE = 'nl';

const STRINGS = {
  nl: {
    'app.title': 'Digitale balie',
    'lang.switch': 'English',
    'lang.switchLang': 'en',
    'lang.switchLabel': 'Switch to English',

    'call.label': 'Gesprek',
    'call.waiting': 'Er is nog niemand anders in het gesprek. Even wachten…',
    'controls.label': 'Bediening van het gesprek',
    'mic.mute': 'Microfoon uit',
    'mic.unmute': 'Microfoon aan',
    'mic.none': 'Geen microfoon',
    'cam.mute': 'Camera uit',
    'cam.unmute': 'Camera aan',
    'cam.none': 'Geen camera',
    'leave': 'Verlaten',
    'audioOnly.start': 'Alleen geluid',
    'audioOnly.stop': 'Beeld weer aan',
    'sound.enable': 'Geluid aanzetten',
    'sound.hint': 'Je hoort de anderen nog niet. Klik op de knop om het geluid aan te zetten.',
    'reload': 'Pagina opnieuw laden',

    'tile.you': 'Jij',
    'tile.unknown': 'Deelnemer',
    'tile.micMuted': 'Microfoon uit',
    'tile.camMuted': 'Camera uit',
    'tile.audioOnly': 'Alleen geluid',
    'tile.videoPaused': 'Beeld gepauzeerd: de verbinding is te zwak',
    'tile.speaking': 'Spreekt',
    'role.employee': 'medewerker',
    'role.resident': 'inwoner',
    'role.guest': 'gast',

    'status.media': 'Klik op ‘Toestaan’ om je camera en microfoon te gebruiken.',
    'status.connecting': 'Verbinden met de balie…',
    'status.joined': 'Je bent in het gesprek.',
    'status.reconnecting': 'Verbinding verbroken. We proberen opnieuw…',
    'status.left': 'Je hebt het gesprek verlaten.',
    'status.error': 'Het gesprek is gestopt.',

    'announce.joined': '{name} doet mee.',
    'announce.left': '{name} heeft het gesprek verlaten.',
    'announce.disconnected': 'De verbinding met {name} is verbroken.',
    'announce.reconnected': 'De verbinding werkt weer.',
    'announce.speaking': '{name} spreekt.',
    'announce.audioOnlyOn':
      'Alleen geluid staat aan. Je ziet de anderen niet. Zij zien jou ook niet.',
    'announce.audioOnlyOff': 'Het beeld staat weer aan.',

    'settings.label': 'Instellingen',
    'speaker.announce': 'Meld wie er spreekt',
    'speaker.hint': 'Je schermlezer zegt dan wie er praat.',
    'setting.on': 'Aan',
    'setting.off': 'Uit',

    'bandwidth.text':
      'Je verbinding is zwak. Wil je alleen geluid gebruiken? Dan blijft het gesprek goed te verstaan.',
    'bandwidth.accept': 'Alleen geluid',
    'bandwidth.dismiss': 'Nee, bedankt',

    'recording.active': 'Dit gesprek wordt opgenomen',
    'recording.stopped': 'De opname is gestopt.',
    'record.start': 'Opname starten',
    'record.stop': 'Opname stoppen',
    'record.startTitle': 'Opname starten',
    'record.startIntro':
      'Vraag de inwoner eerst of het goed is dat je het gesprek opneemt. ' +
      'Start de opname alleen als de inwoner ja zegt.',
    'record.givenBy': 'Wie geeft toestemming?',
    'record.statement': 'Waar is toestemming voor gegeven?',
    'record.statementDefault':
      'De inwoner vindt het goed dat dit gesprek wordt opgenomen en bewaard in het dossier.',
    'record.agreed': 'De inwoner heeft hiermee ingestemd',
    'record.confirmStart': 'Opname starten',
    'record.cancel': 'Annuleren',
    'record.stopTitle': 'Opname stoppen?',
    'record.stopText': 'De opname stopt. Wat al is opgenomen, wordt bewaard.',
    'record.missing.givenBy': 'Vul in wie toestemming geeft.',
    'record.missing.statement': 'Vul in waar toestemming voor is gegeven.',
    'record.missing.agreed': 'Zet een vinkje als de inwoner heeft ingestemd.',
    'record.error.consent_required': 'Vul in wie toestemming geeft en waarvoor.',
    'record.error.invalid_request':
      'Controleer wat je hebt ingevuld. Misschien is een tekst te lang.',
    'record.error.recording_active': 'Dit gesprek wordt al opgenomen.',
    'record.error.recorder_unavailable':
      'Opnemen lukt nu niet. Probeer het over een paar minuten opnieuw.',
    'record.error.recording_unavailable':
      'Opnemen kan niet op deze server. Vraag de beheerder om hulp.',
    'record.error.forbidden': 'Alleen de medewerker van dit gesprek mag de opname starten of stoppen.',
    'record.error.unauthorized':
      'Je link is niet meer geldig. Open het gesprek opnieuw met een nieuwe link.',
    'record.error.recording_not_found': 'Deze opname is er niet meer. Misschien is hij al gestopt.',
    'record.error.network':
      'Er is geen verbinding met de server. Controleer je internet en probeer het opnieuw.',
    'record.error.generic': 'Er ging iets mis. Probeer het opnieuw.',

    'media.missing.both': 'Je camera en microfoon doen het niet.',
    'media.missing.video': 'Je camera doet het niet.',
    'media.missing.audio': 'Je microfoon doet het niet.',
    'media.effect.both': 'Je kunt wel kijken en luisteren. De anderen kunnen je niet zien en niet horen.',
    'media.effect.video': 'De anderen kunnen je wel horen, maar niet zien.',
    'media.effect.audio': 'De anderen kunnen je wel zien, maar niet horen.',
    'media.fix.denied':
      'Je hebt geen toestemming gegeven. Klik bovenaan op het slotje naast het webadres. ' +
      'Zet camera en microfoon op ‘Toestaan’. Laad daarna de pagina opnieuw.',
    'media.fix.notfound':
      'Controleer of je camera en microfoon goed zijn aangesloten. Laad daarna de pagina opnieuw.',
    'media.fix.busy':
      'Een ander programma gebruikt je camera of microfoon. Sluit dat programma. ' +
      'Laad daarna de pagina opnieuw.',
    'media.fix.unsupported':
      'Deze browser kan je camera en microfoon niet gebruiken. ' +
      'Gebruik een nieuwe versie van Chrome, Edge, Firefox of Safari.',
    'media.fix.other': 'Controleer je camera en microfoon. Laad daarna de pagina opnieuw.',

    'msg.noToken.title': 'Deze link is niet compleet.',
    'msg.noToken.text':
      'Gebruik de hele link uit je e-mail of sms. Lukt het niet? Vraag de gemeente om een nieuwe link.',
    'msg.left.title': 'Je hebt het gesprek verlaten.',
    'msg.left.text': 'Wil je toch weer meedoen? Klik dan op de knop.',
    'msg.left.action': 'Opnieuw deelnemen',
    'msg.gaveUp.title': 'Het lukt niet om verbinding te maken.',
    'msg.gaveUp.text': 'Controleer je internet. Probeer het daarna opnieuw.',
    'msg.retry': 'Opnieuw proberen',
    'msg.invalid_token.title': 'Deze link werkt niet.',
    'msg.invalid_token.text':
      'Gebruik de hele link uit je e-mail of sms. Lukt het niet? Vraag de gemeente om een nieuwe link.',
    'msg.token_expired.title': 'Deze link is verlopen.',
    'msg.token_expired.text': 'Vraag de gemeente om een nieuwe link.',
    'msg.replaced.title': 'Je bent in een ander venster verder gegaan.',
    'msg.replaced.text': 'Wil je toch in dit venster verder? Klik dan op de knop.',
    'msg.replaced.action': 'Hier verder gaan',
    'msg.room_full.title': 'Het gesprek is vol.',
    'msg.room_full.text': 'Er kunnen nu niet meer mensen meedoen. Probeer het later opnieuw.',
    'msg.generic.title': 'Er ging iets mis.',
    'msg.generic.text': 'Probeer het opnieuw. Lukt het niet? Neem dan contact op met de gemeente.',
  },
  en: {
    'app.title': 'Digitale balie', // the product name stays Dutch
    'lang.switch': 'Nederlands',
    'lang.switchLang': 'nl',
    'lang.switchLabel': 'Wissel naar Nederlands',

    'call.label': 'Call',
    'call.waiting': 'No one else is in the call yet. Please wait…',
    'controls.label': 'Call controls',
    'mic.mute': 'Microphone off',
    'mic.unmute': 'Microphone on',
    'mic.none': 'No microphone',
    'cam.mute': 'Camera off',
    'cam.unmute': 'Camera on',
    'cam.none': 'No camera',
    'leave': 'Leave',
    'audioOnly.start': 'Audio only',
    'audioOnly.stop': 'Turn video back on',
    'sound.enable': 'Turn on sound',
    'sound.hint': 'You cannot hear the others yet. Press the button to turn on the sound.',
    'reload': 'Reload the page',

    'tile.you': 'You',
    'tile.unknown': 'Participant',
    'tile.micMuted': 'Microphone off',
    'tile.camMuted': 'Camera off',
    'tile.audioOnly': 'Audio only',
    'tile.videoPaused': 'Video paused: the connection is too weak',
    'tile.speaking': 'Speaking',
    'role.employee': 'employee',
    'role.resident': 'resident',
    'role.guest': 'guest',

    'status.media': 'Press ‘Allow’ to use your camera and microphone.',
    'status.connecting': 'Connecting to the counter…',
    'status.joined': 'You are in the call.',
    'status.reconnecting': 'Connection lost. Trying again…',
    'status.left': 'You have left the call.',
    'status.error': 'The call has stopped.',

    'announce.joined': '{name} has joined.',
    'announce.left': '{name} has left the call.',
    'announce.disconnected': 'The connection with {name} was lost.',
    'announce.reconnected': 'The connection works again.',
    'announce.speaking': '{name} is speaking.',
    'announce.audioOnlyOn':
      'Audio only is on. You do not see the others. They do not see you either.',
    'announce.audioOnlyOff': 'Video is on again.',

    'settings.label': 'Settings',
    'speaker.announce': 'Announce who is speaking',
    'speaker.hint': 'Your screen reader will then say who is talking.',
    'setting.on': 'On',
    'setting.off': 'Off',

    'bandwidth.text':
      'Your connection is weak. Do you want to use audio only? Then the call stays easy to understand.',
    'bandwidth.accept': 'Audio only',
    'bandwidth.dismiss': 'No, thanks',

    'recording.active': 'This call is being recorded',
    'recording.stopped': 'The recording has stopped.',
    'record.start': 'Start recording',
    'record.stop': 'Stop recording',
    'record.startTitle': 'Start recording',
    'record.startIntro':
      'First ask the resident if it is all right to record the call. ' +
      'Only start recording if the resident says yes.',
    'record.givenBy': 'Who gives consent?',
    'record.statement': 'What has consent been given for?',
    'record.statementDefault':
      'The resident agrees that this call is recorded and kept in the case file.',
    'record.agreed': 'The resident has agreed to this',
    'record.confirmStart': 'Start recording',
    'record.cancel': 'Cancel',
    'record.stopTitle': 'Stop recording?',
    'record.stopText': 'The recording stops. What has been recorded so far is kept.',
    'record.missing.givenBy': 'Fill in who gives consent.',
    'record.missing.statement': 'Fill in what consent has been given for.',
    'record.missing.agreed': 'Tick the box if the resident has agreed.',
    'record.error.consent_required': 'Fill in who gives consent and for what.',
    'record.error.invalid_request': 'Check what you filled in. A text may be too long.',
    'record.error.recording_active': 'This call is already being recorded.',
    'record.error.recorder_unavailable':
      'Recording does not work right now. Try again in a few minutes.',
    'record.error.recording_unavailable':
      'Recording is not possible on this server. Ask the administrator for help.',
    'record.error.forbidden': 'Only the employee in this call may start or stop the recording.',
    'record.error.unauthorized':
      'Your link is no longer valid. Open the call again with a new link.',
    'record.error.recording_not_found': 'This recording no longer exists. It may have stopped already.',
    'record.error.network':
      'There is no connection with the server. Check your internet and try again.',
    'record.error.generic': 'Something went wrong. Please try again.',

    'media.missing.both': 'Your camera and microphone do not work.',
    'media.missing.video': 'Your camera does not work.',
    'media.missing.audio': 'Your microphone does not work.',
    'media.effect.both': 'You can still watch and listen. The others cannot see or hear you.',
    'media.effect.video': 'The others can hear you, but cannot see you.',
    'media.effect.audio': 'The others can see you, but cannot hear you.',
    'media.fix.denied':
      'You did not give permission. Click the lock next to the web address at the top. ' +
      'Set camera and microphone to ‘Allow’. Then reload the page.',
    'media.fix.notfound':
      'Check that your camera and microphone are connected properly. Then reload the page.',
    'media.fix.busy':
      'Another program is using your camera or microphone. Close that program. Then reload the page.',
    'media.fix.unsupported':
      'This browser cannot use your camera and microphone. ' +
      'Use a recent version of Chrome, Edge, Firefox or Safari.',
    'media.fix.other': 'Check your camera and microphone. Then reload the page.',

    'msg.noToken.title': 'This link is not complete.',
    'msg.noToken.text':
      'Use the whole link from your email or text message. Does it not work? Ask the municipality for a new link.',
    'msg.left.title': 'You have left the call.',
    'msg.left.text': 'Do you want to join again? Press the button.',
    'msg.left.action': 'Join again',
    'msg.gaveUp.title': 'We cannot connect.',
    'msg.gaveUp.text': 'Check your internet connection. Then try again.',
    'msg.retry': 'Try again',
    'msg.invalid_token.title': 'This link does not work.',
    'msg.invalid_token.text':
      'Use the whole link from your email or text message. Does it not work? Ask the municipality for a new link.',
    'msg.token_expired.title': 'This link has expired.',
    'msg.token_expired.text': 'Ask the municipality for a new link.',
    'msg.replaced.title': 'You continued in another window.',
    'msg.replaced.text': 'Do you want to continue in this window instead? Press the button.',
    'msg.replaced.action': 'Continue here',
    'msg.room_full.title': 'The call is full.',
    'msg.room_full.text': 'No more people can join right now. Please try again later.',
    'msg.generic.title': 'Something went wrong.',
    'msg.generic.text': 'Please try again. Does it not work? Contact the municipality.',
  },
};

let current = DEFAULT_LANGUAGE;
const listeners = new Set();

function isSupported(lang) {
  return LANGUAGES.includes(lang);
}

/** Parameters in the URL fragment, e.g. `#token=XYZ&lang=en`. */
export function fragmentParams() {
  return new URLSearchParams(window.location.hash.replace(/^#/, ''));
}

function storedLanguage() {
  try {
    return window.localStorage.getItem(STORAGE_KEY);
  } catch {
    return null; // storage can be blocked (private mode, strict settings)
  }
}

function storeLanguage(lang) {
  try {
    window.localStorage.setItem(STORAGE_KEY, lang);
  } catch {
    // not remembering the choice is fine
  }
}

/** The fragment's `lang` first, then the remembered choice, then Dutch. */
export function detectLanguage() {
  const fromFragment = fragmentParams().get('lang');
  if (isSupported(fromFragment)) return fromFragment;
  const fromStorage = storedLanguage();
  if (isSupported(fromStorage)) return fromStorage;
  return DEFAULT_LANGUAGE;
}

export function getLanguage() {
  return current;
}

/** Keep a `lang` in the fragment in step with a choice made on the page (token stays as is). */
function updateFragment(lang) {
  const params = fragmentParams();
  if (!params.has('lang') || params.get('lang') === lang) return;
  params.set('lang', lang);
  const url = `${window.location.pathname}${window.location.search}#${params.toString()}`;
  window.history.replaceState(window.history.state, '', url);
}

/**
 * Switch the page language. With `remember`, the choice is kept for next time.
 * Unknown languages fall back to Dutch.
 */
export function setLanguage(lang, { remember = false } = {}) {
  const next = isSupported(lang) ? lang : DEFAULT_LANGUAGE;
  current = next;
  document.documentElement.lang = next;
  if (remember) {
    storeLanguage(next);
    updateFragment(next);
  }
  translatePage();
  for (const listener of listeners) listener(next);
  return next;
}

/** Call `listener(lang)` after every language change. Returns a function that stops it. */
export function onLanguageChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** The text for `key` in the current language, with `{name}` style parameters filled in. */
export function t(key, params = {}) {
  const text = STRINGS[current]?.[key] ?? STRINGS[DEFAULT_LANGUAGE][key];
  if (text === undefined) {
    console.debug('i18n: missing text', key);
    return key;
  }
  return text.replace(/\{(\w+)\}/g, (match, name) =>
    Object.hasOwn(params, name) ? String(params[name]) : match,
  );
}

/** Whether a text exists for `key`. */
export function has(key) {
  return Object.hasOwn(STRINGS[DEFAULT_LANGUAGE], key);
}

/**
 * Fill elements marked with `data-i18n` (text) and `data-i18n-aria-label` (aria-label).
 */
export function translatePage(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) {
    el.textContent = t(el.dataset.i18n);
  }
  for (const el of root.querySelectorAll('[data-i18n-aria-label]')) {
    el.setAttribute('aria-label', t(el.dataset.i18nAriaLabel));
  }
  document.title = t('app.title');
}
