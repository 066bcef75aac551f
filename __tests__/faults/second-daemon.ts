import { execFile, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'

const execFileAsync = promisify(execFile)

/**
 * A Docker daemon of its own for a test that stops it: its own socket, data root, exec root,
 * pidfile and containerd namespace, no bridge and no iptables changes, so the shared daemon
 * other tests use is never touched.
 */
export interface SecondDaemon {
  /** For DOCKER_HOST. */
  host: string
  dir: string
  pid: number
  /** `docker <args>` against this daemon. */
  docker(...args: string[]): Promise<string>
  /** Stops the daemon as `systemctl stop docker` would (SIGTERM), waiting until it is gone. */
  stop(): Promise<void>
  /** Stops it if needed, then removes its directory; kills only what this daemon started. */
  remove(): Promise<void>
  /** Live processes of this daemon (dockerd, containerd, shims), by pid. */
  leftovers(): number[]
}

export async function startSecondDaemon(): Promise<SecondDaemon> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vm-dockerd-'))
  const host = `unix://${dir}/docker.sock`
  const log = openSync(path.join(dir, 'dockerd.log'), 'a')
  const child = spawn(
    'dockerd',
    [
      `--host=${host}`,
      `--data-root=${dir}/data`,
      `--exec-root=${dir}/exec`,
      `--pidfile=${dir}/docker.pid`,
      '--bridge=none',
      '--iptables=false',
      '--ip-masq=false',
      '--containerd-namespace=verify-model-faults',
      '--containerd-plugins-namespace=verify-model-faults-plugins',
      '--shutdown-timeout=5'
    ],
    { detached: true, stdio: ['ignore', log, log] }
  )
  child.unref()
  const pid = child.pid!
  const docker = async (...args: string[]) =>
    (await execFileAsync('docker', ['--host', host, ...args], { encoding: 'utf8' })).stdout

  const deadline = Date.now() + 30_000
  for (;;) {
    try {
      await docker('version', '--format', '{{.Server.Version}}')
      break
    } catch (error) {
      if (!alive(pid) || Date.now() > deadline) {
        const tail = readFileSync(path.join(dir, 'dockerd.log'), 'utf8').split('\n').slice(-20)
        await removeDir(dir, pid)
        throw new Error(`the second dockerd did not come up: ${error}\n${tail.join('\n')}`)
      }
      await sleep(250)
    }
  }

  const stop = async () => {
    if (!alive(pid)) return
    process.kill(pid, 'SIGTERM')
    await waitForExit(pid, 30_000)
  }
  return {
    host,
    dir,
    pid,
    docker,
    stop,
    remove: async () => {
      await stop().catch(() => undefined)
      await removeDir(dir, pid)
    },
    leftovers: () => [pid, ...processesMentioning(dir)].filter(alive)
  }
}

/**
 * Ends whatever of this daemon is still alive (dockerd, its containerd and their shims, found by
 * this daemon's own directory on their command lines), unmounts what it left, removes the dir.
 */
async function removeDir(dir: string, pid: number): Promise<void> {
  for (const leftover of [pid, ...processesMentioning(dir)]) {
    if (alive(leftover)) {
      process.kill(leftover, 'SIGKILL')
      await waitForExit(leftover, 10_000).catch(() => undefined)
    }
  }
  const mounts = readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map(line => line.split(' ')[1])
    .filter(point => point?.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length)
  for (const point of mounts)
    await execFileAsync('umount', ['--lazy', point]).catch(() => undefined)
  if (existsSync(dir)) rmSync(dir, { recursive: true, force: true })
}

function processesMentioning(dir: string): number[] {
  return readdirSync('/proc')
    .filter(entry => /^\d+$/.test(entry))
    .filter(entry => {
      try {
        return readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(dir)
      } catch {
        return false
      }
    })
    .map(Number)
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    // A zombie still answers signal 0: it is gone for our purposes.
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ')
  } catch {
    return false
  }
}

async function waitForExit(pid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (alive(pid)) {
    if (Date.now() > deadline) throw new Error(`process ${pid} did not exit in ${timeoutMs} ms`)
    await sleep(100)
  }
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))
