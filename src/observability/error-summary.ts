/** A log-safe view of an error: type and message, no stack or attached objects (which may hold secrets). */
export function errorSummary(err: unknown): { type: string; message: string } {
  return err instanceof Error ? { type: err.name, message: err.message } : { type: typeof err, message: String(err) };
}

/**
 * The system error code (ENOSPC, ECONNREFUSED, …) of an error, of its `cause` chain or of an
 * AggregateError's members (a connect tries each address), bounded in depth.
 */
export function errorCode(err: unknown, depth = 0): string | undefined {
  if (typeof err !== 'object' || err === null || depth > 8) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  if (err instanceof AggregateError) {
    for (const inner of err.errors) {
      const c = errorCode(inner, depth + 1);
      if (c !== undefined) return c;
    }
  }
  const cause = (err as { cause?: unknown }).cause;
  return errorCode(cause, depth + 1);
}
