import { describe, expect, it } from '@jest/globals'
import type { RunOptions, RunResult } from '../../src/exec.js'
import type { Ledger } from '../../src/protocol/ledger.js'
import { LogTail, buildRunArgs, runContainer } from '../../src/reproduce/container.js'
import { isaVectors, sampleLedger, SAMPLE_REFERENCE } from '../helpers/ledger.js'

const REFERENCE = SAMPLE_REFERENCE

const paths = { src: '/w/src', data: '/w/data', out: '/w/out' }
const options = { name: 'verify-model-test', allowNetwork: false, hostCpus: 4 }

describe('buildRunArgs', () => {
  it('builds the exact docker run argv of the container contract', () => {
    const ledger = sampleLedger({ env: { SEED: '0', TZ: 'Europe/Paris' }, workdir: 'train/' })
    expect(buildRunArgs(ledger, paths, options)).toEqual([
      'run',
      '--name',
      'verify-model-test',
      '--hostname',
      'build',
      '--platform',
      'linux/amd64',
      '--read-only',
      '--tmpfs',
      '/tmp:rw,exec,nosuid,nodev,mode=1777,size=2g',
      '--user',
      '1000:1000',
      '--cap-drop',
      'ALL',
      '--security-opt',
      'no-new-privileges',
      '--pids-limit',
      '4096',
      '--network',
      'none',
      '--cpuset-cpus',
      '0-1',
      '-e',
      'SOURCE_DATE_EPOCH=1700000000',
      '-e',
      'TZ=Europe/Paris',
      '-e',
      'LANG=C.UTF-8',
      '-e',
      'LC_ALL=C.UTF-8',
      '-e',
      'PYTHONHASHSEED=0',
      '-e',
      'OMP_NUM_THREADS=2',
      '-e',
      'MKL_NUM_THREADS=2',
      '-e',
      'OPENBLAS_NUM_THREADS=2',
      '-e',
      'CUBLAS_WORKSPACE_CONFIG=:4096:8',
      '-e',
      'HF_HUB_OFFLINE=1',
      '-e',
      'HF_DATASETS_OFFLINE=1',
      '-e',
      'TRANSFORMERS_OFFLINE=1',
      '-e',
      'PIP_NO_INDEX=1',
      '-e',
      'WANDB_MODE=disabled',
      '-e',
      'HOME=/tmp',
      '-e',
      'SEED=0',
      '--mount',
      'type=bind,src=/w/src,dst=/src',
      '--mount',
      'type=bind,src=/w/data,dst=/data,readonly',
      '--mount',
      'type=bind,src=/w/out,dst=/out',
      '--workdir',
      '/src/train',
      '--entrypoint',
      '',
      REFERENCE,
      'python3',
      'train.py',
      '--out',
      '/out'
    ])
  })

  it('keeps every ledger string a single argv element: the command after the image, env as -e K=V', () => {
    const hostile = [
      '--privileged',
      '-v',
      '/:/host',
      '$(touch /host-marker)',
      'a; rm -rf /',
      '`id`',
      'line1\nline2'
    ]
    const envValue = '"; touch /env-marker; echo `whoami` $(whoami)\nOTHER=1'
    const ledger = sampleLedger({
      command: ['sh', '-c', 'true', ...hostile],
      env: { INJECT: envValue }
    })
    const args = buildRunArgs(ledger, { src: '/w/src', out: '/w/out' }, options)
    const image = args.indexOf(REFERENCE)
    expect(args.slice(image + 1)).toEqual(['sh', '-c', 'true', ...hostile])
    const beforeImage = args.slice(0, image)
    for (const text of hostile) expect(beforeImage.filter(arg => arg.includes(text))).toEqual([])
    expect(beforeImage.filter(arg => arg.includes('env-marker'))).toEqual([`INJECT=${envValue}`])
    expect(beforeImage[beforeImage.indexOf(`INJECT=${envValue}`) - 1]).toBe('-e')
    expect(beforeImage).not.toContain('--privileged')
  })

  it('quotes a host path with a comma so it cannot add a mount option', () => {
    const args = buildRunArgs(sampleLedger(), { src: '/w/a,readonly', out: '/w/o"ut' }, options)
    expect(args).toContain('type=bind,"src=/w/a,readonly",dst=/src')
    expect(args).toContain('type=bind,"src=/w/o""ut",dst=/out')
  })

  it('uses bridge only when the ledger asks and the caller allows it', () => {
    const bridge = sampleLedger({ network: 'bridge' })
    expect(() => buildRunArgs(bridge, paths, options)).toThrow(
      expect.objectContaining({
        verdict: 'invalid',
        message: expect.stringContaining(
          "the ledger asks for network 'bridge' but allow-network is false"
        )
      })
    )
    const args = buildRunArgs(bridge, paths, { ...options, allowNetwork: true })
    expect(args[args.indexOf('--network') + 1]).toBe('bridge')
    const none = buildRunArgs(sampleLedger(), paths, { ...options, allowNetwork: true })
    expect(none[none.indexOf('--network') + 1]).toBe('none')
  })

  it('fails unverifiable when the runner has fewer CPUs than the ledger asks', () => {
    expect(() => buildRunArgs(sampleLedger({ cpus: 8 }), paths, options)).toThrow(
      expect.objectContaining({
        verdict: 'unverifiable',
        message: expect.stringContaining('needs 8 CPUs but this runner has 4')
      })
    )
    const one = buildRunArgs(sampleLedger({ cpus: 1 }), paths, { ...options, hostCpus: 1 })
    expect(one[one.indexOf('--cpuset-cpus') + 1]).toBe('0')
    expect(one).toContain('OMP_NUM_THREADS=1')
  })

  it('asks for GPUs only for gpus: all, and limits memory only when told', () => {
    expect(buildRunArgs(sampleLedger(), paths, options)).not.toContain('--gpus')
    expect(buildRunArgs(sampleLedger(), paths, options)).not.toContain('--memory')
    const args = buildRunArgs(sampleLedger({ gpus: 'all' }), paths, {
      ...options,
      memory: '8g',
      pidsLimit: 64
    })
    expect(args.slice(args.indexOf('--gpus'), args.indexOf('--gpus') + 2)).toEqual([
      '--gpus',
      'all'
    ])
    expect(args.slice(args.indexOf('--memory'), args.indexOf('--memory') + 4)).toEqual([
      '--memory',
      '8g',
      '--memory-swap',
      '8g'
    ])
    expect(args[args.indexOf('--pids-limit') + 1]).toBe('64')
  })

  it('adds the ISA profile of build.isa after the contract variables, and nothing when unpinned', () => {
    const env = (ledger: Ledger) =>
      buildRunArgs(ledger, paths, options).flatMap((arg, i, all) =>
        all[i - 1] === '-e' ? [arg] : []
      )
    const unpinned = env(sampleLedger())
    const pinned = env(sampleLedger({ isa: 'x86-64-v2', env: { SEED: '1' } }))
    expect(unpinned.some(entry => entry.startsWith('GLIBC_TUNABLES='))).toBe(false)
    expect(pinned.slice(0, unpinned.length)).toEqual(unpinned)
    expect(pinned.slice(unpinned.length)).toEqual([
      `GLIBC_TUNABLES=${isaVectors['x86-64-v2'].GLIBC_TUNABLES}`,
      `NPY_DISABLE_CPU_FEATURES=${isaVectors['x86-64-v2'].NPY_DISABLE_CPU_FEATURES}`,
      'ATEN_CPU_CAPABILITY=default',
      'DNNL_MAX_CPU_ISA=SSE41',
      'ONEDNN_MAX_CPU_ISA=SSE41',
      'MKL_CBWR=SSE4_2,STRICT',
      'MKL_ENABLE_INSTRUCTIONS=SSE4_2',
      'OPENBLAS_CORETYPE=Nehalem',
      'SEED=1'
    ])
  })
})

