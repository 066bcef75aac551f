// Jest global setup of the integration project: the Docker daemon and the registry on
// 127.0.0.1:5000, through the same script a developer runs (a no-op when both answer).
import { execFileSync } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'services.sh')

export default function startServices() {
  execFileSync('bash', [script, 'up'], { stdio: ['ignore', 'inherit', 'inherit'] })
}
