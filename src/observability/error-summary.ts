/** A log-safe view of an error: type and message, no stack or attached objects (which may hold secrets). */
export function errorSummary(err: unknown): { type: string; message: string } {
  return err instanceof Error ? { type: err.name, message: err.message } : { type: typeof err, message: String(err) };
}
