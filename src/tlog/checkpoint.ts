// C2SP tlog-checkpoint: the body `<origin>\n<size>\n<base64 root>\n[extension lines]`.
import { invalid } from '../errors.js'
import { clip, encodeBase64, toHex } from '../protocol/encoding.js'
import { decodeStandardBase64 } from './note.js'

export interface Checkpoint {
  origin: string
  treeSize: number
  /** hex SHA-256 root of the tree of `treeSize` leaves. */
  root: string
  /** Extension lines after the root, kept verbatim. */
  extensions: string[]
}

export function parseCheckpoint(text: string, field = 'checkpoint'): Checkpoint {
  const fail = (why: string): never => {
    throw invalid(`${field}: ${why}`)
  }
  if (!text.endsWith('\n')) fail('the body does not end in a newline')
  const lines = text.slice(0, -1).split('\n')
  if (lines.length < 3) fail(`expected origin, size and root lines, got ${lines.length} line(s)`)
  const [origin, size, root, ...extensions] = lines
  if (origin === '') fail('the origin line is empty')
  if (!/^(0|[1-9][0-9]*)$/.test(size) || !Number.isSafeInteger(Number(size))) {
    fail(`tree size '${clip(size)}' is not a decimal integer without leading zeros`)
  }
  const rootBytes = decodeStandardBase64(root, `${field} root`)
  if (rootBytes.length !== 32) fail(`the root is ${rootBytes.length} bytes, expected 32`)
  if (extensions.some(line => line === '')) fail('an extension line is empty')
  return { origin, treeSize: Number(size), root: toHex(rootBytes), extensions }
}

export function formatCheckpoint(checkpoint: Checkpoint): string {
  const root = encodeBase64(Buffer.from(checkpoint.root, 'hex'))
  const extensions = checkpoint.extensions.map(line => `${line}\n`).join('')
  return `${checkpoint.origin}\n${checkpoint.treeSize}\n${root}\n${extensions}`
}
