import { readFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { messageOf, unverifiable } from '../errors.js'
import type { Run } from '../exec.js'
import { clip } from '../text/sanitize.js'
import { lastLine } from './docker.js'

// The pull goes to the daemon's API, not through `docker pull`, so the credentials the docker
// CLI would send (after `docker login` or docker/login-action) are looked up the way it does:
// credHelpers, then credsStore, then `auths` in $DOCKER_CONFIG/config.json. They go only to
// the daemon, in the X-Registry-Auth header, as the CLI sends them.

/** Docker Hub's credentials are filed under its v1 index address. */
const DOCKER_HUB = 'https://index.docker.io/v1/'

export interface RegistryAuthEnv {
  run: Run
  env?: NodeJS.ProcessEnv
  readText?: (file: string) => Promise<string>
}

/** The registry host of a repository (`ghcr.io/acme/x` → `ghcr.io`; Docker Hub → its index). */
export function registryOf(repository: string): string {
  const host = repository.split('/')[0]
  return host === 'docker.io' || host === 'index.docker.io' ? DOCKER_HUB : host
}

/**
 * The X-Registry-Auth header value for `registry`, or undefined for an anonymous pull (no
 * config file, no entry, or a helper that has none). Unreadable configuration is `unverifiable`
 * naming the file or helper: pulling anonymously instead would hide the cause of a denial.
 */
export async function registryAuthHeader(
  registry: string,
  { run, env = process.env, readText = file => readFile(file, 'utf8') }: RegistryAuthEnv
): Promise<string | undefined> {
  const home = env.HOME || os.homedir()
  const file = path.join(env.DOCKER_CONFIG || path.join(home, '.docker'), 'config.json')
  let text: string
  try {
    text = await readText(file)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw credentialsError(`cannot read ${file}: ${messageOf(error)}`)
  }
  const config = parseConfig(text, file)
  const helper = config.credHelpers?.[hostOf(registry)] ?? config.credsStore
  const auth = helper ? await fromHelper(run, helper, registry) : fromFile(config, registry, file)
  // The daemon decodes base64url with its padding (Go's URLEncoding), and pulls anonymously when
  // that fails.
  return (
    auth &&
    Buffer.from(JSON.stringify(auth)).toString('base64').replace(/\+/g, '-').replace(/\//g, '_')
  )
}

interface DockerConfig {
  auths?: Record<string, { auth?: string; identitytoken?: string }>
  credHelpers?: Record<string, string>
  credsStore?: string
}

/** What the daemon accepts in X-Registry-Auth. */
interface AuthConfig {
  username?: string
  password?: string
  identitytoken?: string
  serveraddress: string
}

function parseConfig(text: string, file: string): DockerConfig {
  let config: unknown
  try {
    config = JSON.parse(text)
  } catch (error) {
    throw credentialsError(`${file} is not JSON: ${messageOf(error)}`)
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config))
    throw credentialsError(`${file} is not a JSON object`)
  return config as DockerConfig
}

/** `https://ghcr.io/v2/` and `ghcr.io` name one registry, as the docker CLI compares them. */
function hostOf(address: string): string {
  return address === DOCKER_HUB ? address : address.replace(/^https?:\/\//, '').split('/')[0]
}

function fromFile(config: DockerConfig, registry: string, file: string): AuthConfig | undefined {
  const entry = Object.entries(config.auths ?? {}).find(
    ([address]) => address === registry || hostOf(address) === hostOf(registry)
  )?.[1]
  if (entry === undefined) return undefined
  if (entry.identitytoken) return { identitytoken: entry.identitytoken, serveraddress: registry }
  if (!entry.auth) return undefined
  const pair = Buffer.from(entry.auth, 'base64').toString('utf8')
  const colon = pair.indexOf(':')
  if (colon < 0)
    throw credentialsError(
      `the auth of ${clip(registry)} in ${file} is not base64 of user:password`
    )
  return {
    username: pair.slice(0, colon),
    password: pair.slice(colon + 1),
    serveraddress: registry
  }
}

async function fromHelper(
  run: Run,
  helper: string,
  registry: string
): Promise<AuthConfig | undefined> {
  if (!/^[A-Za-z0-9._-]+$/.test(helper))
    throw credentialsError(
      `the credential helper name '${clip(helper)}' is not a plain program name`
    )
  const program = `docker-credential-${helper}`
  let result
  try {
    result = await run(program, ['get'], { input: Buffer.from(`${registry}\n`) })
  } catch (error) {
    throw credentialsError(`the credential helper ${program} cannot be run: ${messageOf(error)}`)
  }
  if (result.exitCode !== 0) {
    if (/credentials not found/i.test(result.stdout + result.stderr)) return undefined
    throw credentialsError(
      `${program} get ${registry} exited with ${result.exitCode}: ${clip(lastLine(result.stderr || result.stdout))}`
    )
  }
  let answer: { Username?: unknown; Secret?: unknown }
  try {
    answer = JSON.parse(result.stdout)
  } catch {
    throw credentialsError(`${program} get ${registry} did not print JSON`)
  }
  if (typeof answer.Username !== 'string' || typeof answer.Secret !== 'string')
    throw credentialsError(`${program} get ${registry} printed no Username and Secret`)
  return answer.Username === '<token>'
    ? { identitytoken: answer.Secret, serveraddress: registry }
    : { username: answer.Username, password: answer.Secret, serveraddress: registry }
}

function credentialsError(reason: string) {
  return unverifiable(
    `environment: registry credentials: ${reason}. Fix the Docker configuration (docker login) or remove the entry for an anonymous pull`,
    undefined,
    { code: 'IMAGE_PULL' }
  )
}
