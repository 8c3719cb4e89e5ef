// The try-it page: creates a test consultation, then runs one participant's side of it with the
// client SDK served by this server. Plain JavaScript, no build step: read it as an example.
import { connect } from '/sdk/teleconsult-sdk.js';
import { examinationCameraTrack, startOximeter, stethoscopeTrack } from '/simulatedDevices.js';

const TEXT = {
  fr: {
    title: "Téléconsultation — page d'essai",
    intro:
      "Cette page crée une consultation de test et vous donne deux liens : la vue du praticien et celle du patient. Ouvrez-les dans deux onglets (ou sur deux appareils) pour essayer la salle d'attente, l'admission et l'appel vidéo. En consultation assistée, la vue patient tient aussi une caméra d'examen, un stéthoscope et un oxymètre simulés.",
    create: 'Créer une consultation de test',
    createAssisted: 'Consultation assistée (appareils connectés simulés)',
    devicesTitle: 'Appareils connectés (simulés)',
    startExaminationCamera: "Partager la caméra d'examen",
    startStethoscope: 'Partager le stéthoscope',
    startOximeter: "Partager l'oxymètre de pouls",
    deviceOn: '{device} : partagé',
    requestExaminationCamera: "Demander la caméra d'examen",
    requestStethoscope: 'Demander le stéthoscope',
    requestOximeter: "Demander l'oxymètre",
    requestSent: 'demande envoyée',
    deviceRequested: 'Le praticien demande : {device}{note}',
    examinationCamera: "Caméra d'examen",
    stethoscope: 'Stéthoscope',
    oximeter: 'Oxymètre de pouls',
    deviceNone: 'pas encore reçu',
    deviceReceiving: 'reçu, lecture en cours',
    noDeviceHolder: "Personne dans la consultation ne tient d'appareil.",
    spo2: 'SpO2',
    'pulse-rate': 'Pouls',
    linksIntro: 'Ouvrez chaque lien dans un nouvel onglet :',
    practitionerView: 'Vue praticien',
    patientView: 'Vue patient',
    singleUse: "Chaque lien ne sert qu'une fois et expire après 10 minutes.",
    assistantCode:
      "Code d'accès pour un accompagnant (à saisir sur la page d'accueil, dans un troisième onglet) :",
    codeLabel: "Vous avez un code d'accès ? Saisissez-le :",
    joinWithCode: 'Rejoindre',
    you: 'Vous',
    waitingRoom: "Salle d'attente",
    nobodyWaiting: "Personne n'attend.",
    admit: 'Admettre',
    hold: 'Faire patienter',
    holdPlaceholder: 'Message pour le patient',
    defaultHoldMessage: 'Le praticien vous reçoit dans quelques minutes.',
    decline: 'Refuser',
    since: 'en attente depuis',
    consentYes: 'consentement donné',
    consentNo: 'consentement pas encore donné',
    thirdPartyYes: 'présence acceptée par le patient',
    thirdPartyNo: 'présence pas encore acceptée par le patient',
    precheckNone: 'pas de test technique',
    precheckSummary:
      'test : caméra {camera}, micro {microphone}, {rtt} ms, {loss} % de pertes, {upload} kbit/s',
    held: 'message envoyé : « {message} »',
    yes: 'OK',
    no: 'échec',
    consentTitle: 'Votre consentement',
    accept: "J'accepte",
    consentGiven: 'Consentement donné.',
    consentVersion: 'Texte {textId}, version {version}',
    thirdPartyRequest: 'Une personne ({role}) demande à assister à la consultation.',
    precheckTitle: 'Avant la consultation',
    precheckRun: 'Tester ma caméra et mon réseau',
    precheckRunning: 'Test en cours…',
    precheckSeen: 'Votre image, telle que le praticien la verra',
    camera: 'Caméra',
    microphone: 'Micro',
    rtt: 'Aller-retour',
    loss: 'Pertes',
    upload: 'Débit montant',
    works: 'fonctionne',
    fails: 'ne fonctionne pas',
    precheckInterrupted: 'Test interrompu : vous avez été admis.',
    muteMicrophone: 'Couper le micro',
    unmuteMicrophone: 'Activer le micro',
    muteCamera: 'Couper la caméra',
    unmuteCamera: 'Activer la caméra',
    enableSound: 'Activer le son',
    simulateDrop: 'Simuler une coupure réseau',
    leave: 'Quitter',
    language: 'English',
    joining: 'Connexion à la consultation…',
    waiting:
      "Vous êtes en salle d'attente. Lisez le texte ci-dessous et donnez votre consentement ; le praticien vous admettra ensuite.",
    waitingThirdParty:
      "Vous êtes en salle d'attente. Le patient doit accepter votre présence, puis le praticien vous admettra.",
    consented:
      'Merci, votre consentement est enregistré. Le praticien va vous admettre ; vous pouvez tester votre caméra et votre réseau.',
    inCall: 'Consultation en cours.',
    declined: "Le praticien n'a pas admis votre participation.",
    left: 'Vous avez quitté la consultation.',
    ended: 'La consultation est terminée.',
    connecting: 'connexion…',
    connected: 'connecté',
    reconnecting: 'reconnexion…',
    disconnected: 'déconnecté',
    practitioner: 'Praticien',
    patient: 'Patient',
    assistant: 'Accompagnant',
    observer: 'Observateur',
    muted: '(micro coupé)',
  },
  en: {
    title: 'Teleconsultation — try-it page',
    intro:
      "This page creates a test consultation and gives you two links: the practitioner's view and the patient's. Open them in two tabs (or on two devices) to try the waiting room, admission and the video call. In an assisted consultation the patient's view also holds a simulated examination camera, stethoscope and pulse oximeter.",
    create: 'Create a test consultation',
    createAssisted: 'Assisted consultation (simulated connected devices)',
    devicesTitle: 'Connected devices (simulated)',
    startExaminationCamera: 'Share the examination camera',
    startStethoscope: 'Share the stethoscope',
    startOximeter: 'Share the pulse oximeter',
    deviceOn: '{device}: shared',
    requestExaminationCamera: 'Ask for the examination camera',
    requestStethoscope: 'Ask for the stethoscope',
    requestOximeter: 'Ask for the oximeter',
    requestSent: 'request sent',
    deviceRequested: 'The practitioner asks for: {device}{note}',
    examinationCamera: 'Examination camera',
    stethoscope: 'Stethoscope',
    oximeter: 'Pulse oximeter',
    deviceNone: 'not received yet',
    deviceReceiving: 'received, playing',
    noDeviceHolder: 'Nobody in the consultation holds a device.',
    spo2: 'SpO2',
    'pulse-rate': 'Pulse',
    linksIntro: 'Open each link in a new tab:',
    practitionerView: 'Practitioner view',
    patientView: 'Patient view',
    singleUse: 'Each link works once and expires after 10 minutes.',
    assistantCode: 'Access code for a companion (type it on the home page, in a third tab):',
    codeLabel: 'Have an access code? Type it:',
    joinWithCode: 'Join',
    you: 'You',
    waitingRoom: 'Waiting room',
    nobodyWaiting: 'Nobody is waiting.',
    admit: 'Admit',
    hold: 'Ask to wait',
    holdPlaceholder: 'Message for the patient',
    defaultHoldMessage: 'The practitioner will see you in a few minutes.',
    decline: 'Decline',
    since: 'waiting since',
    consentYes: 'consent given',
    consentNo: 'consent not given yet',
    thirdPartyYes: 'presence accepted by the patient',
    thirdPartyNo: 'presence not accepted by the patient yet',
    precheckNone: 'no pre-call check',
    precheckSummary:
      'check: camera {camera}, microphone {microphone}, {rtt} ms, {loss} % loss, {upload} kbit/s',
    held: 'message sent: “{message}”',
    yes: 'OK',
    no: 'failed',
    consentTitle: 'Your consent',
    accept: 'I agree',
    consentGiven: 'Consent given.',
    consentVersion: 'Text {textId}, version {version}',
    thirdPartyRequest: 'Someone ({role}) asks to attend the consultation.',
    precheckTitle: 'Before the consultation',
    precheckRun: 'Test my camera and network',
    precheckRunning: 'Testing…',
    precheckSeen: 'Your picture, as the practitioner will see it',
    camera: 'Camera',
    microphone: 'Microphone',
    rtt: 'Round trip',
    loss: 'Loss',
    upload: 'Upload',
    works: 'works',
    fails: 'does not work',
    precheckInterrupted: 'Check interrupted: you were admitted.',
    muteMicrophone: 'Mute microphone',
    unmuteMicrophone: 'Unmute microphone',
    muteCamera: 'Turn camera off',
    unmuteCamera: 'Turn camera on',
    enableSound: 'Enable sound',
    simulateDrop: 'Simulate a network drop',
    leave: 'Leave',
    language: 'Français',
    joining: 'Joining the consultation…',
    waiting:
      'You are in the waiting room. Read the text below and give your consent; the practitioner will then admit you.',
    waitingThirdParty:
      'You are in the waiting room. The patient must accept your presence, then the practitioner will admit you.',
    consented:
      'Thank you, your consent is recorded. The practitioner will admit you; you can test your camera and network.',
    inCall: 'Consultation in progress.',
    declined: 'The practitioner declined your admission.',
    left: 'You left the consultation.',
    ended: 'The consultation has ended.',
    connecting: 'connecting…',
    connected: 'connected',
    reconnecting: 'reconnecting…',
    disconnected: 'disconnected',
    practitioner: 'Practitioner',
    patient: 'Patient',
    assistant: 'Companion',
    observer: 'Observer',
    muted: '(muted)',
  },
};

