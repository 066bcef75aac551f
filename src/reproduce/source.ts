import { cp, lutimes, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { invalid, unverifiable } from '../errors.js'
import type { Run, RunResult } from '../exec.js'
import type { SourceRef } from '../protocol/ledger.js'

export interface FetchSourceDeps {
  run: Run
  /** Every exported file's and directory's mtime (docs/protocol.md section 4). */
  sourceDateEpoch: number
}

const SCHEMES: Record<string, string> = { 'https:': 'https', 'ssh:': 'ssh', 'file:': 'file' }

/** Unsets, for every path, each attribute that changes a blob on its way to the work tree. */
const RAW_CHECKOUT_ATTRIBUTES = '* -text -eol -crlf -filter -ident -working-tree-encoding\n'

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
  // The ledger validated the uri and the commit (docs/protocol.md section 2): git gets them as
  // they are.
  const url = source.uri.slice('git+'.length)
  const commit = source.gitCommit
  await mkdir(dest, { recursive: true })
  if ((await readdir(dest)).length > 0) throw new Error(`source destination ${dest} is not empty`)

  // Beside dest, in the caller's directory rather than os.tmpdir(): what removes that directory
  // (a cancelled run's cleanup too) removes the fetched repository with it.
  const scratch = await mkdtemp(`${dest}-git-`)
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
        throw unverifiable(
          `predicate.source.uri: cannot fetch ${source.uri}: ${gitReason(full)}`,
          undefined,
          { code: 'SOURCE_FETCH' }
        )
      }
    }
    if ((await git.run(['cat-file', '-e', commit])).exitCode !== 0) {
      throw unverifiable(
        `predicate.source.digest.gitCommit: commit ${commit} not found at ${source.uri}`,
        undefined,
        { code: 'SOURCE_COMMIT' }
      )
    }

    // The commit's bytes, as `ledger init` hashed them: no .gitattributes of the tree may convert
    // line endings, run a filter or expand an ident on checkout ($GIT_DIR/info/attributes wins).
    await mkdir(path.join(gitDir, 'info'), { recursive: true })
    await writeFile(path.join(gitDir, 'info/attributes'), RAW_CHECKOUT_ATTRIBUTES)
    const checkout = ['checkout', '--quiet', '--detach', '--force', commit, '--']
    await git.ok('checkout', [`--work-tree=${dest}`, ...checkout])
    const head = await git.ok('rev-parse', ['rev-parse', 'HEAD'])
    if (head.stdout.trim() !== commit) {
      throw invalid(
        `predicate.source.digest.gitCommit: ledger ${commit} is not a commit id: it checks out as ${head.stdout.trim()}`,
        undefined,
        { code: 'SOURCE_COMMIT' }
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
      if (result.exitCode !== 0)
        throw unverifiable(`git ${what} failed: ${gitReason(result)}`, undefined, {
          code: 'SOURCE_FETCH'
        })
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