/** A fake docker: `run` never exits by itself until `docker kill` is called. */
function hangingDocker() {
  const calls: string[][] = []
  let exit: ((result: RunResult) => void) | undefined
  const run = (file: string, args: readonly string[], options?: RunOptions): Promise<RunResult> => {
    calls.push([file, ...args])
    if (args[0] === 'run') {
      options?.onStdout?.(Buffer.from('epoch 1\n'))
      options?.onStderr?.(Buffer.from('warning: slow\n'))
      return new Promise(resolve => (exit = resolve))
    }
    if (args[0] === 'kill') exit?.({ exitCode: 137, stdout: '', stderr: '' })
    return Promise.resolve({ exitCode: 0, stdout: '', stderr: '' })
  }
  return { run, calls }
}

describe('runContainer', () => {
  it('kills the container itself at the timeout, then removes it', async () => {
    const docker = hangingDocker()
    const logged: string[] = []
    const result = await runContainer(['run', '--name', 'c1', 'img'], {
      run: docker.run,
      name: 'c1',
      timeoutSeconds: 0.05,
      onLog: chunk => logged.push(chunk.toString())
    })
    expect(result).toMatchObject({ timedOut: true, exitCode: 137 })
    expect(result.logTail).toBe('epoch 1\nwarning: slow\n')
    expect(logged).toEqual(['epoch 1\n', 'warning: slow\n'])
    expect(docker.calls).toEqual([
      ['docker', 'run', '--name', 'c1', 'img'],
      ['docker', 'kill', 'c1'],
      ['docker', 'rm', '--force', 'c1']
    ])
  })

  it('removes the container after a normal exit, and measures with the injected clock', async () => {
    const calls: string[][] = []
    const times = [1000, 1750]
    const result = await runContainer(['run', '--name', 'c2', 'img'], {
      name: 'c2',
      timeoutSeconds: 60,
      now: () => times.shift()!,
      run: async (file, args) => {
        calls.push([file, ...args])
        return { exitCode: args[0] === 'run' ? 3 : 0, stdout: '', stderr: '' }
      }
    })
    expect(result).toEqual({ exitCode: 3, durationMs: 750, logTail: '', timedOut: false })
    expect(calls.map(call => call[1])).toEqual(['run', 'rm'])
  })

  it('removes the container when docker cannot be started, keeping that error', async () => {
    const calls: string[][] = []
    const failure = runContainer(['run', '--name', 'c3', 'img'], {
      name: 'c3',
      timeoutSeconds: 60,
      run: async (file, args) => {
        calls.push([file, ...args])
        throw new Error('Unable to locate executable file: docker')
      }
    })
    await expect(failure).rejects.toThrow('Unable to locate executable file: docker')
    expect(calls.map(call => call[1])).toEqual(['run', 'rm'])
  })
})

describe('LogTail', () => {
  it('keeps the last lines', () => {
    const tail = new LogTail(3, 1000)
    for (let i = 1; i <= 10; i++) tail.push(`line ${i}\n`)
    expect(tail.text()).toBe('line 8\nline 9\nline 10\n')
  })

  it('keeps at most maxChars characters of one long line', () => {
    const tail = new LogTail(200, 10)
    tail.push('x'.repeat(50))
    tail.push('0123456789')
    expect(tail.text()).toBe('0123456789')
  })
})
