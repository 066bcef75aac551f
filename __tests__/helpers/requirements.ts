import { describe, it } from '@jest/globals'

/**
 * `describe` for tests that need something from the machine (Docker, NumPy). Without it:
 * skipped on a developer's machine, one failing test saying `hint` under CI (`CI=true`), so CI
 * never passes by skipping.
 */
export function describeRequiring(
  name: string,
  available: () => boolean,
  hint: string,
  body: () => void
): void {
  if (available()) describe(name, body)
  else if (process.env.CI === 'true')
    describe(name, () => {
      it('has what it requires', () => {
        throw new Error(hint)
      })
    })
  else describe.skip(name, body)
}
