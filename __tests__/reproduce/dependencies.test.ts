import { afterEach, beforeEach, describe, expect, it } from '@jest/globals'
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { VerifyError } from '../../src/errors.js'
import { checkDependencies } from '../../src/reproduce/dependencies.js'

const lockContent = 'numpy==1.26.4\n'
const lockSha256 = createHash('sha256').update(lockContent).digest('hex')
const otherSha256 = createHash('sha256').update('something else').digest('hex')

let root: string
let src: string

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'deps-test-'))
  src = path.join(root, 'src')
  await mkdir(path.join(src, 'env'), { recursive: true })
  await writeFile(path.join(src, 'requirements.lock'), lockContent)
  await writeFile(path.join(src, 'env', 'conda.lock'), 'conda\n')
  // A secret outside the source tree, with a digest an attacker could know.
  await writeFile(path.join(root, 'outside.lock'), lockContent)
})
afterEach(async () => {
  await rm(root, { recursive: true, force: true })
})

async function failure(promise: Promise<void>): Promise<VerifyError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e
  )
  expect(error).toBeInstanceOf(VerifyError)
  expect((error as VerifyError).verdict).toBe('invalid')
  return error as VerifyError
}

describe('checkDependencies', () => {
  it('accepts files whose sha256 matches, at any depth', async () => {
    const condaSha256 = createHash('sha256').update('conda\n').digest('hex')
    await expect(
      checkDependencies(src, [
        { name: 'requirements.lock', sha256: lockSha256 },
        { name: 'env/conda.lock', sha256: condaSha256 }
      ])
    ).resolves.toBeUndefined()
    await expect(checkDependencies(src, [])).resolves.toBeUndefined()
  })

  it('names the file and both digests on a mismatch', async () => {
    const error = await failure(
      checkDependencies(src, [{ name: 'requirements.lock', sha256: otherSha256 }])
    )
    expect(error.message).toContain('predicate.dependencies[0]: dependency requirements.lock')
    expect(error.message).toContain(`sha256 mismatch: ledger ${otherSha256}, source ${lockSha256}`)
  })

  it('reports a missing file, a directory and a bad path with the field index', async () => {
    const deps = [{ name: 'requirements.lock', sha256: lockSha256 }]
    expect(
      (await failure(checkDependencies(src, [...deps, { name: 'nope.lock', sha256: lockSha256 }])))
        .message
    ).toBe('predicate.dependencies[1]: dependency nope.lock: not found in the source tree')
    expect(
      (await failure(checkDependencies(src, [{ name: 'env', sha256: lockSha256 }]))).message
    ).toMatch(/dependency env: not a regular file/)
    for (const name of ['../outside.lock', '/etc/passwd', 'env/../requirements.lock', 'a//b']) {
      expect(
        (await failure(checkDependencies(src, [{ name, sha256: lockSha256 }]))).message
      ).toMatch(/not a plain relative path/)
    }
  })

  it('never follows a symbolic link, to a file or through a directory', async () => {
    await symlink(path.join(root, 'outside.lock'), path.join(src, 'linked.lock'))
    expect(
      (await failure(checkDependencies(src, [{ name: 'linked.lock', sha256: lockSha256 }]))).message
    ).toMatch(/dependency linked\.lock: linked\.lock is a symbolic link, which is not followed/)

    await symlink(root, path.join(src, 'up'))
    expect(
      (await failure(checkDependencies(src, [{ name: 'up/outside.lock', sha256: lockSha256 }])))
        .message
    ).toMatch(/dependency up\/outside\.lock: up is a symbolic link/)
  })
})
