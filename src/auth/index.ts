export { InvalidCredentials, type BearerVerifier, type PasswordVerifier, type VerifiedToken } from './types.js';
