// RFC 6962 / RFC 9162 inclusion and consistency proofs, over the hashing of src/digest/merkle.ts.
// Hashes are lowercase hex; sizes and indexes are safe integers (so no 32-bit bit operations).
import { invalid } from '../errors.js'
import { nodeHash, rootOfLeafHashes } from '../digest/merkle.js'

/** The hash of the complete subtree of 2^level leaves starting at leaf `index * 2^level`. */
export type NodeReader = (level: number, index: number) => Promise<string>

const isOdd = (n: number) => n % 2 === 1
const half = (n: number) => Math.floor(n / 2)
const isPowerOfTwo = (n: number) => n > 0 && Number.isInteger(Math.log2(n))

/** The largest power of two strictly below n (n ≥ 2). */
function splitPoint(n: number): number {
  let k = 1
  while (k * 2 < n) k *= 2
  return k
}

/** Nodes over leaf hashes held in memory. */
export function leafNodeReader(leaves: readonly string[]): NodeReader {
  return (level, index) => {
    const width = 2 ** level
    const start = index * width
    if (start + width > leaves.length) throw new RangeError(`no node ${level}/${index}`)
    return Promise.resolve(rootOfLeafHashes(leaves.slice(start, start + width)))
  }
}

/** MTH(D[lo:hi]) for a range the RFC's recursion produces (lo a multiple of the left size). */
export async function rangeHash(lo: number, hi: number, node: NodeReader): Promise<string> {
  const n = hi - lo
  if (n <= 0) throw new RangeError(`empty range ${lo}..${hi}`)
  if (isPowerOfTwo(n) && lo % n === 0) {
    return node(Math.log2(n), lo / n)
  }
  const k = splitPoint(n)
  return nodeHash(await rangeHash(lo, lo + k, node), await rangeHash(lo + k, hi, node))
}

/** The root of a tree of `size` leaves (SHA256('') when empty). */
export async function treeRoot(size: number, node: NodeReader): Promise<string> {
  return size === 0 ? rootOfLeafHashes([]) : rangeHash(0, size, node)
}

/** RFC 6962 PATH(m, D[0:n]): leaf's sibling first, root's child last. */
export async function inclusionProof(
  index: number,
  size: number,
  node: NodeReader
): Promise<string[]> {
  if (!(index >= 0 && index < size)) throw new RangeError(`index ${index} not below ${size}`)
  const path: string[] = []
  let lo = 0
  let hi = size
  while (hi - lo > 1) {
    const k = splitPoint(hi - lo)
    if (index < lo + k) {
      path.unshift(await rangeHash(lo + k, hi, node))
      hi = lo + k
    } else {
      path.unshift(await rangeHash(lo, lo + k, node))
      lo += k
    }
  }
  return path
}

/** RFC 9162 section 2.1.3.2: the root the proof gives for `leaf` at `index` in a tree of `size`. */
export function rootFromInclusionProof(
  index: number,
  size: number,
  leaf: string,
  proof: readonly string[]
): string {
  if (!(Number.isSafeInteger(index) && index >= 0 && index < size)) {
    throw invalid(`inclusion proof: index ${index} is not below the tree size ${size}`)
  }
  let fn = index
  let sn = size - 1
  let r = leaf
  for (const p of proof) {
    if (sn === 0)
      throw invalid(
        `inclusion proof: ${proof.length} hashes are too many for index ${index} in size ${size}`
      )
    if (isOdd(fn) || fn === sn) {
      r = nodeHash(p, r)
      while (!isOdd(fn) && fn !== 0) {
        fn = half(fn)
        sn = half(sn)
      }
    } else {
      r = nodeHash(r, p)
    }
    fn = half(fn)
    sn = half(sn)
  }
  if (sn !== 0)
    throw invalid(
      `inclusion proof: ${proof.length} hashes are too few for index ${index} in size ${size}`
    )
  return r
}

/** RFC 6962 PROOF(m, D[n]): the consistency proof from size `m` to size `n`. */
export async function consistencyProof(m: number, n: number, node: NodeReader): Promise<string[]> {
  if (!(m >= 0 && m <= n)) throw new RangeError(`consistency ${m} → ${n}`)
  if (m === 0 || m === n) return []
  const proof: string[] = []
  let lo = 0
  let hi = n
  let whole = true
  // SUBPROOF(m, D[lo:hi], whole), unrolled: hashes are found top-down and belong in reverse.
  for (;;) {
    const size = hi - lo
    if (m === size) {
      if (!whole) proof.unshift(await rangeHash(lo, hi, node))
      return proof
    }
    const k = splitPoint(size)
    if (m <= k) {
      proof.unshift(await rangeHash(lo + k, hi, node))
      hi = lo + k
    } else {
      proof.unshift(await rangeHash(lo, lo + k, node))
      lo += k
      m -= k
      whole = false
    }
  }
}

/** RFC 9162 section 2.1.4.2. Throws invalid unless the proof links the two roots. */
export function verifyConsistency(
  first: number,
  second: number,
  firstRoot: string,
  secondRoot: string,
  proof: readonly string[]
): void {
  const fail = (why: string): never => {
    throw invalid(`consistency proof from size ${first} to ${second}: ${why}`)
  }
  if (first > second) fail('the tree shrank')
  if (first === second) {
    if (proof.length !== 0) fail('expected no hashes for equal sizes')
    if (firstRoot !== secondRoot) fail(`same size, different roots ${firstRoot} and ${secondRoot}`)
    return
  }
  if (first === 0) {
    if (proof.length !== 0) fail('expected no hashes from the empty tree')
    return
  }
  if (proof.length === 0) fail('no hashes')
  const path = isPowerOfTwo(first) ? [firstRoot, ...proof] : [...proof]
  let fn = first - 1
  let sn = second - 1
  while (isOdd(fn)) {
    fn = half(fn)
    sn = half(sn)
  }
  let fr = path[0]
  let sr = path[0]
  for (const c of path.slice(1)) {
    if (sn === 0) fail('too many hashes')
    if (isOdd(fn) || fn === sn) {
      fr = nodeHash(c, fr)
      sr = nodeHash(c, sr)
      while (!isOdd(fn) && fn !== 0) {
        fn = half(fn)
        sn = half(sn)
      }
    } else {
      sr = nodeHash(sr, c)
    }
    fn = half(fn)
    sn = half(sn)
  }
  if (sn !== 0) fail('too few hashes')
  if (fr !== firstRoot) fail(`it gives the old root ${fr}, not ${firstRoot}`)
  if (sr !== secondRoot) fail(`it gives the new root ${sr}, not ${secondRoot}`)
}
