// The supernode's one HTTP error boundary (both listeners): every error a route or hook throws,
// fastify's own (schema validation, body too large, bad JSON) included, leaves as an OCI error body
// (src/oci/error-body.ts, the shape the peer's mirror uses) with a status from the PollenError's
// code, else its kind. Unexpected errors are logged and answer 500 without their message.
import type { FastifyError, FastifyInstance } from 'fastify';
import { PollenError, toPollenError, type ErrorKind } from '../../src/errors.ts';
import { httpStatusOf, ociErrorBody, type OciErrorBody } from '../../src/oci/error-body.ts';

const BY_KIND: Record<ErrorKind, [status: number, ociCode: string]> = {
  not_found: [404, 'NOT_FOUND'],
  invalid: [400, 'UNSUPPORTED'],
  unavailable: [502, 'UNAVAILABLE'],
  integrity: [502, 'UNAVAILABLE'],
  unauthorized: [401, 'UNAUTHORIZED'],
  denied: [403, 'DENIED'],
  aborted: [503, 'UNAVAILABLE'],
  too_large: [413, 'SIZE_INVALID'],
  internal: [500, 'UNKNOWN'],
};

/** The status and body of an error: the code's own mapping where the OCI table has one, else by kind. */
export function errorAnswer(err: PollenError, status?: number): { status: number; body: OciErrorBody } {
  const mapped = httpStatusOf(err);
  const [kindStatus, kindCode] = BY_KIND[err.kind];
  const body = ociErrorBody(err);
  if (body.errors[0] && body.errors[0].code === 'UNKNOWN') body.errors[0].code = kindCode;
  return { status: status ?? (mapped !== 500 ? mapped : kindStatus), body };
}

/** A thrown value as the PollenError the client sees, with fastify's 4xx statuses kept. */
export function classify(err: unknown): { error: PollenError; status?: number } {
  if (err instanceof PollenError) return { error: err };
  const fe = err as Partial<FastifyError>;
  if (fe.validation) return { error: new PollenError('ERR_INVALID_REQUEST', `invalid request: ${String(fe.message).slice(0, 300)}`) };
  const status = typeof fe.statusCode === 'number' ? fe.statusCode : 500;
  if (status === 413) return { error: new PollenError('ERR_MESSAGE_TOO_LARGE', 'request body too large') };
  if (status >= 400 && status < 500) return { error: new PollenError('ERR_INVALID_REQUEST', String(fe.message ?? 'bad request').slice(0, 300)), status };
  const e = toPollenError(err);
  return { error: e.kind === 'internal' ? new PollenError('ERR_INTERNAL', 'internal error (logged by the supernode)') : e };
}

/** The whole seconds a refusal says to wait (its `retryAfter`), 1 when it says none. */
function retryAfterOf(error: PollenError): number {
  const s = error.detail.retryAfter;
  return typeof s === 'number' && Number.isSafeInteger(s) && s >= 1 ? s : 1;
}

export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err, request, reply) => {
    const { error, status } = classify(err);
    const answer = errorAnswer(error, status);
    if (answer.status >= 500) request.log.error({ err, method: request.method, url: request.url.slice(0, 200) }, 'supernode request failed');
    else request.log.debug({ code: error.code, method: request.method, url: request.url.slice(0, 200) }, 'supernode request refused');
    if (answer.status === 429) reply.header('retry-after', String(retryAfterOf(error)));
    return reply.code(answer.status).type('application/json').send(answer.body);
  });
  app.setNotFoundHandler((request, reply) => {
    const { status, body } = errorAnswer(new PollenError('ERR_NOT_FOUND', `no route for ${request.method} ${request.url.slice(0, 200)}`));
    return reply.code(status).send(body);
  });
}
