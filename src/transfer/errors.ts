/**
 * The input is not something regmirror can import or export (a missing `oci-layout`, bytes that do
 * not match their digest, a truncated tar, a dangling reference, an unknown media type, a bad
 * reference): the CLI prints the message on one line and exits 2, and nothing was changed.
 */
export class LayoutError extends Error {
  override readonly name = 'LayoutError';
}

/** A transfer that could not finish for a reason outside its input (storage full, upstream down): exit 1. */
export class TransferError extends Error {
  override readonly name = 'TransferError';
}
