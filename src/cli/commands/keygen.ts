import { writeFileSync } from 'node:fs'
import type { Command } from 'commander'
import { generateKeyPair } from '../../protocol/keys.js'
import { printJson } from '../io.js'
import type { CliContext } from '../context.js'

export function registerKeygen(program: Command, context: CliContext): void {
  program
    .command('keygen')
    .description(
      'Write a new Ed25519 key pair: PREFIX.key (PKCS#8 PEM, mode 0600) and PREFIX.pub (SPKI PEM).'
    )
    .requiredOption('-o, --out <prefix>', 'path prefix of the two files')
    .option('--json', 'print {keyId, privateKey, publicKey} paths as JSON')
    .action((options: { out: string; json?: boolean }) => {
      const pair = generateKeyPair()
      const privatePath = `${options.out}.key`
      const publicPath = `${options.out}.pub`
      writeFileSync(privatePath, pair.privateKeyPem, { mode: 0o600, flag: 'wx' })
      writeFileSync(publicPath, pair.publicKeyPem, { flag: 'wx' })
      if (options.json)
        printJson(context.io, { keyId: pair.keyId, privateKey: privatePath, publicKey: publicPath })
      else context.io.stdout(`${pair.keyId}\n`)
    })
}
