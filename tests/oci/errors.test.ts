import t from 'tap';
import { OCI_ERROR_STATUS, OciError, ociErrorBody, type OciErrorCode } from '../../src/oci/index.js';

const codes = Object.keys(OCI_ERROR_STATUS) as OciErrorCode[];

// Each rule below states why a code has its status (registry-protocol.md §1.10 and the RFCs the
// protocol leans on), so a new or edited code that breaks the rule fails here.
t.test('"unknown" codes are 404: the thing asked for does not exist', async (t) => {
  // distribution-spec "Pulling manifests" / "Pulling blobs": a missing manifest or blob MUST be 404
  // with MANIFEST_UNKNOWN / BLOB_UNKNOWN; NAME_UNKNOWN is the same answer for a whole repository.
  const unknown = codes.filter((c) => c.endsWith('_UNKNOWN'));
  t.same(unknown.sort(), ['BLOB_UNKNOWN', 'MANIFEST_UNKNOWN', 'NAME_UNKNOWN']);
  for (const code of unknown) t.equal(OCI_ERROR_STATUS[code], 404, code);
});

t.test('"invalid" codes are 400, except an unsatisfiable range, which is 416', async (t) => {
  // A malformed name, digest, manifest, tag or page size is the client's request at fault (RFC 9110
  // §15.5.1). A Range outside the blob has its own status (RFC 9110 §15.5.17), which clients use to
  // restart a download from 0.
  for (const code of codes.filter((c) => c.endsWith('_INVALID') && c !== 'RANGE_INVALID')) t.equal(OCI_ERROR_STATUS[code], 400, code);
  t.equal(OCI_ERROR_STATUS.RANGE_INVALID, 416);
});

t.test('auth, method and rate-limit codes use the HTTP status clients act on', async (t) => {
  t.equal(OCI_ERROR_STATUS.UNAUTHORIZED, 401, 'RFC 9110 §15.5.2: the status that makes clients run the token flow');
  t.equal(OCI_ERROR_STATUS.DENIED, 403, 'RFC 9110 §15.5.4: authenticated, still not allowed');
  t.equal(OCI_ERROR_STATUS.UNSUPPORTED, 405, 'distribution-spec: an operation the registry does not offer is 405');
  t.equal(OCI_ERROR_STATUS.TOOMANYREQUESTS, 429, 'RFC 6585 §4: clients back off on 429');
});

t.test('only UNKNOWN and UNAVAILABLE are server faults', async (t) => {
  // Clients retry 5xx (dockerd, containerd): a client error answered as 5xx would be retried in vain,
  // and a server fault answered as 4xx would not be retried at all.
  t.same(codes.filter((c) => OCI_ERROR_STATUS[c] >= 500).sort(), ['UNAVAILABLE', 'UNKNOWN']);
  t.equal(OCI_ERROR_STATUS.UNKNOWN, 500);
  t.equal(OCI_ERROR_STATUS.UNAVAILABLE, 503, 'RFC 9110 §15.6.4: temporary, may carry Retry-After');
  t.ok(Object.isFrozen(OCI_ERROR_STATUS));
});

t.test('an OciError without a status override answers its code\'s status', async (t) => {
  for (const code of codes) t.equal(new OciError(code, 'm').status, OCI_ERROR_STATUS[code], code);
});

t.test('OciError carries code, status override, detail, headers and cause', async (t) => {
  const cause = new Error('root');
  const headers = { allow: 'GET, HEAD' };
  const err = new OciError('UNSUPPORTED', 'nope', { status: 404, detail: { a: 1 }, headers, cause });
  t.ok(err instanceof Error);
  t.equal(err.name, 'OciError');
  t.equal(err.message, 'nope');
  t.equal(err.code, 'UNSUPPORTED');
  t.equal(err.status, 404);
  t.same(err.detail, { a: 1 });
  t.same(err.headers, { allow: 'GET, HEAD' });
  t.equal(err.cause, cause);
  headers.allow = 'changed';
  t.equal(err.headers['allow'], 'GET, HEAD', 'headers are copied');
  t.ok(Object.isFrozen(err.headers));

  const plain = new OciError('BLOB_UNKNOWN', 'gone');
  t.same(plain.headers, {});
  t.equal(plain.detail, undefined);
  t.notOk('cause' in plain, 'no cause property when none given');
});

t.test('ociErrorBody', async (t) => {
  t.equal(ociErrorBody('MANIFEST_UNKNOWN', 'manifest unknown'), '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}');
  t.equal(
    ociErrorBody('UNKNOWN', 'boom', { requestId: 'r1' }),
    '{"errors":[{"code":"UNKNOWN","message":"boom","detail":{"requestId":"r1"}}]}',
  );
  t.same(JSON.parse(ociErrorBody('DENIED', 'x "quoted"\n', null)), { errors: [{ code: 'DENIED', message: 'x "quoted"\n', detail: null }] });
});
