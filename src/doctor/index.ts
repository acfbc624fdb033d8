export { currentUser, runDoctor, type CheckLine, type DoctorDeps } from './doctor.js';
