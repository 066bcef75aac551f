// The minimum throughput of a transfer (a model download, an image pull): an idle timer alone
// is kept alive forever by a server sending one byte just often enough.

/** Windows of 30 s, or a quarter of the deadline when that is shorter (a check before it ends). */
export function throughputWindowMs(deadlineMs: number): number {
  return Math.min(30_000, deadlineMs / 4)
}

export interface ThroughputFloor {
  windowMs: number
  /** 0 turns the check off. */
  minBytesPerSecond: number
  /** The environment variable that sets the minimum, named in the failure. */
  variable: string
  /** The bytes moved so far: read at the end of each window. */
  bytesSoFar: () => number
  /** Called once, with `N bytes in the last W s (R B/s), below the minimum of M B/s (VARIABLE)`. */
  onTooSlow: (reason: string) => void
}

/** Starts checking each window against the floor; returns the function that stops it. */
export function watchThroughput(floor: ThroughputFloor): () => void {
  let windowStart = floor.bytesSoFar()
  const timer = setInterval(() => {
    const moved = floor.bytesSoFar() - windowStart
    windowStart += moved
    const perSecond = Math.floor((moved * 1000) / floor.windowMs)
    if (perSecond >= floor.minBytesPerSecond) return
    clearInterval(timer)
    floor.onTooSlow(
      `${moved} bytes in the last ${(floor.windowMs / 1000).toFixed(1)} s (${perSecond} B/s), below the minimum of ${floor.minBytesPerSecond} B/s (${floor.variable})`
    )
  }, floor.windowMs)
  return () => clearInterval(timer)
}
