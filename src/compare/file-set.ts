/**
 * Whether a download's file names can be what a build declaring `outputs` leaves (each output
 * is a file, or a directory standing for the files below it). Known before any build: a name
 * outside every output, or an output no name falls under, can never compare equal.
 */
export function fileSetDifference(
  names: readonly string[],
  outputs: readonly string[]
): { unexpected: string[]; missing: string[] } | undefined {
  const covers = (output: string, name: string) => name === output || name.startsWith(`${output}/`)
  const unexpected = names.filter(name => !outputs.some(output => covers(output, name)))
  const missing = outputs.filter(output => !names.some(name => covers(output, name)))
  return unexpected.length === 0 && missing.length === 0 ? undefined : { unexpected, missing }
}
