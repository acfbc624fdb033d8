export { PolicyGate, PolicyRefusal, type PolicyObserver, type PolicyOutcome } from './gate.js';
export { loadPublicKeys } from './keys.js';
