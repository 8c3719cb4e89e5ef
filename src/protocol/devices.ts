/**
 * Connected medical devices: the sources a device holder (an assistant beside the patient, or the
 * patient) publishes besides its camera and microphone, and the device types behind them. Shared
 * by the protocol schemas, the server (rights, journal) and the SDK (profiles). docs/devices.md.
 */

/** Media sources carried by a device: an examination camera, a digital stethoscope. */
export const DEVICE_MEDIA_SOURCES = ['examination-video', 'examination-audio'] as const;
export type DeviceMediaSource = (typeof DEVICE_MEDIA_SOURCES)[number];

/** Every device source: the two media ones, and live readings over a data channel. */
export const DEVICE_SOURCES = [...DEVICE_MEDIA_SOURCES, 'vital-signs'] as const;
export type DeviceSource = (typeof DEVICE_SOURCES)[number];

/** Device types, each feeding exactly one source (what the journal records, never the readings). */
export const DEVICE_TYPE_SOURCE = {
  otoscope: 'examination-video',
  dermatoscope: 'examination-video',
  'examination-camera': 'examination-video',
  stethoscope: 'examination-audio',
  'pulse-oximeter': 'vital-signs',
  'blood-pressure-monitor': 'vital-signs',
  thermometer: 'vital-signs',
  glucometer: 'vital-signs',
  scale: 'vital-signs',
  'respiratory-monitor': 'vital-signs',
} as const satisfies Record<string, DeviceSource>;
export type DeviceType = keyof typeof DEVICE_TYPE_SOURCE;
export const DEVICE_TYPES = Object.keys(DEVICE_TYPE_SOURCE) as DeviceType[];

export function isDeviceSource(source: string): source is DeviceSource {
  return (DEVICE_SOURCES as readonly string[]).includes(source);
}

/** Whether `deviceType` is one that feeds `source`. */
export function deviceFeeds(deviceType: DeviceType, source: DeviceSource): boolean {
  return DEVICE_TYPE_SOURCE[deviceType] === source;
}
