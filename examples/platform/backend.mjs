// Example platform backend: a small Node HTTP app wired to the media server with
// @teleconsult/server, the way a platform team would. It books a consultation (REST client),
// sends each participant its join link (token in the fragment), serves the consultation page
// (the front end built from frontend.js with the @teleconsult/sdk package), and receives the
// server's signed webhooks.
// Environment: PORT, SFU_URL, SFU_API_KEY, SFU_WEBHOOK_SECRET, FRONTEND_BUNDLE (built front end).
import fs from 'node:fs/promises';
import http from 'node:http';
import { TeleconsultClient, WebhookReceiver } from '@teleconsult/server';

const sfuUrl = process.env.SFU_URL;
const api = new TeleconsultClient({ baseUrl: sfuUrl, apiKey: process.env.SFU_API_KEY });
const webhooks = new WebhookReceiver({ secret: process.env.SFU_WEBHOOK_SECRET });
const received = [];

const page = `<!doctype html><meta charset="utf-8"><title>Consultation</title>
<meta name="sfu" content="${sfuUrl}"><p id="status">…</p><script type="module" src="/app.js"></script>`;

async function readBody(req, limit = 1024 * 1024) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) throw new Error('body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

const server = http.createServer(async (req, res) => {
  try {
    if (req.method === 'POST' && req.url === '/consultations') {
      // In a real platform: after the booking, for an authenticated practitioner.
      const room = await api.createRoom({ options: { waitingRoom: true } });
      const practitioner = await api.createInvitation(room.id, {
        role: 'practitioner',
        displayName: 'Dr Example',
      });
      const patient = await api.createInvitation(room.id, { role: 'patient', displayName: 'Patient' });
      res.writeHead(201, { 'Content-Type': 'application/json' });
      res.end(
        JSON.stringify({
          roomId: room.id,
          practitionerUrl: practitioner.joinUrl,
          patientUrl: patient.joinUrl,
        }),
      );
    } else if (req.method === 'POST' && req.url === '/webhooks') {
      const result = await webhooks.receive(req.headers, await readBody(req), (event) => {
        received.push(event.type);
      });
      res.writeHead(result.ok || result.reason === 'duplicate' ? 200 : 400).end();
    } else if (req.method === 'GET' && req.url === '/events') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(received));
    } else if (req.method === 'GET' && req.url === '/consultation') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(page);
    } else if (req.method === 'GET' && req.url === '/app.js') {
      res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8' });
      res.end(await fs.readFile(process.env.FRONTEND_BUNDLE));
    } else {
      res.writeHead(404).end();
    }
  } catch (err) {
    res.writeHead(500).end(String(err.message));
  }
});
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
