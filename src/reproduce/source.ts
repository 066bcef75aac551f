import { cp, lutimes, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { invalid, unverifiable } from '../errors.js'
import type { Run, RunResult } from '../exec.js'
import type { SourceRef } from '../protocol/ledger.js'

export interface FetchSourceDeps {
  run: Run
  /** Every exported file's and directory's mtime (PROTOCOL.md section 4). */
  sourceDateEpoch: number
}

const SCHEMES: Record<string, string> = { 'https:': 'https', 'ssh:': 'ssh', 'file:': 'file' }

/**
 * Fetches exactly `source.gitCommit` from `source.uri` and exports its tree into `dest`
 * (created; must be absent or empty) without `.git`, every mtime set to `sourceDateEpoch`.
 *
 * A shallow fetch of the commit comes first; a server that refuses unadvertised objects (the v0
 * protocol) gets a full fetch of its refs instead. Git runs with no system or global config, a
 * throwaway HOME, no prompts, and only the url's transport allowed, so neither the host nor the
 * ledger can change what it does (no `ext::`, no hooks, no credential helpers). Submodules are
 * not fetched and LFS pointers are not smudged: `/src` is the commit's own tree.
 *
 * Symbolic links in the tree are exported as they are (the build may need them); they resolve
 * inside the container, and host-side code must not follow them (checkDependencies does not).
 */
export async function fetchSource(
  source: SourceRef,
  dest: string,
  deps: FetchSourceDeps
): Promise<void> {
  const url = checkSourceUri(source.uri)
  const commit = source.gitCommit
  if (!/^([0-9a-f]{40}|[0-9a-f]{64})$/.test(commit)) {
    throw invalid(`predicate.source.digest.gitCommit: '${commit}' is not 40 or 64 lowercase hex`)
  }
  await mkdir(dest, { recursive: true })
  if ((await readdir(dest)).length > 0) throw new Error(`source destination ${dest} is not empty`)

  const scratch = await mkdtemp(path.join(os.tmpdir(), 'verify-model-git-'))
  try {
    const gitDir = path.join(scratch, 'repo.git')
    const git = gitRunner(deps.run, {
      home: scratch,
      gitDir,
      scheme: SCHEMES[new URL(url).protocol]
    })
    const format = commit.length === 64 ? 'sha256' : 'sha1'
    await git.ok('init', ['init', '--quiet', '--bare', `--object-format=${format}`])

    const fetchFrom = (options: string[], refspec: string) =>
      git.run(['fetch', '--quiet', '--no-tags', ...options, '--', url, refspec])
    const shallow = await fetchFrom(['--depth', '1'], commit)
    if (shallow.exitCode !== 0) {
      // A server on protocol v0 refuses a commit that is no ref's tip: take every ref instead.
      const full = await fetchFrom([], '+refs/*:refs/fetched/*')
      if (full.exitCode !== 0) {
        throw unverifiable(`predicate.source.uri: cannot fetch ${source.uri}: ${gitReason(full)}`)
      }
    }
    if ((await git.run(['cat-file', '-e', commit])).exitCode !== 0) {
      throw unverifiable(
        `predicate.source.digest.gitCommit: commit ${commit} not found at ${source.uri}`
      )
    }

    const checkout = ['checkout', '--quiet', '--detach', '--force', commit, '--']
    await git.ok('checkout', [`--work-tree=${dest}`, ...checkout])
    const head = await git.ok('rev-parse', ['rev-parse', 'HEAD'])
    if (head.stdout.trim() !== commit) {
      throw invalid(
        `predicate.source.digest.gitCommit: ledger ${commit} is not a commit id: it checks out as ${head.stdout.trim()}`
      )
    }
  } catch (error) {
    await rm(dest, { recursive: true, force: true })
    throw error
  } finally {
    await rm(scratch, { recursive: true, force: true })
  }
  await setTreeMtime(dest, deps.sourceDateEpoch)
}

/** The git url of a `git+https|ssh|file://` source uri; anything else is `invalid`. */
function checkSourceUri(uri: string): string {
  const fail = (reason: string) => invalid(`predicate.source.uri: '${uri}': ${reason}`)
  // eslint-disable-next-line no-control-regex
  if (/[\s\u0000-\u001f\u007f]/.test(uri)) throw fail('whitespace or control characters')
  if (!uri.startsWith('git+')) throw fail('must start with git+https://, git+ssh:// or git+file://')
  const url = uri.slice('git+'.length)
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw fail('not a URL')
  }
  if (SCHEMES[parsed.protocol] === undefined || !url.startsWith(`${parsed.protocol}//`)) {
    throw fail('only git+https://, git+ssh:// and git+file:// are allowed')
  }
  if (parsed.protocol !== 'file:' && parsed.hostname === '') throw fail('no host')
  // Leading '-' would reach ssh as an option (CVE-2017-1000117).
  if ([parsed.hostname, parsed.username].some(part => /^(-|%2d)/i.test(part))) {
    throw fail("host or user starts with '-'")
  }
  if (parsed.password !== '' || (parsed.protocol === 'https:' && parsed.username !== '')) {
    throw fail('credentials in the URL are not accepted')
  }
  return url
}

