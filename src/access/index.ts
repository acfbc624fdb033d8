export { allowAll, ANONYMOUS, type Access, type AccessController, type AccessRequest, type Action, type Grant } from './access-controller.js';
export { AccessChallenge, AccessDenied } from './errors.js';
