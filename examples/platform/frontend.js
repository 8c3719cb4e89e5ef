// Example front end: the consultation page of the platform, bundled with @teleconsult/sdk.
// The join link carries the token in its fragment; the page removes it from the address bar.
import { connect } from '@teleconsult/sdk';

const status = document.getElementById('status');
const token = new URLSearchParams(location.hash.slice(1)).get('token');
history.replaceState(null, '', location.pathname);
const sfu = document.querySelector('meta[name="sfu"]').content;

const room = await connect(sfu, token, {
  locale: 'en',
  handlerName: /HeadlessChrome/.test(navigator.userAgent) ? 'Chrome111' : undefined,
});
window.platformRoom = room;
room.on('trackAdded', ({ kind, track }) => {
  const element = document.createElement(kind);
  element.autoplay = true;
  element.muted = true;
  element.srcObject = new MediaStream([track]);
  document.body.append(element);
});
room.on('admissionChanged', (state) => (status.textContent = state));
await room.publishCamera();
await room.publishMicrophone();
if (room.self.role === 'patient') {
  // A real page shows the text with an "I agree" button.
  const text = (await room.getConsentTexts()).find((t) => t.purpose === 'teleconsultation');
  await room.giveConsent(text);
} else {
  // A real page lists the waiting room with Admit buttons.
  const admitReady = (entries) => {
    for (const entry of entries)
      if (entry.consents.includes('teleconsultation'))
        room.admit(entry.participant.id).catch(() => undefined);
  };
  room.on('waitingListChanged', admitReady);
  admitReady(await room.getWaitingList());
}
status.textContent = room.admissionState;
