import { createHash } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { ImageRef } from '../../src/protocol/ledger.js'
import { tarArchive, type TarMember } from './archives.js'

export interface TestRegistry {
  /** The image it serves, pinned by its manifest digest. */
  image: ImageRef
  /** Layer bytes sent so far. */
  layerBytesSent(): number
  close(): Promise<void>
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')

/** A layer of these files, gzipped, with the tar its diff_id is taken of. */
export async function imageLayer(
  members: TarMember[]
): Promise<{ layer: Buffer; layerTar: Buffer }> {
  return { layer: await tarArchive(members, { gzip: true }), layerTar: await tarArchive(members) }
}

export interface TestRegistryOptions {
  /** The one layer, gzipped tar (its diff_id is the digest of `layerTar`). */
  layer: Buffer
  layerTar: Buffer
  /** Send the layer `chunkBytes` every `intervalMs` instead of at once. */
  drip?: { chunkBytes: number; intervalMs: number }
  /** Answer only requests with this `user:password` (Basic), as a private registry does. */
  basicAuth?: string
}

/**
 * A Docker registry (distribution API v2, on 127.0.0.1, which the daemon treats as insecure by
 * default) serving one image of one layer: at once or dripping (a registry too slow to be
 * waited for), open or behind Basic authentication.
 */
export async function startTestRegistry(options: TestRegistryOptions): Promise<TestRegistry> {
  const layerBody = options.layer
  const layerDigest = `sha256:${sha256(layerBody)}`
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: [`sha256:${sha256(options.layerTar)}`] }
    })
  )
  const configDigest = `sha256:${sha256(config)}`
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      config: {
        mediaType: 'application/vnd.docker.container.image.v1+json',
        size: config.length,
        digest: configDigest
      },
      layers: [
        {
          mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
          size: layerBody.length,
          digest: layerDigest
        }
      ]
    })
  )
  const manifestDigest = `sha256:${sha256(manifest)}`
  const timers = new Set<NodeJS.Timeout>()
  let sent = 0

  const server = http.createServer((req, res) => {
    const url = req.url ?? '/'
    const headers = { 'docker-distribution-api-version': 'registry/2.0' }
    const expected =
      options.basicAuth && `Basic ${Buffer.from(options.basicAuth).toString('base64')}`
    if (expected && req.headers.authorization !== expected)
      return void res
        .writeHead(401, { ...headers, 'www-authenticate': 'Basic realm="verify-model-test"' })
        .end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}')
    if (url === '/v2/') return void res.writeHead(200, headers).end('{}')
    if (url.endsWith(`/manifests/${manifestDigest}`))
      return void res
        .writeHead(200, {
          ...headers,
          'content-type': 'application/vnd.docker.distribution.manifest.v2+json',
          'content-length': manifest.length,
          'docker-content-digest': manifestDigest
        })
        .end(req.method === 'HEAD' ? undefined : manifest)
    if (url.endsWith(`/blobs/${configDigest}`))
      return void res
        .writeHead(200, { ...headers, 'content-length': config.length })
        .end(req.method === 'HEAD' ? undefined : config)
    if (url.endsWith(`/blobs/${layerDigest}`)) {
      res.writeHead(200, { ...headers, 'content-length': layerBody.length })
      if (req.method === 'HEAD') return void res.end()
      if (!options.drip) {
        sent += layerBody.length
        return void res.end(layerBody)
      }
      const { chunkBytes, intervalMs } = options.drip
      let offset = 0
      const timer = setInterval(() => {
        const chunk = layerBody.subarray(offset, offset + chunkBytes)
        offset += chunk.length
        sent += chunk.length
        if (offset >= layerBody.length) {
          clearInterval(timer)
          res.end(chunk)
        } else res.write(chunk)
      }, intervalMs)
      timers.add(timer)
      res.on('close', () => clearInterval(timer))
      return
    }
    res.writeHead(404, headers).end()
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const repository = `127.0.0.1:${(server.address() as AddressInfo).port}/verify-model-test/served`
  return {
    image: {
      uri: `oci://${repository}`,
      repository,
      sha256: manifestDigest.slice('sha256:'.length),
      reference: `${repository}@${manifestDigest}`,
      platform: 'linux/amd64'
    },
    layerBytesSent: () => sent,
    close: async () => {
      for (const timer of timers) clearInterval(timer)
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
}
