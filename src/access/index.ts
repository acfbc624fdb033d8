export { allowAll, ANONYMOUS, type Access, type AccessController, type AccessRequest, type Action, type AuthMethod, type Grant, type Identity } from './access-controller.js';
export { AccessChallenge, AccessDenied } from './errors.js';
