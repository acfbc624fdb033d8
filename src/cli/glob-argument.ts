import { RepositoryGlobError } from '../oci/index.js';
import { CliError } from './cli-error.js';

/** Reads a repository glob given on the command line: one outside the grammar is a one-line usage error (exit 2). */
export function globArgument<T>(option: string, read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof RepositoryGlobError) throw new CliError(`${option}: ${err.message}`, 2);
    throw err;
  }
}
