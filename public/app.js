// The try-it page: creates a test consultation, then runs one participant's side of it with the
// client SDK served by this server. Plain JavaScript, no build step: read it as an example.
import { connect } from '/sdk/teleconsult-sdk.js';

const TEXT = {
  fr: {
    title: "Téléconsultation — page d'essai",
    intro:
      "Cette page crée une consultation de test et vous donne deux liens : la vue du praticien et celle du patient. Ouvrez-les dans deux onglets (ou sur deux appareils) pour essayer la salle d'attente, l'admission et l'appel vidéo.",
    create: 'Créer une consultation de test',
    linksIntro: 'Ouvrez chaque lien dans un nouvel onglet :',
    practitionerView: 'Vue praticien',
    patientView: 'Vue patient',
    singleUse: "Chaque lien ne sert qu'une fois et expire après 10 minutes.",
    you: 'Vous',
    waitingRoom: "Salle d'attente",
    nobodyWaiting: "Personne n'attend.",
    admit: 'Admettre',
    decline: 'Refuser',
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
      "Vous êtes en salle d'attente. Le praticien va vous admettre ; vérifiez votre caméra et votre micro.",
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
      "This page creates a test consultation and gives you two links: the practitioner's view and the patient's. Open them in two tabs (or on two devices) to try the waiting room, admission and the video call.",
    create: 'Create a test consultation',
    linksIntro: 'Open each link in a new tab:',
    practitionerView: 'Practitioner view',
    patientView: 'Patient view',
    singleUse: 'Each link works once and expires after 10 minutes.',
    you: 'You',
    waitingRoom: 'Waiting room',
    nobodyWaiting: 'Nobody is waiting.',
    admit: 'Admit',
    decline: 'Decline',
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
      'You are in the waiting room. The practitioner will admit you; check your camera and microphone.',
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
const muted = { microphone: false, camera: false };
/** participantId -> { figure, video, audio, caption } */
const tiles = new Map();

const t = (key) => TEXT[locale][key] ?? key;

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
// Landing: create a consultation and show its two links.

async function createConsultation() {
  $('create').disabled = true;
  $('landing-error').hidden = true;
  try {
    const res = await fetch('/demo/consultations', { method: 'POST' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const { tokens } = await res.json();
    $('practitioner-link').href = `/?role=practitioner&token=${encodeURIComponent(tokens.practitioner)}`;
    $('patient-link').href = `/?role=patient&token=${encodeURIComponent(tokens.patient)}`;
    $('links').hidden = false;
  } catch (err) {
    $('landing-error').textContent = String(err.message ?? err);
    $('landing-error').hidden = false;
  } finally {
    $('create').disabled = false;
  }
}

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

function renderStatus() {
  const state = room?.admissionState;
  const key =
    state === 'waiting' || state === 'consented' || state === 'invited'
      ? 'waiting'
      : state === 'admitted' || state === 'in-call'
        ? 'inCall'
        : state === 'declined'
          ? 'declined'
          : state === 'left'
            ? 'left'
            : 'joining';
  $('status').textContent = t(key);
  $('status').dataset.state = state ?? 'joining';
}

function renderWaitingList() {
  if (!room || room.self.role !== 'practitioner') return;
  $('waiting-list').hidden = false;
  const list = $('waiting');
  list.replaceChildren();
  const waiting = [...room.participants.values()].filter(
    (p) => p.state === 'waiting' || p.state === 'consented',
  );
  $('waiting-empty').hidden = waiting.length > 0;
  for (const participant of waiting) {
    const item = document.createElement('li');
    item.dataset.participantId = participant.id;
    const name = document.createElement('span');
    name.textContent = participantLabel(participant);
    const admit = document.createElement('button');
    admit.className = 'primary';
    admit.dataset.action = 'admit';
    admit.textContent = t('admit');
    admit.addEventListener('click', () => room.admit(participant.id).catch(showError));
    const decline = document.createElement('button');
    decline.className = 'danger';
    decline.dataset.action = 'decline';
    decline.textContent = t('decline');
    decline.addEventListener('click', () => room.decline(participant.id).catch(showError));
    item.append(name, admit, decline);
    list.append(item);
  }
}

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
  const tile = tileFor(remote.participantId);
  const element = remote.kind === 'video' ? tile.video : tile.audio;
  element.srcObject = new MediaStream([remote.track]);
  element.play().catch(() => {
    // Browsers block sound until the user interacts with the page.
    if (remote.kind === 'audio') $('enable-sound').hidden = false;
  });
}

function onTrackRemoved(remote) {
  const tile = tiles.get(remote.participantId);
  if (!tile) return;
  const element = remote.kind === 'video' ? tile.video : tile.audio;
  const stream = element.srcObject;
  if (stream && stream.getTracks().includes(remote.track)) element.srcObject = null;
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

async function startCall(token) {
  $('call').hidden = false;
  renderStatus();
  renderConnection('connecting');
  // Headless Chromium (automated tests) is not recognised by mediasoup-client's detection.
  const handlerName = navigator.userAgent.includes('HeadlessChrome') ? 'Chrome111' : undefined;
  try {
    room = await connect(location.origin, token, { locale, handlerName });
  } catch (err) {
    renderConnection('disconnected');
    showError(err);
    return;
  }
  room.on('connectionStateChanged', renderConnection);
  room.on('admissionChanged', () => {
    renderStatus();
    if (room.admissionState === 'declined') $('local-video').srcObject = null;
  });
  room.on('participantJoined', renderWaitingList);
  room.on('participantUpdated', (participant) => {
    renderWaitingList();
    const tile = tiles.get(participant.id);
    if (tile) tile.caption.textContent = participantLabel(participant);
  });
  room.on('participantLeft', (participant) => {
    removeTile(participant.id);
    renderWaitingList();
  });
  room.on('trackAdded', onTrackAdded);
  room.on('trackRemoved', onTrackRemoved);
  room.on('roomClosed', () => ($('status').textContent = t('ended')));
  room.on('error', showError);
  window.teleconsultRoom = room; // handy in the browser console
  renderConnection(room.connectionState);
  renderStatus();
  renderWaitingList();

  try {
    const camera = await room.publishCamera();
    $('local-video').srcObject = new MediaStream([camera.track]);
    await room.publishMicrophone();
  } catch (err) {
    showError(err);
  }
}

$('create').addEventListener('click', createConsultation);
$('mute-microphone').addEventListener('click', () => toggleMute('microphone'));
$('mute-camera').addEventListener('click', () => toggleMute('camera'));
$('drop').addEventListener('click', () => room?.simulateConnectionDrop());
$('enable-sound').addEventListener('click', () => {
  for (const tile of tiles.values()) tile.audio.play().catch(() => undefined);
  $('enable-sound').hidden = true;
});
$('leave').addEventListener('click', async () => {
  await room?.leave();
  for (const id of [...tiles.keys()]) removeTile(id);
  $('local-video').srcObject = null;
  renderStatus();
});

const params = new URLSearchParams(location.search);
const token = params.get('token');
applyLanguage();
if (token) {
  // The join link is single-use: keep it out of the address bar and history once read.
  history.replaceState(null, '', `/?role=${encodeURIComponent(params.get('role') ?? '')}`);
  void startCall(token);
} else {
  $('landing').hidden = false;
}
