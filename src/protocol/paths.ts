/**
 * Why `path` is not a plain path below a fixed root (relative, '/'-separated, no NUL, no '.',
 * '..' or empty segment), or undefined when it is one. Archive member names follow looser rules
 * (a leading './', a directory's trailing '/'): see reproduce/archive.ts.
 */
export function unsafePathReason(path: string): string | undefined {
  if (path.includes('\0')) return 'NUL character not allowed'
  if (path.includes('\\')) return 'backslash not allowed (use /)'
  if (path.startsWith('/')) return 'absolute path not allowed'
  const segments = path.split('/')
  if (segments.includes('..')) return "'..' segment not allowed"
  if (segments.includes('.')) return "'.' segment not allowed"
  if (segments.includes('')) return 'empty segment not allowed'
  return undefined
}
