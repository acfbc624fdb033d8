export { InvalidCredentials, type BearerVerifier, type PasswordVerifier, type VerifiedToken } from './types.js';
export { generatedKeyFile, loadSigningKey, SigningKeyError, type SigningAlgorithm, type SigningKey, type SigningKeyLocation } from './signing-key.js';
export { CLOCK_SKEW_S, DEFAULT_REFRESH_TTL_MS, TOKEN_ISSUER, TokenService, type IssuedToken, type TokenServiceOptions } from './token-service.js';
export { OPS_CHALLENGE, PolicyAccessController, type PolicyAccessControllerOptions } from './policy-access-controller.js';
export { bearerChallenge, type ChallengeBuilder } from './registry-challenge.js';
export { accessControllerFor, NO_PASSWORDS, securityWarnings, type CredentialSources } from './access-from-config.js';
export { Credentials, type CredentialsOptions } from './credentials.js';
export { HtpasswdUsers, type HtpasswdUsersOptions } from './htpasswd-users.js';
export { HtpasswdError, parseHtpasswd, type HtpasswdEntries } from './htpasswd.js';
export { watchFile, type FileWatch, type FileWatchOptions } from './file-watch.js';
export {
  RobotTokenError,
  RobotTokens,
  ROBOT_SECRET_PREFIX,
  type CreatedRobotToken,
  type CreateRobotToken,
  type RobotTokenInfo,
  type RobotTokensOptions,
} from './robot-tokens.js';
export { robotTokenFile, TokenFileError } from './robot-token-file.js';
export { FailureThrottle, throttleKey, type FailureThrottleOptions } from './throttle.js';
