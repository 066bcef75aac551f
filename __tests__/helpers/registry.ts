import { createHash } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { ImageRef } from '../../src/protocol/ledger.js'

export interface DrippingRegistry {
  /** The image it serves, pinned by its manifest digest. */
  image: ImageRef
  /** Layer bytes sent so far. */
  layerBytesSent(): number
  close(): Promise<void>
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')

/**
 * A Docker registry (distribution API v2, on 127.0.0.1, which the daemon treats as insecure by
 * default) serving one image whose manifest and config come at once and whose one layer of
 * `layerBytes` comes `chunkBytes` every `intervalMs`: a registry too slow to be waited for.
 */
export async function startDrippingRegistry(layer: {
  layerBytes: number
  chunkBytes: number
  intervalMs: number
}): Promise<DrippingRegistry> {
  const layerBody = Buffer.alloc(layer.layerBytes, 7)
  const layerDigest = `sha256:${sha256(layerBody)}`
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: [layerDigest] }
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
      let offset = 0
      const timer = setInterval(() => {
        const chunk = layerBody.subarray(offset, offset + layer.chunkBytes)
        offset += chunk.length
        sent += chunk.length
        if (offset >= layerBody.length) {
          clearInterval(timer)
          res.end(chunk)
        } else res.write(chunk)
      }, layer.intervalMs)
      timers.add(timer)
      res.on('close', () => clearInterval(timer))
      return
    }
    res.writeHead(404, headers).end()
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const repository = `127.0.0.1:${(server.address() as AddressInfo).port}/verify-model-test/drip`
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
