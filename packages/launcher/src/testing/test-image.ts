// A small local OCI image for tests, benchmarks and docs, built without any registry: a deterministic tar of a
// rootfs holding a static busybox (Debian package busybox-static) and a few applets, fed to `podman import`.
// It is tagged by the hash of its tar, so each machine builds it once and a changed layout gets a new tag.
// Not for production: nothing here is used by the runtime itself.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RuntimeError } from '../errors.js';
import type { PodmanCli } from '../podman/cli.js';

/** Where busybox-static puts busybox (/usr/bin on merged-/usr systems, /bin otherwise). */
export const DEFAULT_BUSYBOX_PATH =
  ['/usr/bin/busybox', '/bin/busybox'].find((p) => existsSync(p)) ?? '/usr/bin/busybox';
/**
 * The podman settings tests and benchmarks use unless EE_TEST_CONTAINER_* overrides them: `--runtime runc`
 * (crun refuses the hybrid cgroup layout of some hosts) and explicit rlimits (podman's defaults are refused on
 * some hosts). They are launcher settings (EE_CONTAINER_GLOBAL_ARGS / EE_CONTAINER_RUN_ARGS), not built in.
 */
export const TEST_PODMAN_ENV = {
  EE_CONTAINER_RUNTIME: process.env.EE_TEST_CONTAINER_RUNTIME ?? 'podman',
  EE_CONTAINER_GLOBAL_ARGS: process.env.EE_TEST_CONTAINER_GLOBAL_ARGS ?? '--runtime runc',
  EE_CONTAINER_RUN_ARGS: process.env.EE_TEST_CONTAINER_RUN_ARGS ?? '--ulimit nofile=1024:1024 --ulimit nproc=1000:1000',
};
export const TEST_IMAGE_REPO = 'localhost/easyenclave-test';
/** Applets linked in /usr/bin (busybox has more; these are what tests and docs use). */
export const TEST_IMAGE_APPLETS = [
  'sh', 'cat', 'echo', 'printf', 'sleep', 'true', 'false', 'env', 'id', 'ls', 'mkdir', 'rm', 'touch', 'head',
  'tail', 'ln', 'dd', 'wc', 'grep', 'sed', 'tr', 'cut', 'seq', 'kill', 'ps', 'date', 'adjtimex', 'sha256sum', 'nc',
  'httpd', 'ip', 'hostname', 'uname', 'stat', 'timeout', 'yes',
] as const; // prettier-ignore
/** The page busybox httpd serves from /www (deployment tests). */
export const TEST_IMAGE_INDEX_HTML = 'easyenclave test image\n';
/** A lock left by a crashed build is taken over after this long. */
const BUILD_LOCK_STALE_MS = 120_000;
const BUILD_LOCK_POLL_MS = 100;

interface Entry {
  name: string;
  type: 'dir' | 'file' | 'symlink';
  mode: number;
  data?: Buffer;
  target?: string;
}

/** One ustar header block. Owner root, mtime 0: the same input always gives the same bytes. */
function header(e: Entry, size: number): Buffer {
  const h = Buffer.alloc(512);
  const put = (off: number, len: number, s: string) => h.write(s, off, len, 'utf8');
  const octal = (off: number, len: number, n: number) => put(off, len, n.toString(8).padStart(len - 1, '0') + '\0');
  if (Buffer.byteLength(e.name) > 100) throw new Error(`tar name too long: ${e.name}`);
  put(0, 100, e.name);
  octal(100, 8, e.mode);
  octal(108, 8, 0);
  octal(116, 8, 0);
  octal(124, 12, size);
  octal(136, 12, 0);
  put(148, 8, '        ');
  put(156, 1, e.type === 'dir' ? '5' : e.type === 'symlink' ? '2' : '0');
  if (e.target) put(157, 100, e.target);
  put(257, 6, 'ustar\0');
  put(263, 2, '00');
  put(265, 32, 'root');
  put(297, 32, 'root');
  let sum = 0;
  for (const b of h) sum += b;
  put(148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
  return h;
}

export function tarOf(entries: Entry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.data ?? Buffer.alloc(0);
    parts.push(header(e, data.length), data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** True when the ELF file has no program interpreter (statically linked). */
function isStaticElf(bin: Buffer): boolean {
  if (bin.length < 64 || bin.readUInt32BE(0) !== 0x7f454c46 || bin[4] !== 2) return false; // 64-bit ELF only
  const phoff = Number(bin.readBigUInt64LE(32));
  const phentsize = bin.readUInt16LE(54);
  const phnum = bin.readUInt16LE(56);
  for (let i = 0; i < phnum; i++) if (bin.readUInt32LE(phoff + i * phentsize) === 3 /* PT_INTERP */) return false;
  return true;
}

export function testRootfsTar(busybox_path = DEFAULT_BUSYBOX_PATH): Buffer {
  let bin: Buffer;
  try {
    bin = readFileSync(busybox_path);
  } catch {
    throw new RuntimeError('image_not_found', `${busybox_path} is missing (apt-get install busybox-static)`);
  }
  if (!isStaticElf(bin))
    throw new RuntimeError('image_not_found', `${busybox_path} is not a static 64-bit ELF (install busybox-static)`);
  const dir = (name: string, mode = 0o755): Entry => ({ name, type: 'dir', mode });
  const file = (name: string, data: string | Buffer, mode = 0o644): Entry => ({
    name,
    type: 'file',
    mode,
    data: Buffer.from(data),
  });
  return tarOf([
    dir('usr/'),
    dir('usr/bin/'),
    file('usr/bin/busybox', bin, 0o755),
    ...TEST_IMAGE_APPLETS.map((a): Entry => ({
      name: `usr/bin/${a}`,
      type: 'symlink',
      mode: 0o777,
      target: 'busybox',
    })),
    { name: 'bin', type: 'symlink', mode: 0o777, target: 'usr/bin' },
    dir('etc/'),
    file('etc/passwd', 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n'),
    file('etc/group', 'root:x:0:\nnogroup:x:65534:\n'),
    dir('tmp/', 0o1777),
    dir('www/'),
    file('www/index.html', TEST_IMAGE_INDEX_HTML),
  ]);
}

/** The test image's name (`localhost/easyenclave-test:<16 hex of its tar's sha256>`), imported if missing. */
export async function ensureTestImage(cli: PodmanCli, busybox_path = DEFAULT_BUSYBOX_PATH): Promise<string> {
  const tar = testRootfsTar(busybox_path);
  const name = `${TEST_IMAGE_REPO}:${createHash('sha256').update(tar).digest('hex').slice(0, 16)}`;
  const exists = async () => (await cli.call(['image', 'exists', '--', name])).code === 0;
  if (await exists()) return name;
  // Several test processes may start at once: one imports, the others wait for the tag.
  const lock = join(tmpdir(), `${name.replace(/[/:]/g, '_')}.lock`);
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (await exists()) return name;
      try {
        if (Date.now() - statSync(lock).mtimeMs > BUILD_LOCK_STALE_MS) rmSync(lock, { recursive: true, force: true });
      } catch {
        // the holder just released it
      }
      await new Promise((r) => setTimeout(r, BUILD_LOCK_POLL_MS));
    }
  }
  try {
    if (!(await exists())) await cli.ok(['import', '--message=easyenclave test image', '-', name], { stdin: tar });
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
  return name;
}
