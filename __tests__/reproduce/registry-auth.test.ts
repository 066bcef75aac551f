import { describe, expect, it } from '@jest/globals'
import type { Run, RunOptions } from '../../src/exec.js'
import { registryAuthHeader, registryOf } from '../../src/reproduce/registry-auth.js'
import { result } from '../helpers/scripted-docker.js'
import { escapeRegExp } from '../helpers/regexp.js'

const CONFIG = '/home/runner/.docker/config.json'
const notRun: Run = async file => {
  throw new Error(`unexpected ${file}`)
}
/** The header for `registry` with this config.json (HOME-relative, no DOCKER_CONFIG). */
const headerWith = (config: unknown, registry = 'ghcr.io', run = notRun) =>
  registryAuthHeader(registry, {
    run,
    env: { HOME: '/home/runner' },
    readText: async file => {
      if (file !== CONFIG) throw Object.assign(new Error(`ENOENT: ${file}`), { code: 'ENOENT' })
      return typeof config === 'string' ? config : JSON.stringify(config)
    }
  })
const decoded = (header: string | undefined) =>
  header === undefined ? undefined : JSON.parse(Buffer.from(header, 'base64url').toString())
const basic = (pair: string) => ({ auth: Buffer.from(pair).toString('base64') })

describe('registryOf', () => {
  it('is the first path element, and the v1 index for Docker Hub', () => {
    expect(registryOf('ghcr.io/acme/trainer')).toBe('ghcr.io')
    expect(registryOf('127.0.0.1:5000/verify-model-test/busybox')).toBe('127.0.0.1:5000')
    expect(registryOf('docker.io/library/python')).toBe('https://index.docker.io/v1/')
  })
})

describe('registryAuthHeader', () => {
  it('is anonymous without a config file or an entry for the registry', async () => {
    await expect(
      registryAuthHeader('ghcr.io', {
        run: notRun,
        env: { DOCKER_CONFIG: '/nowhere' },
        readText: async () => {
          throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' })
        }
      })
    ).resolves.toBeUndefined()
    await expect(headerWith({ auths: { 'quay.io': basic('a:b') } })).resolves.toBeUndefined()
  })

  it('reads $DOCKER_CONFIG/config.json before ~/.docker', async () => {
    const read: string[] = []
    await registryAuthHeader('ghcr.io', {
      run: notRun,
      env: { DOCKER_CONFIG: '/etc/ci-docker', HOME: '/home/runner' },
      readText: async file => (read.push(file), '{}')
    })
    expect(read).toEqual(['/etc/ci-docker/config.json'])
  })

  it('decodes auths user:password (a colon in the password kept), matching https:// keys', async () => {
    expect(decoded(await headerWith({ auths: { 'https://ghcr.io': basic('octo:a:b') } }))).toEqual({
      username: 'octo',
      password: 'a:b',
      serveraddress: 'ghcr.io'
    })
    expect(
      decoded(
        await headerWith(
          { auths: { 'https://index.docker.io/v1/': basic('hub:pw') } },
          'https://index.docker.io/v1/'
        )
      )
    ).toEqual({ username: 'hub', password: 'pw', serveraddress: 'https://index.docker.io/v1/' })
  })

  it("is base64url with its padding, as the daemon's decoder needs", async () => {
    // This JSON is 58 bytes: two characters of padding.
    const header = await headerWith({ auths: { 'ghcr.io': basic('o:pw') } })
    expect(header).toMatch(/^[A-Za-z0-9_-]+==$/)
    expect((header ?? '').length % 4).toBe(0)
  })

  it('sends an identity token as one', async () => {
    expect(decoded(await headerWith({ auths: { 'ghcr.io': { identitytoken: 'tok' } } }))).toEqual({
      identitytoken: 'tok',
      serveraddress: 'ghcr.io'
    })
  })

  it('asks credHelpers before credsStore, with the registry on stdin and no shell', async () => {
    const calls: { file: string; args: readonly string[]; input?: string }[] = []
    const helper: Run = async (file, args, options: RunOptions = {}) => {
      calls.push({ file, args, input: options.input?.toString() })
      return result(0, JSON.stringify({ ServerURL: 'ghcr.io', Username: 'octo', Secret: 'pw' }))
    }
    const header = await headerWith(
      { credsStore: 'desktop', credHelpers: { 'ghcr.io': 'gh' } },
      'ghcr.io',
      helper
    )
    expect(calls).toEqual([{ file: 'docker-credential-gh', args: ['get'], input: 'ghcr.io\n' }])
    expect(decoded(header)).toEqual({ username: 'octo', password: 'pw', serveraddress: 'ghcr.io' })
    const token: Run = async () =>
      result(0, JSON.stringify({ Username: '<token>', Secret: 'refresh' }))
    expect(decoded(await headerWith({ credsStore: 'pass' }, 'ghcr.io', token))).toEqual({
      identitytoken: 'refresh',
      serveraddress: 'ghcr.io'
    })
  })

  it('is anonymous when the helper has no credentials for the registry', async () => {
    const none: Run = async () => result(1, 'credentials not found in native keychain\n')
    await expect(
      headerWith({ credsStore: 'secretservice' }, 'ghcr.io', none)
    ).resolves.toBeUndefined()
  })

  it.each([
    ['a config that is not JSON', '{"auths":', undefined, `${CONFIG} is not JSON`],
    ['a config that is not an object', '[]', undefined, `${CONFIG} is not a JSON object`],
    [
      'an auth without a colon',
      { auths: { 'ghcr.io': basic('octo') } },
      undefined,
      `the auth of ghcr.io in ${CONFIG} is not base64 of user:password`
    ],
    [
      'a helper name that is a path',
      { credsStore: '../../tmp/evil' },
      undefined,
      "the credential helper name '../../tmp/evil' is not a plain program name"
    ],
    [
      'a helper that fails',
      { credsStore: 'pass' },
      (async () => result(1, '', 'gpg: decryption failed\n')) as Run,
      'docker-credential-pass get ghcr.io exited with 1: gpg: decryption failed'
    ],
    [
      'a helper that is not installed',
      { credsStore: 'osxkeychain' },
      (async () => {
        throw new Error('spawn docker-credential-osxkeychain ENOENT')
      }) as Run,
      'the credential helper docker-credential-osxkeychain cannot be run: spawn docker-credential-osxkeychain ENOENT'
    ]
  ])('is unverifiable, naming the cause, for %s', async (_, config, run, reason) => {
    await expect(headerWith(config, 'ghcr.io', run ?? notRun)).rejects.toMatchObject({
      verdict: 'unverifiable',
      code: 'IMAGE_PULL',
      message: expect.stringMatching(
        new RegExp(
          `^environment: registry credentials: ${escapeRegExp(reason)}.*\\. Fix the Docker configuration \\(docker login\\) or remove the entry for an anonymous pull$`
        )
      )
    })
  })
})
