export { InvalidCredentials, type BearerVerifier, type PasswordVerifier, type VerifiedToken } from './types.js';
export { OPS_CHALLENGE, PolicyAccessController, type PolicyAccessControllerOptions } from './policy-access-controller.js';
export { bearerChallenge, SERVICE, type ChallengeBuilder, type ChallengeError } from './registry-challenge.js';
export { accessControllerFor, securityWarnings, type CredentialSources } from './access-from-config.js';
