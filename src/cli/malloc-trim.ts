/**
 * glibc's `malloc_trim(0)`, or undefined where it cannot be called (not Linux, not glibc, koffi's
 * prebuilt binary absent for the platform). glibc gives freed memory back to the system only from
 * the top of its main heap; malloc_trim also returns the free pages below live allocations. After 64
 * cold pulls an idle mirror held 13-20 MiB of such pages, all free, 15-25% of its idle RSS
 * (BENCHMARKS.md, "Memory: idle return"). Node cannot call it by itself; koffi, a maintained FFI
 * library that ships its binaries prebuilt (no compiler at install), binds this one libc function.
 */
export async function loadMallocTrim(): Promise<(() => boolean) | undefined> {
  if (process.platform !== 'linux') return undefined;
  try {
    const { load } = await import('koffi');
    const trim = load('libc.so.6').func('int malloc_trim(size_t pad)');
    // 1 when memory was given back, 0 when there was none to give.
    return () => trim(0) === 1;
  } catch {
    return undefined;
  }
}
