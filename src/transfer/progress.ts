/** Live progress of an export or import, for the CLI's bars; every call is a cheap notification. */
export interface TransferProgress {
  imageStarted(image: string, blobs: number, bytes: number): void;
  blobDone(image: string, bytes: number): void;
  imageFinished(image: string, ok: boolean): void;
}
