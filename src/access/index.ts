export { allowAll, ANONYMOUS, ANONYMOUS_IDENTITY, type Access, type AccessController, type AccessRequest, type Action, type AuthMethod, type Grant, type Identity } from './access-controller.js';
export { AccessChallenge, AccessDenied } from './errors.js';
export { challengeFor, scopeOf, tokenRealm, TOKEN_PATH, TOKEN_SERVICE, type BearerError, type ChallengeOptions, type ChallengeRequest } from './challenge.js';
export { ReadPolicy, compareSpecificity, specificity, type ReadPolicyOptions, type Specificity } from './read-policy.js';
