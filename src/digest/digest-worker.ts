// The entry point of a hashing thread (bundled as dist/digest-worker.js beside each bundle).
import { parentPort, workerData } from 'node:worker_threads'
import { answerBatch, createHasher, type BatchRequest } from './hash-file.js'
import type { WorkerData } from './workers.js'

if (!parentPort) throw new Error('digest-worker.js runs as a worker thread of the digest engine')
const port = parentPort
const { readSize, progress, slot } = workerData as WorkerData
const hasher = createHasher({ readSize, progress: new Float64Array(progress), slot })
port.on('message', (request: BatchRequest) => {
  const reply = answerBatch(hasher, request)
  port.postMessage(reply, 'result' in reply ? [reply.result.sizes.buffer as ArrayBuffer] : [])
})