const $ = (id) => document.getElementById(id);
let locale = localStorage.getItem('teleconsult.locale') === 'en' ? 'en' : 'fr';
let room;
let lastError;
/** The teleconsultation consent text shown to the patient (accepted exactly as shown). */
let consentText;
/** The last pre-call check report, to render again on a language change. */
let precheckReport;
const muted = { microphone: false, camera: false };
/** participantId -> { figure, video, audio, caption } */
const tiles = new Map();
/** Third-party consent requests waiting for the patient's answer, by participant id. */
const consentRequests = new Map();
/** Assisted consultation (`mode=assisted` in the join link): the simulated devices are offered. */
let assisted = false;
/** Device holder: the simulated devices running, by source ({ stop }). */
const runningDevices = new Map();
/** Device holder: the practitioner's latest request per source. */
const deviceRequests = new Map();
/** Practitioner: the latest reading per kind, and the last readings in arrival order (bounded). */
const vitalLatest = new Map();
const vitalLog = [];
const VITAL_LOG_SIZE = 20;
/** The buttons that start each simulated device, and what they publish. */
const DEVICE_BUTTONS = {
  'examination-video': { button: 'device-examination-video', label: 'examinationCamera' },
  'examination-audio': { button: 'device-stethoscope', label: 'stethoscope' },
  'vital-signs': { button: 'device-oximeter', label: 'oximeter' },
};
const DEVICE_START_LABELS = {
  'examination-video': 'startExaminationCamera',
  'examination-audio': 'startStethoscope',
  'vital-signs': 'startOximeter',
};

