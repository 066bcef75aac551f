import { clip } from '../protocol/encoding.js'
import { isUri } from './vsa.js'

/**
 * The default `verifier.id`: the workflow that runs the rebuild,
 * `${GITHUB_SERVER_URL}/${GITHUB_WORKFLOW_REF}` (e.g.
 * `https://github.com/acme/rebuilder/.github/workflows/rebuild.yml@refs/heads/main`). It names the
 * rebuilder and stays the same from run to run, so consumers can pin it (`slsa-verifier
 * --verifier-id`); a run URL would change every run. Undefined outside a workflow.
 */
export function defaultVerifierId(env: NodeJS.ProcessEnv): string | undefined {
  const server = env.GITHUB_SERVER_URL
  const workflowRef = env.GITHUB_WORKFLOW_REF
  if (!server || !workflowRef) return undefined
  return `${server.replace(/\/+$/, '')}/${workflowRef}`
}

/** The verifier id given, else the default; why not, when there is none or it is no URI. */
export function resolveVerifierId(
  given: string | undefined,
  env: NodeJS.ProcessEnv,
  name: string
): { verifierId: string } | { error: string } {
  const verifierId = given || defaultVerifierId(env)
  if (verifierId === undefined) {
    return {
      error: `${name}: not given, and GITHUB_SERVER_URL / GITHUB_WORKFLOW_REF are not set to make the default; give a URI naming this rebuilder (e.g. its workflow's URL)`
    }
  }
  if (!isUri(verifierId)) {
    return { error: `${name}: expected a URI (scheme:…, no spaces), got '${clip(verifierId)}'` }
  }
  return { verifierId }
}
