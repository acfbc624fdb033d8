// What the upstream sent, read from its own access log instead of a counting proxy in front of
// it: a proxy hop would slow the cold paths of both systems and the reference's tag requests.
import { readFileSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

// gorilla/handlers combined format: `IP - - [date] "GET /v2/… HTTP/1.1" 200 536870912 "" "ua"`
const LINE = /"(GET|HEAD) (\S+) HTTP\/[\d.]+" (\d{3}) (\d+|-) "[^"]*" "([^"]*)"/;

/** Who asked, by User-Agent: the reference is Go's HTTP client, regmirror names itself. */
export const AGENTS = { reference: /^Go-http-client\//, regmirror: /^regmirror/ };

export class UpstreamLog {
  constructor(proc) {
    this.proc = proc;
    this.offset = 0;
  }

  /** Starts a window: later `take()` counts only what was logged after this. */
  mark() {
    this.offset = statSync(this.proc.logFile).size;
  }

  /**
   * Blob GETs and their body bytes since `mark()`, of requests whose User-Agent matches `agent`
   * (every request without one); HEADs send no body and are only counted.
   */
  take(agent) {
    const text = readFileSync(this.proc.logFile).subarray(this.offset).toString('utf8');
    const out = { blobGets: 0, blobBytes: 0, blobHeads: 0, manifestRequests: 0 };
    for (const line of text.split('\n')) {
      const m = LINE.exec(line);
      if (!m) continue;
      const [, method, path, , bytes, ua] = m;
      if (agent && !agent.test(ua)) continue;
      if (path.includes('/blobs/sha256:')) {
        if (method === 'GET') {
          out.blobGets += 1;
          out.blobBytes += bytes === '-' ? 0 : Number(bytes);
        } else out.blobHeads += 1;
      } else if (path.includes('/manifests/')) out.manifestRequests += 1;
    }
    return out;
  }

  /**
   * Waits (bounded) until the upstream wrote nothing for `quietMs`: a mirror may still be
   * fetching after its client got the last byte (the reference's second download of a cold blob).
   * /proc/PID/io wchar counts socket and sendfile writes as they happen, unlike the access log.
   */
  async settle({ quietMs = 600, maxMs = 60_000 } = {}) {
    const deadline = Date.now() + maxMs;
    let last = wchar(this.proc);
    let quietSince = Date.now();
    while (Date.now() < deadline) {
      await sleep(100);
      const now = wchar(this.proc);
      if (now !== last) {
        last = now;
        quietSince = Date.now();
      } else if (Date.now() - quietSince >= quietMs) return true;
    }
    return false;
  }
}

function wchar(proc) {
  const m = /^wchar: (\d+)/m.exec(readFileSync(`/proc/${proc.pid}/io`, 'utf8'));
  return m ? Number(m[1]) : 0;
}
