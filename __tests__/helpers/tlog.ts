// SBAs, keys and logs for the transparency-log tests, made with the project's own code.
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { signEnvelope } from '../../src/protocol/envelope.js'
import { generateKeyPair, parsePrivateKey, type PrivateKey } from '../../src/protocol/keys.js'
import { vectorsDir } from './paths.js'

const validCase = (
  JSON.parse(readFileSync(path.join(vectorsDir, 'sba.json'), 'utf8')) as {
    cases: { valid: boolean; envelope: { payload: string } }[]
  }
).cases.find(c => c.valid)!
const statement = JSON.parse(Buffer.from(validCase.envelope.payload, 'base64').toString('utf8'))

/** A valid statement, distinct for each `seed` (its build.env.SEED). */
export function statementBytes(seed: number): Uint8Array {
  const copy = structuredClone(statement)
  copy.predicate.build.env.SEED = String(seed)
  return Buffer.from(JSON.stringify(copy))
}

export interface KeyFiles {
  key: PrivateKey
  privatePath: string
  publicPath: string
  publicHex: string
}

export function writeKeyPair(dir: string, name: string): KeyFiles {
  const pair = generateKeyPair()
  const privatePath = path.join(dir, `${name}.key`)
  const publicPath = path.join(dir, `${name}.pub`)
  writeFileSync(privatePath, pair.privateKeyPem)
  writeFileSync(publicPath, pair.publicKeyPem)
  const key = parsePrivateKey(pair.privateKeyPem)
  return { key, privatePath, publicPath, publicHex: Buffer.from(key.publicKey.raw).toString('hex') }
}

/** Writes an SBA signed by `signers` for statement `seed`; returns its path. */
export function writeSba(dir: string, seed: number, signers: KeyFiles[]): string {
  const file = path.join(dir, `sba-${seed}.json`)
  writeFileSync(
    file,
    signEnvelope(
      statementBytes(seed),
      signers.map(s => s.key)
    )
  )
  return file
}

/** Serves a directory as static files on 127.0.0.1 (404 for anything absent), as a bucket would. */
export async function serveDirectory(
  root: string
): Promise<{ url: string; close: () => Promise<void> }> {
  // In-process reads from this server (plain http on loopback) need the explicit setting.
  process.env.VERIFY_MODEL_ALLOW_LOOPBACK_HTTP = 'true'
  const server = http.createServer((req, res) => {
    const file = path.join(root, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname))
    if (!file.startsWith(root + path.sep) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end('not found')
      return
    }
    const body = readFileSync(file)
    res.writeHead(200, { 'content-length': body.length }).end(body)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
}

/** Every entry of a log directory, read straight from its entry bundles (no project reader). */
export function entriesFromBundles(dir: string, size: number): Buffer[] {
  const entries: Buffer[] = []
  for (let tile = 0; tile * 256 < size; tile++) {
    const width = Math.min(256, size - tile * 256)
    const name = String(tile).padStart(3, '0')
    const file = path.join(dir, 'tile/entries', width === 256 ? name : `${name}.p/${width}`)
    const bundle = readFileSync(file)
    for (let at = 0; at < bundle.length;) {
      const length = bundle.readUInt16BE(at)
      entries.push(bundle.subarray(at + 2, at + 2 + length))
      at += 2 + length
    }
  }
  return entries
}
