export { ownerOf } from './rendezvous.js';
export { Membership, type MemberState, type MembershipOptions, type Resolve } from './membership.js';
export { PeerClient } from './peer-client.js';
export { PeerRouting } from './peer-routing.js';
export { FORWARDED_HEADER, PEER_BLOB_PREFIX, PEER_MANIFEST_PREFIX, parsePeerPath, peerAuthorization, peerBlobPath, peerManifestPath, verifyPeerAuthorization } from './peer-auth.js';
export { PeerManifests } from './peer-manifests.js';
export type { ClusterObserver, FallbackReason, ManifestFetchOutcome } from './observer.js';
