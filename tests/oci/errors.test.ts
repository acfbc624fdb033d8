import t from 'tap';
import { OCI_ERROR_STATUS, OciError, ociErrorBody, type OciErrorCode } from '../../src/oci/index.js';

const statuses: [OciErrorCode, number][] = [
  ['BLOB_UNKNOWN', 404],
  ['DIGEST_INVALID', 400],
  ['MANIFEST_INVALID', 400],
  ['MANIFEST_UNKNOWN', 404],
  ['NAME_INVALID', 400],
  ['NAME_UNKNOWN', 404],
  ['SIZE_INVALID', 400],
  ['UNAUTHORIZED', 401],
  ['DENIED', 403],
  ['UNSUPPORTED', 405],
  ['TOOMANYREQUESTS', 429],
  ['UNKNOWN', 500],
  ['UNAVAILABLE', 503],
  ['RANGE_INVALID', 416],
  ['TAG_INVALID', 400],
  ['PAGINATION_NUMBER_INVALID', 400],
];

t.test('status table matches registry-protocol.md §1.10', async (t) => {
  t.equal(Object.keys(OCI_ERROR_STATUS).length, statuses.length);
  for (const [code, status] of statuses) {
    t.equal(OCI_ERROR_STATUS[code], status, code);
    t.equal(new OciError(code, 'm').status, status, `${code} default status`);
  }
  t.ok(Object.isFrozen(OCI_ERROR_STATUS));
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
