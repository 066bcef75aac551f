// The build ledger (PROTOCOL.md section 2): types of the statement after validation,
// with every default applied. parseStatement() is implemented in the foundation issue.

export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1'
export const PREDICATE_TYPE = 'https://openclaw.dev/build-ledger/v1'

export interface SourceRef {
  /** `git+https://…`, `git+ssh://…` or `git+file://…`, exactly as in the ledger. */
  uri: string
  /** Full commit id: 40 (sha1) or 64 (sha256) lowercase hex. */
  gitCommit: string
}

export interface Dependency {
  /** Path inside the source tree, validated: relative, no `..`, no empty segment. */
  name: string
  sha256: string
}

export interface DatasetRef {
  uri?: string
  treeSha256: string
}

export interface ImageRef {
  /** `oci://<registry>/<repository>` as written in the ledger. */
  uri: string
  /** `<registry>/<repository>` (the uri without `oci://`). */
  repository: string
  /** Manifest digest, 64 lowercase hex (no `sha256:` prefix). */
  sha256: string
  /** `<repository>@sha256:<digest>`: the only form ever run. */
  reference: string
  platform: string
}

export interface BuildSpec {
  command: string[]
  env: Record<string, string>
  sourceDateEpoch: number
  /** Paths relative to /out; `undefined` means all of /out. */
  outputs?: string[]
  workdir: string
  network: 'none' | 'bridge'
  timeoutSeconds: number
  cpus: number
  gpus: 'none' | 'all'
}

export interface Ledger {
  source: SourceRef
  dependencies: Dependency[]
  dataset?: DatasetRef
  environment: ImageRef
  build: BuildSpec
}
