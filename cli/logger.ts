// The process logger: pino, JSON lines to stderr, level from --log-level / POLLEN_LOG_LEVEL.
import { pino, type Logger } from 'pino';

export function createLogger(level: string, name: string): Logger {
  return pino({ name, level, redact: { paths: ['*.authorization', '*.headers.authorization', 'req.headers.authorization', '*.password', '*.secret'], censor: '[redacted]' } }, pino.destination(2));
}
