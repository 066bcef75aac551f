import path from 'node:path'
import { invalid, messageOf, unverifiable } from '../errors.js'
import type { Run } from '../exec.js'
import { clip } from '../text/sanitize.js'

const START_DOCKER = 'start it (scripts/services.sh up) or run on a machine with Docker'

/** Checks that the Docker daemon answers; else `unverifiable` saying why and what to do. */
export async function preflight(run: Run): Promise<void> {
  let result
  try {
    result = await run('docker', ['version', '--format', '{{.Server.Version}}'])
  } catch (error) {
    throw unverifiable(
      `docker is not installed or not on PATH (${messageOf(error)}): install Docker, or ${START_DOCKER}`,
      undefined,
      { code: 'DOCKER_UNAVAILABLE' }
    )
  }
  if (result.exitCode === 0) return
  const reason = lastLine(result.stderr) || `docker version exited with ${result.exitCode}`
  if (/permission denied/i.test(reason) && /docker\.sock/.test(reason))
    throw unverifiable(
      `permission denied on the Docker socket /var/run/docker.sock (${reason}): add the user to the docker group or run with sudo`,
      undefined,
      { code: 'DOCKER_UNAVAILABLE' }
    )
  throw unverifiable(`the Docker daemon does not answer (${reason}): ${START_DOCKER}`, undefined, {
    code: 'DOCKER_UNAVAILABLE'
  })
}

/** The last non-empty line: where docker and registries put the reason. */
export function lastLine(text: string): string {
  return text.trim().split('\n').at(-1)?.trim() ?? ''
}

/**
 * The VOLUMEs the image declares (`Config.Volumes`): docker would give each a disk-backed,
 * uncapped anonymous volume, so the contract mounts a capped tmpfs over each instead.
 */
export async function declaredVolumes(run: Run, reference: string): Promise<string[]> {
  const result = await run('docker', [
    'image',
    'inspect',
    '--format',
    '{{json .Config.Volumes}}',
    reference
  ])
  if (result.exitCode !== 0)
    throw unverifiable(
      `environment: docker image inspect ${reference} failed: ${lastLine(result.stderr)}`
    )
  let volumes: unknown
  try {
    volumes = JSON.parse(result.stdout)
  } catch {
    volumes = undefined
  }
  if (volumes === null) return []
  if (typeof volumes !== 'object' || volumes === undefined || Array.isArray(volumes))
    throw unverifiable(
      `environment: docker image inspect returned '${clip(result.stdout.trim())}' instead of the image's volumes`
    )
  return Object.keys(volumes).map(volume => {
    const normalized = path.posix.normalize(volume).replace(/(?<=.)\/+$/, '')
    if (!normalized.startsWith('/'))
      throw invalid(
        `environment: the image declares the VOLUME '${clip(volume)}', not an absolute path`
      )
    return normalized
  })
}
