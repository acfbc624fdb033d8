export { InvalidCredentials, type BearerVerifier, type PasswordVerifier, type VerifiedToken } from './types.js';
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
