import { loadConfig, ConfigError } from './config/load.js';
import { createLogger } from './observability/logger.js';
import { SfuServer } from './server.js';

/** Process entry point: configuration, start, signals. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`configuration error: ${err.message}\n`);
      process.exit(78);
    }
    throw err;
  }
  const log = createLogger(config.log.level);
  const server = new SfuServer(config, log);
  await server.start();
  if (config.auth.apiKeys.length === 0) {
    // A generated key is only for trying the server; print it once on stdout, not in the logs.
    process.stdout.write(`\nNo API key configured: this run's REST API key is ${server.apiKeys[0]}\n`);
  }
  if (server.demoEnabled) {
    process.stdout.write(`Try a consultation: open ${server.url}/ in your browser.\n\n`);
  }
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) process.exit(1);
    log.info({ signal }, 'shutting down');
    server.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

main().catch((err: unknown) => {
  process.stderr.write(`fatal: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
