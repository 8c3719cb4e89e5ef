// Simulated connected devices for the try-it page's assisted consultation: what a nurse's otoscope,
// digital stethoscope and pulse oximeter would give the page, made in the browser so a newcomer can
// try the mode without any device. The SDK publishes them with the same profiles as real ones.

/** Frames a second of the simulated examination camera (fine detail that hardly moves). */
const CAMERA_FPS = 15;

/**
 * An examination camera: a canvas of fine detail (a one-pixel grid, thin rings, small text) with a
 * slow drift, so the encoder has detail to keep and frames to send. Returns the track and a stop().
 */
export function examinationCameraTrack({ width = 1280, height = 720 } = {}) {
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d');
  let frame = 0;
  const draw = () => {
    frame++;
    ctx.fillStyle = '#f3d9c9';
    ctx.fillRect(0, 0, width, height);
    ctx.strokeStyle = 'rgba(90, 40, 30, 0.55)';
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (let x = 0.5; x < width; x += 4) {
      ctx.moveTo(x, 0);
      ctx.lineTo(x, height);
    }
    for (let y = 0.5; y < height; y += 4) {
      ctx.moveTo(0, y);
      ctx.lineTo(width, y);
    }
    ctx.stroke();
    const cx = width / 2 + Math.sin(frame / 40) * 20;
    const cy = height / 2 + Math.cos(frame / 50) * 12;
    ctx.strokeStyle = '#7a1f1f';
    for (let r = 6; r < Math.min(width, height) / 2.5; r += 7) {
      ctx.beginPath();
      ctx.arc(cx, cy, r, 0, 2 * Math.PI);
      ctx.stroke();
    }
    ctx.fillStyle = '#161616';
    ctx.font = '11px monospace';
    ctx.fillText(`examination camera (simulated) · frame ${frame}`, 12, height - 12);
  };
  draw();
  const timer = setInterval(draw, 1000 / CAMERA_FPS);
  const track = canvas.captureStream(CAMERA_FPS).getVideoTracks()[0];
  return {
    track,
    stop() {
      clearInterval(timer);
      track.stop();
    },
  };
}

/** One heartbeat at 72 a minute: damped bursts at 45+90 Hz (S1) and 65+130 Hz (S2). */
function heartbeat(rate) {
  const samples = new Float32Array(Math.round(rate * (60 / 72)));
  const burst = (start, length, f1, f2, gain) => {
    for (let n = 0; n < length * rate; n++) {
      const time = n / rate;
      const envelope = Math.sin((Math.PI * time) / length) * Math.exp(-time * 12);
      samples[Math.round(start * rate) + n] +=
        gain * envelope * (0.6 * Math.sin(2 * Math.PI * f1 * time) + 0.4 * Math.sin(2 * Math.PI * f2 * time));
    }
  };
  burst(0, 0.12, 45, 90, 0.7);
  burst(0.32, 0.09, 65, 130, 0.56);
  return samples;
}

/**
 * A digital stethoscope: heart-like sounds (energy between 20 and 200 Hz) looped in Web Audio into
 * a MediaStream track. Call it from a click: browsers start audio only after a user gesture.
 */
export async function stethoscopeTrack() {
  const context = new AudioContext({ sampleRate: 48_000 });
  await context.resume();
  const beat = heartbeat(context.sampleRate);
  const buffer = context.createBuffer(1, beat.length, context.sampleRate);
  buffer.copyToChannel(beat, 0);
  const source = context.createBufferSource();
  source.buffer = buffer;
  source.loop = true;
  const destination = context.createMediaStreamDestination();
  source.connect(destination);
  source.start();
  const track = destination.stream.getAudioTracks()[0];
  return {
    track,
    stop() {
      track.stop();
      void context.close();
    },
  };
}

/**
 * A pulse oximeter: one SpO2 and one pulse-rate reading a second, drifting like a resting adult's,
 * sent through the SDK's vital-signs channel (which validates, numbers and rate-limits them).
 * `onError` gets what the SDK refuses.
 */
export function startOximeter(channel, onError) {
  let spo2 = 97;
  let pulse = 72;
  const drift = (value, low, high) =>
    Math.min(high, Math.max(low, value + Math.round(Math.random() * 2 - 1)));
  const timer = setInterval(() => {
    spo2 = drift(spo2, 94, 99);
    pulse = drift(pulse, 62, 84);
    channel.send({ kind: 'spo2', value: spo2, unit: '%' }).catch(onError);
    channel.send({ kind: 'pulse-rate', value: pulse, unit: '/min' }).catch(onError);
  }, 1000);
  return {
    stop() {
      clearInterval(timer);
      channel.close();
    },
  };
}
