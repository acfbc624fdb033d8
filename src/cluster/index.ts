export { ownerOf } from './rendezvous.js';
export { Membership, type MemberState, type MembershipOptions, type Resolve } from './membership.js';
export { PeerClient } from './peer-client.js';
export { PeerRouting } from './peer-routing.js';
export { FORWARDED_HEADER, PEER_BLOB_PREFIX, parsePeerBlobPath, peerAuthorization, peerBlobPath, verifyPeerAuthorization } from './peer-auth.js';
export type { ClusterObserver, FallbackReason } from './observer.js';
