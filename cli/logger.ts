// The process logger: pino, level from --log-level / POLLEN_LOG_LEVEL, to stderr. JSON lines for
// log collectors (journald, kubectl logs, a file); on an interactive terminal, readable lines
// through pino-pretty (colour, local time, the fields after the message), in the same process and
// synchronously so nothing is lost when the daemon exits.
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { build as prettyStream } from 'pino-pretty';

export type LogFormat = 'json' | 'pretty';

/** Pretty on a terminal, JSON otherwise: the logs go to stderr, so it is stderr that must be a TTY. */
export function defaultLogFormat(stream: { isTTY?: boolean } = process.stderr): LogFormat {
  return stream.isTTY === true ? 'pretty' : 'json';
}

const REDACT: LoggerOptions['redact'] = { paths: ['*.authorization', '*.headers.authorization', 'req.headers.authorization', '*.password', '*.secret'], censor: '[redacted]' };

export function createLogger(level: string, name: string, format: LogFormat = defaultLogFormat(), destination?: DestinationStream): Logger {
  const options: LoggerOptions = { name, level, redact: REDACT };
  if (format === 'json') return pino(options, destination ?? pino.destination(2));
  const pretty = prettyStream({
    destination: destination ?? 2,
    sync: true,
    colorize: destination === undefined && process.stderr.isTTY === true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,name',
    singleLine: true,
  });
  return pino(options, pretty);
}
