import fs from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { answerBatch, createHasher, type BatchReply, type BatchRequest } from './hash-file.js'

/** What a hashing thread is started with. */
export interface WorkerData {
  readSize: number
  /** Bytes and files done per thread (see `HasherOptions.progress`). */
  progress: SharedArrayBuffer
  slot: number
}

export interface WorkerEvents {
  /** The answer to a batch; answers come in the order the batches were sent. */
  reply(reply: BatchReply): void
  /** The thread itself failed or exited: the engine stops. */
  fail(error: unknown): void
}

/** One hashing thread as the engine sees it. */
export interface HashWorker {
  send(request: BatchRequest): void
  /** Stops the thread without waiting; no event follows. */
  close(): void
}

/** Starts a hashing thread; injected into the engine, so tests choose threads or not. */
export type WorkerFactory = (data: WorkerData, events: WorkerEvents) => HashWorker

export interface ThreadOptions {
  /** The worker module; default: `digest-worker.js` beside this module (the bundle's layout). */
  script?: URL
  /** Node options of the thread (default: the process's own). */
  execArgv?: string[]
}

/**
 * Real worker threads running `digest-worker.ts`. ncc bundles that module as its own entry,
 * `digest-worker.js`, beside each bundle (`dist/`, `dist/cli/`), and a bundle finds it relative
 * to itself; tests run the TypeScript module through a small loader (`execArgv`).
 */
export function threadWorkers(options: ThreadOptions = {}): WorkerFactory {
  const script = options.script ?? besideThisModule('digest-worker.js')
  let checked = false
  return (data, events) => {
    if (!checked && script.protocol === 'file:' && !fs.existsSync(fileURLToPath(script)))
      throw new Error(
        `the hashing thread's module ${fileURLToPath(script)} is missing: it ships beside the bundle (npm run package builds it)`
      )
    checked = true
    const worker = new Worker(script, {
      workerData: data,
      execArgv: options.execArgv,
      stdout: false
    })
    worker.on('message', events.reply)
    worker.on('error', events.fail)
    worker.on('exit', code => events.fail(new Error(`a hashing thread exited (${code})`)))
    return {
      send: request => worker.postMessage(request),
      close() {
        worker.removeAllListeners()
        worker.on('error', () => undefined)
        worker.unref()
        void worker.terminate()
      }
    }
  }
}

/** A file in this module's directory (a parameter, so the bundler does not take it for an asset). */
function besideThisModule(file: string): URL {
  return new URL(file, import.meta.url)
}

/**
 * Hashing "threads" that run on the calling thread, one batch per turn of the event loop:
 * the same hasher and the same answers as a real thread, without starting one.
 */
export const inThreadWorkers: WorkerFactory = (data, events) => {
  const hasher = createHasher({
    readSize: data.readSize,
    progress: new Float64Array(data.progress),
    slot: data.slot
  })
  let closed = false
  return {
    send(request) {
      setImmediate(() => {
        if (!closed) events.reply(answerBatch(hasher, request))
      })
    },
    close() {
      closed = true
    }
  }
}