interface Git {
  run(args: string[]): Promise<RunResult>
  /** Runs and requires exit 0; a failure is an environment problem, so `unverifiable`. */
  ok(what: string, args: string[]): Promise<RunResult>
}

/** Git on one repository, isolated from the host's configuration and environment. */
function gitRunner(run: Run, where: { home: string; gitDir: string; scheme: string }): Git {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: where.home,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_TERMINAL_PROMPT: '0',
    LC_ALL: 'C'
  }
  // Reaching a private ssh remote or going through a proxy is the operator's business.
  for (const name of ['SSH_AUTH_SOCK', 'HTTPS_PROXY', 'https_proxy', 'NO_PROXY', 'no_proxy']) {
    const value = process.env[name]
    if (value !== undefined) env[name] = value
  }
  const config = [
    'protocol.allow=never',
    `protocol.${where.scheme}.allow=always`,
    'core.symlinks=true',
    'transfer.fsckObjects=true',
    // An https remote that stops sending is given up after a minute under 1 KB/s.
    'http.lowSpeedLimit=1000',
    'http.lowSpeedTime=60',
    'core.sshCommand=ssh -o BatchMode=yes -o ConnectTimeout=30'
  ].flatMap(setting => ['-c', setting])
  const runGit = (args: string[]) =>
    run('git', [...config, `--git-dir=${where.gitDir}`, ...args], { env })
  return {
    run: runGit,
    async ok(what, args) {
      const result = await runGit(args)
      if (result.exitCode !== 0) throw unverifiable(`git ${what} failed: ${gitReason(result)}`)
      return result
    }
  }
}

function gitReason(result: RunResult): string {
  const lines = `${result.stderr}\n${result.stdout}`
    .split('\n')
    .map(l => l.trim())
    .filter(Boolean)
  return (
    lines.find(l => /^(fatal|error):/.test(l)) ?? lines.at(-1) ?? `exit code ${result.exitCode}`
  )
}

/**
 * A fresh copy of an exported tree for one more build run (a segmented build runs N times, each
 * on an untouched `/src`): links copied as links, every mtime set to `sourceDateEpoch` again.
 */
export async function copySourceTree(from: string, to: string, epoch: number): Promise<void> {
  await cp(from, to, { recursive: true, verbatimSymlinks: true, errorOnExist: true, force: false })
  await setTreeMtime(to, epoch)
}

/** Sets the mtime of `root` and everything under it (of links themselves, never their targets). */
async function setTreeMtime(root: string, epoch: number): Promise<void> {
  for (const dirent of await readdir(root, { withFileTypes: true })) {
    const child = path.join(root, dirent.name)
    if (dirent.isDirectory()) await setTreeMtime(child, epoch)
    else await lutimes(child, epoch, epoch)
  }
  // Directories last: writing into a directory changes its mtime.
  await lutimes(root, epoch, epoch)
}