const t = (key, values = {}) =>
  (TEXT[locale][key] ?? key).replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ''));

function applyLanguage() {
  document.documentElement.lang = locale;
  for (const element of document.querySelectorAll('[data-i18n]'))
    element.textContent = t(element.dataset.i18n);
  $('language').textContent = t('language');
  $('mute-microphone').textContent = t(muted.microphone ? 'unmuteMicrophone' : 'muteMicrophone');
  $('mute-camera').textContent = t(muted.camera ? 'unmuteCamera' : 'muteCamera');
  if (room) {
    renderStatus();
    renderConnection(room.connectionState);
    renderWaitingList();
    renderConsent();
    renderConsentRequests();
    renderPrecheck();
    renderDevices();
    for (const [id, tile] of tiles) tile.caption.textContent = participantLabel(room.participants.get(id));
  }
  if (lastError) showError(lastError);
}

$('language').addEventListener('click', () => {
  locale = locale === 'fr' ? 'en' : 'fr';
  localStorage.setItem('teleconsult.locale', locale);
  applyLanguage();
});

// ------------------------------------------------------------------------------------------------
// Landing: create a consultation and show its two links, or join with an access code.

async function createConsultation(mode) {
  $('create').disabled = true;
  $('create-assisted').disabled = true;
  $('landing-error').hidden = true;
  try {
    const res = await fetch('/demo/consultations', { method: 'POST' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const { tokens, assistantAccessCode } = await res.json();
    $('assistant-code').textContent = assistantAccessCode ?? '';
    // The token goes in the fragment, which the browser never sends to a server (see docs/sdk.md).
    const suffix = mode === 'assisted' ? '&mode=assisted' : '';
    $('practitioner-link').href =
      `/#role=practitioner&token=${encodeURIComponent(tokens.practitioner)}${suffix}`;
    $('patient-link').href = `/#role=patient&token=${encodeURIComponent(tokens.patient)}${suffix}`;
    $('links').hidden = false;
  } catch (err) {
    $('landing-error').textContent = String(err.message ?? err);
    $('landing-error').hidden = false;
  } finally {
    $('create').disabled = false;
    $('create-assisted').disabled = false;
  }
}

$('code-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const accessCode = $('access-code').value.trim();
  if (!accessCode) return;
  $('landing').hidden = true;
  void startCall({ accessCode });
});

// ------------------------------------------------------------------------------------------------
// Call view.

function participantLabel(participant) {
  if (!participant) return '';
  const role = t(participant.role);
  return participant.displayName ? `${participant.displayName} — ${role}` : role;
}

function renderConnection(state) {
  const badge = $('connection');
  badge.hidden = false;
  badge.dataset.state = state;
  badge.textContent = t(state);
}

function isWaiting(state) {
  return state === 'waiting' || state === 'consented' || state === 'invited';
}

function renderStatus() {
  const state = room?.admissionState;
  const thirdParty = room && room.self.role !== 'patient' && room.self.role !== 'practitioner';
  const key = isWaiting(state)
    ? state === 'consented'
      ? 'consented'
      : thirdParty
        ? 'waitingThirdParty'
        : 'waiting'
    : state === 'admitted' || state === 'in-call'
      ? 'inCall'
      : state === 'declined'
        ? 'declined'
        : state === 'left'
          ? 'left'
          : 'joining';
  $('status').textContent = t(key);
  $('status').dataset.state = state ?? 'joining';
  const held = room && isWaiting(state) ? room.heldMessage : undefined;
  $('held-message').hidden = !held;
  $('held-message').textContent = held ?? '';
  const waitingPatient = room?.self.role === 'patient' && isWaiting(state);
  $('consent').hidden = !waitingPatient || !consentText;
  $('precheck').hidden = !(room && isWaiting(state));
}

// --- Patient: consent ---------------------------------------------------------------------------

async function loadConsentText() {
  if (room.self.role !== 'patient') return;
  try {
    const texts = await room.getConsentTexts();
    consentText = texts.find((text) => text.purpose === 'teleconsultation');
  } catch (err) {
    showError(err);
  }
  renderConsent();
  renderStatus();
}

function renderConsent() {
  if (!consentText) return;
  // The exact text the server hashed: shown as is, never translated or reformatted.
  $('consent-text').textContent = consentText.text;
  $('consent-text').lang = consentText.locale;
  $('consent-version').textContent = t('consentVersion', consentText);
  const given = room.consents.has('teleconsultation');
  $('consent-accept').hidden = given;
  $('consent-given').hidden = !given;
}

async function acceptConsent() {
  if (!consentText) return;
  $('consent-accept').disabled = true;
  try {
    await room.giveConsent(consentText);
  } catch (err) {
    showError(err);
  } finally {
    $('consent-accept').disabled = false;
  }
  renderConsent();
}

function renderConsentRequests() {
  const list = $('third-party-requests');
  list.replaceChildren();
  list.hidden = consentRequests.size === 0;
  for (const request of consentRequests.values()) {
    const item = document.createElement('li');
    item.className = 'panel';
    item.dataset.participantId = request.participantId;
    const intro = document.createElement('p');
    intro.textContent = t('thirdPartyRequest', { role: t(request.role) });
    const text = document.createElement('blockquote');
    text.textContent = request.text.text;
    text.lang = request.text.locale;
    const accept = document.createElement('button');
    accept.className = 'primary';
    accept.dataset.action = 'accept-third-party';
    accept.textContent = t('accept');
    accept.addEventListener('click', async () => {
      accept.disabled = true;
      try {
        await room.giveConsent(request.text, { coversParticipantId: request.participantId });
        consentRequests.delete(request.participantId);
        renderConsentRequests();
      } catch (err) {
        accept.disabled = false;
        showError(err);
      }
    });
    item.append(intro, text, accept);
    list.append(item);
  }
}

// --- Waiting participant: pre-call check --------------------------------------------------------

async function runPrecheck() {
  $('precheck-run').disabled = true;
  $('precheck-run').textContent = t('precheckRunning');
  $('precheck-tile').hidden = true;
  try {
    precheckReport = await room.runPrecheck({
      durationMs: 5_000,
      onTrack: (track) => {
        if (track.kind !== 'video') return;
        $('precheck-video').srcObject = new MediaStream([track.track]);
        $('precheck-tile').hidden = false;
      },
    });
  } catch (err) {
    showError(err);
  } finally {
    $('precheck-run').disabled = false;
    $('precheck-run').textContent = t('precheckRun');
    $('precheck-video').srcObject = null;
    $('precheck-tile').hidden = true;
  }
  renderPrecheck();
}

function renderPrecheck() {
  const result = $('precheck-result');
  if (!precheckReport) {
    result.hidden = true;
    return;
  }
  const r = precheckReport;
  const rows = [
    ['camera', t(r.camera ? 'works' : 'fails'), r.camera],
    ['microphone', t(r.microphone ? 'works' : 'fails'), r.microphone],
    ['rtt', `${Math.round(r.rttMs)} ms`, true],
    ['loss', `${(r.lossRatio * 100).toFixed(1)} %`, true],
    ['upload', `${Math.round(r.uploadKbps)} kbit/s`, true],
  ];
  result.replaceChildren();
  for (const [key, value, ok] of rows) {
    const term = document.createElement('dt');
    term.textContent = t(key);
    const detail = document.createElement('dd');
    detail.textContent = value;
    detail.dataset.field = key;
    detail.dataset.ok = String(ok);
    result.append(term, detail);
  }
  if (!r.completed) {
    const note = document.createElement('dd');
    note.textContent = t('precheckInterrupted');
    result.append(note);
  }
  result.hidden = false;
  result.dataset.completed = String(r.completed);
}

// --- Practitioner: waiting list -----------------------------------------------------------------

function consentSatisfied(entry) {
  return entry.participant.role === 'patient'
    ? entry.consents.includes('teleconsultation')
    : entry.coveredByPatientConsent;
}

function precheckSummary(precheck) {
  if (!precheck) return t('precheckNone');
  return t('precheckSummary', {
    camera: t(precheck.camera ? 'yes' : 'no'),
    microphone: t(precheck.microphone ? 'yes' : 'no'),
    rtt: Math.round(precheck.rttMs),
    loss: (precheck.lossRatio * 100).toFixed(1),
    upload: Math.round(precheck.uploadKbps),
  });
}

function renderWaitingList() {
  if (!room || room.self.role !== 'practitioner') return;
  $('waiting-list').hidden = false;
  const list = $('waiting');
  // Keep what the practitioner is typing across updates.
  const drafts = new Map(
    [...list.querySelectorAll('li')].map((li) => [
      li.dataset.participantId,
      li.querySelector('input')?.value ?? '',
    ]),
  );
  list.replaceChildren();
  const entries = room.waitingList;
  $('waiting-empty').hidden = entries.length > 0;
  for (const entry of entries) {
    const { participant } = entry;
    const item = document.createElement('li');
    item.dataset.participantId = participant.id;
    item.dataset.consent = String(consentSatisfied(entry));
    const name = document.createElement('strong');
    name.textContent = participantLabel(participant);
    const since = new Date(entry.since).toLocaleTimeString(locale === 'fr' ? 'fr-FR' : 'en-GB', {
      hour: '2-digit',
      minute: '2-digit',
    });
    const consent =
      participant.role === 'patient'
        ? t(consentSatisfied(entry) ? 'consentYes' : 'consentNo')
        : t(consentSatisfied(entry) ? 'thirdPartyYes' : 'thirdPartyNo');
    const facts = document.createElement('span');
    facts.className = 'facts';
    facts.dataset.field = 'facts';
    facts.textContent = `${t('since')} ${since} · ${consent}`;
    const precheck = document.createElement('span');
    precheck.className = 'facts';
    precheck.dataset.field = 'precheck';
    precheck.textContent = precheckSummary(entry.precheck);
    item.append(name, facts, precheck);
    if (entry.heldMessage) {
      const held = document.createElement('span');
      held.className = 'facts';
      held.dataset.field = 'held';
      held.textContent = t('held', { message: entry.heldMessage });
      item.append(held);
    }
    const actions = document.createElement('div');
    actions.className = 'actions';
    const admit = document.createElement('button');
    admit.className = 'primary';
    admit.dataset.action = 'admit';
    admit.textContent = t('admit');
    admit.disabled = !consentSatisfied(entry); // the server refuses it anyway (CONSENT_REQUIRED)
    admit.addEventListener('click', () => room.admit(participant.id).catch(showError));
    const message = document.createElement('input');
    message.maxLength = 280;
    message.placeholder = t('holdPlaceholder');
    message.dataset.field = 'hold-message';
    message.value = drafts.get(participant.id) ?? '';
    const hold = document.createElement('button');
    hold.dataset.action = 'hold';
    hold.textContent = t('hold');
    hold.addEventListener('click', () =>
      room.hold(participant.id, message.value.trim() || t('defaultHoldMessage')).catch(showError),
    );
    const decline = document.createElement('button');
    decline.className = 'danger';
    decline.dataset.action = 'decline';
    decline.textContent = t('decline');
    decline.addEventListener('click', () => room.decline(participant.id).catch(showError));
    actions.append(admit, message, hold, decline);
    item.append(actions);
    list.append(item);
  }
}

// --- Media --------------------------------------------------------------------------------------

function tileFor(participantId) {
  let tile = tiles.get(participantId);
  if (tile) return tile;
  const figure = document.createElement('figure');
  figure.className = 'tile remote';
  figure.dataset.participantId = participantId;
  const video = document.createElement('video');
  video.autoplay = true;
  video.playsInline = true;
  video.muted = true; // sound goes through the audio element, so video always autoplays
  video.dataset.role = 'remote-video';
  const audio = document.createElement('audio');
  audio.autoplay = true;
  const caption = document.createElement('figcaption');
  caption.textContent = participantLabel(room.participants.get(participantId));
  figure.append(video, audio, caption);
  $('remote').append(figure);
  tile = { figure, video, audio, caption };
  tiles.set(participantId, tile);
  return tile;
}

function removeTile(participantId) {
  tiles.get(participantId)?.figure.remove();
  tiles.delete(participantId);
}

function onTrackAdded(remote) {
  if (remote.source === 'examination-video' || remote.source === 'examination-audio') {
    showDeviceTrack(remote);
    return;
  }
  const tile = tileFor(remote.participantId);
  const element = remote.kind === 'video' ? tile.video : tile.audio;
  element.srcObject = new MediaStream([remote.track]);
  element.play().catch(() => {
    // Browsers block sound until the user interacts with the page.
    if (remote.kind === 'audio') $('enable-sound').hidden = false;
  });
}

function onTrackRemoved(remote) {
  if (remote.source === 'examination-video' || remote.source === 'examination-audio') {
    hideDeviceTrack(remote);
    return;
  }
  const tile = tiles.get(remote.participantId);
  if (!tile) return;
  const element = remote.kind === 'video' ? tile.video : tile.audio;
  const stream = element.srcObject;
  if (stream && stream.getTracks().includes(remote.track)) element.srcObject = null;
}

// --- Assisted consultation: connected devices (docs/devices.md) ---------------------------------

function isDeviceHolder() {
  return room?.self.role === 'patient' || room?.self.role === 'assistant';
}

function renderDevices() {
  if (!room) return;
  const holder = isDeviceHolder() && (assisted || room.self.role === 'assistant' || deviceRequests.size > 0);
  const viewer = room.self.role === 'practitioner' && assisted;
  $('devices').hidden = !holder && !viewer;
  $('device-holder').hidden = !holder;
  $('device-viewer').hidden = !viewer;
  if (holder) renderDeviceHolder();
  if (viewer) renderVitals();
}

function renderDeviceHolder() {
  const mayPublish = room.admissionState === 'admitted' || room.admissionState === 'in-call';
  for (const [source, { button, label }] of Object.entries(DEVICE_BUTTONS)) {
    const element = $(button);
    const on = runningDevices.has(source);
    element.textContent = on ? t('deviceOn', { device: t(label) }) : t(DEVICE_START_LABELS[source]);
    element.dataset.state = on ? 'on' : 'off';
    element.dataset.requested = String(deviceRequests.has(source));
    // Media is queued until admission; the readings channel opens only once admitted.
    element.disabled = on || (source === 'vital-signs' && !mayPublish);
  }
  const list = $('device-requests');
  list.replaceChildren();
  for (const [source, request] of deviceRequests) {
    const item = document.createElement('li');
    item.className = 'panel';
    item.dataset.source = source;
    const note = request.note ? ` (${request.note})` : '';
    item.textContent = t('deviceRequested', { device: t(DEVICE_BUTTONS[source].label), note });
    list.append(item);
  }
}

/** Device holder: starts one simulated device and publishes it with its profile. */
async function startDevice(source) {
  if (!room || runningDevices.has(source)) return;
  $(DEVICE_BUTTONS[source].button).disabled = true;
  let device;
  try {
    if (source === 'examination-video') {
      device = examinationCameraTrack();
      await room.publishExaminationVideo({ deviceType: 'examination-camera', track: device.track });
      $('device-preview').srcObject = new MediaStream([device.track]);
      $('device-preview-tile').hidden = false;
    } else if (source === 'examination-audio') {
      device = await stethoscopeTrack();
      await room.publishStethoscope({ track: device.track });
    } else {
      const channel = await room.publishVitalSigns({ deviceType: 'pulse-oximeter' });
      device = startOximeter(channel, showError);
    }
    runningDevices.set(source, device);
    deviceRequests.delete(source);
  } catch (err) {
    device?.stop();
    showError(err);
  }
  renderDevices();
}

/** Practitioner: asks the device holder (an assistant if one is there, else the patient) for a source. */
async function requestDevice(button) {
  const source = button.dataset.request;
  const participants = [...room.participants.values()];
  const holder =
    participants.find((p) => p.role === 'assistant') ?? participants.find((p) => p.role === 'patient');
  if (!holder) {
    showError(new Error(t('noDeviceHolder')));
    return;
  }
  const deviceType =
    source === 'examination-video'
      ? 'examination-camera'
      : source === 'examination-audio'
        ? 'stethoscope'
        : 'pulse-oximeter';
  try {
    await room.requestDeviceSource(holder.id, source, { deviceType });
    button.dataset.state = 'sent';
    button.title = t('requestSent');
  } catch (err) {
    showError(err);
  }
}

function showDeviceTrack(remote) {
  const element = remote.kind === 'video' ? $('examination-video') : $('stethoscope-audio');
  element.srcObject = new MediaStream([remote.track]);
  if (remote.kind === 'audio') {
    $('stethoscope-state').dataset.state = 'receiving';
    $('stethoscope-state').dataset.i18n = 'deviceReceiving';
    $('stethoscope-state').textContent = t('deviceReceiving');
  }
  element.play().catch(() => {
    if (remote.kind === 'audio') $('enable-sound').hidden = false;
  });
}

function hideDeviceTrack(remote) {
  const element = remote.kind === 'video' ? $('examination-video') : $('stethoscope-audio');
  const stream = element.srcObject;
  if (!stream || !stream.getTracks().includes(remote.track)) return;
  element.srcObject = null;
  if (remote.kind === 'audio') {
    $('stethoscope-state').dataset.state = 'none';
    $('stethoscope-state').dataset.i18n = 'deviceNone';
    $('stethoscope-state').textContent = t('deviceNone');
  }
}

function formatReading(reading) {
  return reading.kind === 'blood-pressure'
    ? `${reading.systolic}/${reading.diastolic} ${reading.unit}`
    : `${reading.value} ${reading.unit}`;
}

/** Practitioner: one validated reading from the SDK (already decrypted and checked in order). */
function onVitalSign({ participantId, reading }) {
  vitalLatest.set(reading.kind, reading);
  vitalLog.push({ participantId, reading });
  if (vitalLog.length > VITAL_LOG_SIZE) vitalLog.shift();
  renderVitals();
}

function renderVitals() {
  const latest = $('vital-latest');
  latest.replaceChildren();
  for (const [kind, reading] of vitalLatest) {
    const term = document.createElement('dt');
    term.textContent = t(kind);
    const detail = document.createElement('dd');
    detail.dataset.kind = kind;
    detail.textContent = formatReading(reading);
    latest.append(term, detail);
  }
  const log = $('vital-log');
  log.replaceChildren();
  for (const { participantId, reading } of vitalLog) {
    const item = document.createElement('li');
    item.dataset.seq = String(reading.seq);
    item.dataset.kind = reading.kind;
    item.dataset.participantId = participantId;
    const time = new Date(reading.timestamp).toLocaleTimeString(locale === 'fr' ? 'fr-FR' : 'en-GB');
    item.textContent = `${time} · ${t(reading.kind)} ${formatReading(reading)}`;
    log.append(item);
  }
}

function showError(err) {
  lastError = err;
  const message = typeof err?.messageIn === 'function' ? err.messageIn(locale) : String(err?.message ?? err);
  $('call-error').textContent = err?.code ? `${message} [${err.code}]` : message;
  $('call-error').hidden = false;
}

async function toggleMute(source) {
  if (!room) return;
  muted[source] = !muted[source];
  try {
    if (muted[source]) await room.mute(source);
    else await room.unmute(source);
  } catch (err) {
    showError(err);
  }
  applyLanguage();
}

/** Joins with a token (join link) or `{ accessCode }` and runs this participant's side of the call. */
async function startCall(credentials) {
  $('call').hidden = false;
  renderStatus();
  renderConnection('connecting');
  // Headless Chromium (automated tests) is not recognised by mediasoup-client's detection.
  const handlerName = navigator.userAgent.includes('HeadlessChrome') ? 'Chrome111' : undefined;
  try {
    room = await connect(location.origin, credentials, { locale, handlerName });
  } catch (err) {
    renderConnection('disconnected');
    showError(err);
    return;
  }
  room.on('connectionStateChanged', renderConnection);
  room.on('admissionChanged', (state) => {
    renderStatus();
    renderConsent();
    renderDevices();
    if (state === 'declined') $('local-video').srcObject = null;
  });
  room.on('consentRequested', (request) => {
    consentRequests.set(request.participantId, request);
    renderConsentRequests();
  });
  room.on('waitingListChanged', renderWaitingList);
  room.on('participantUpdated', (participant) => {
    const tile = tiles.get(participant.id);
    if (tile) tile.caption.textContent = participantLabel(participant);
  });
  room.on('participantLeft', (participant) => {
    removeTile(participant.id);
    if (consentRequests.delete(participant.id)) renderConsentRequests();
  });
  room.on('trackAdded', onTrackAdded);
  room.on('trackRemoved', onTrackRemoved);
  room.on('vitalSign', onVitalSign);
  room.on('deviceSourceRequested', (request) => {
    deviceRequests.set(request.source, request);
    renderDevices();
  });
  room.on('roomClosed', () => ($('status').textContent = t('ended')));
  room.on('error', showError);
  window.teleconsultRoom = room; // handy in the browser console
  renderConnection(room.connectionState);
  renderStatus();
  renderDevices();
  if (room.self.role === 'practitioner') {
    room.getWaitingList().then(renderWaitingList, showError);
  }
  void loadConsentText();

  try {
    // Queued until admission; shown at once as a preview.
    const camera = await room.publishCamera();
    $('local-video').srcObject = new MediaStream([camera.track]);
    await room.publishMicrophone();
  } catch (err) {
    showError(err);
  }
}

$('create').addEventListener('click', () => createConsultation('standard'));
$('create-assisted').addEventListener('click', () => createConsultation('assisted'));
for (const source of Object.keys(DEVICE_BUTTONS))
  $(DEVICE_BUTTONS[source].button).addEventListener('click', () => startDevice(source));
for (const button of document.querySelectorAll('button[data-request]'))
  button.addEventListener('click', () => requestDevice(button));
$('consent-accept').addEventListener('click', acceptConsent);
$('precheck-run').addEventListener('click', runPrecheck);
$('mute-microphone').addEventListener('click', () => toggleMute('microphone'));
$('mute-camera').addEventListener('click', () => toggleMute('camera'));
$('drop').addEventListener('click', () => room?.simulateConnectionDrop());
$('enable-sound').addEventListener('click', () => {
  for (const tile of tiles.values()) tile.audio.play().catch(() => undefined);
  $('stethoscope-audio')
    .play()
    .catch(() => undefined);
  $('enable-sound').hidden = true;
});
$('leave').addEventListener('click', async () => {
  for (const device of runningDevices.values()) device.stop();
  runningDevices.clear();
  await room?.leave();
  for (const id of [...tiles.keys()]) removeTile(id);
  $('local-video').srcObject = null;
  renderStatus();
});

// Join links carry the token in the fragment (#role=...&token=...): never sent to any server.
const fragment = new URLSearchParams(location.hash.slice(1));
const token = fragment.get('token');
const code = new URLSearchParams(location.search).get('code');
assisted = fragment.get('mode') === 'assisted';
applyLanguage();
if (token) {
  // The join link is single-use: keep it out of the address bar and history once read.
  const mode = assisted ? '&mode=assisted' : '';
  history.replaceState(null, '', `/?role=${encodeURIComponent(fragment.get('role') ?? '')}${mode}`);
  void startCall(token);
} else if (code) {
  history.replaceState(null, '', '/');
  void startCall({ accessCode: code });
} else {
  $('landing').hidden = false;
}
