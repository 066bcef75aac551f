import { createRequire as __WEBPACK_EXTERNAL_createRequire } from "module";
/******/ // The require scope
/******/ var __nccwpck_require__ = {};
/******/ 
/************************************************************************/
/******/ /* webpack/runtime/compat get default export */
/******/ (() => {
/******/ 	// getDefaultExport function for compatibility with non-harmony modules
/******/ 	__nccwpck_require__.n = (module) => {
/******/ 		var getter = module && module.__esModule ?
/******/ 			() => (module['default']) :
/******/ 			() => (module);
/******/ 		__nccwpck_require__.d(getter, { a: getter });
/******/ 		return getter;
/******/ 	};
/******/ })();
/******/ 
/******/ /* webpack/runtime/define property getters */
/******/ (() => {
/******/ 	// define getter functions for harmony exports
/******/ 	__nccwpck_require__.d = (exports, definition) => {
/******/ 		for(var key in definition) {
/******/ 			if(__nccwpck_require__.o(definition, key) && !__nccwpck_require__.o(exports, key)) {
/******/ 				Object.defineProperty(exports, key, { enumerable: true, get: definition[key] });
/******/ 			}
/******/ 		}
/******/ 	};
/******/ })();
/******/ 
/******/ /* webpack/runtime/hasOwnProperty shorthand */
/******/ (() => {
/******/ 	__nccwpck_require__.o = (obj, prop) => (Object.prototype.hasOwnProperty.call(obj, prop))
/******/ })();
/******/ 
/******/ /* webpack/runtime/compat */
/******/ 
/******/ if (typeof __nccwpck_require__ !== 'undefined') __nccwpck_require__.ab = new URL('.', import.meta.url).pathname.slice(import.meta.url.match(/^file:\/\/\/\w:/) ? 1 : 0, -1) + "/";
/******/ 
/************************************************************************/
var __webpack_exports__ = {};

;// CONCATENATED MODULE: external "node:worker_threads"
const external_node_worker_threads_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:worker_threads");
;// CONCATENATED MODULE: external "node:crypto"
const external_node_crypto_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:crypto");
;// CONCATENATED MODULE: external "node:fs"
const external_node_fs_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:fs");
var external_node_fs_default = /*#__PURE__*/__nccwpck_require__.n(external_node_fs_namespaceObject);
;// CONCATENATED MODULE: ./src/digest/merkle.ts

const LEAF_PREFIX = 0x00;
const NODE_PREFIX = 0x01;
/** Reused for every interior node: one allocation, not one per hash. */
const node = Buffer.alloc(65, NODE_PREFIX);
/** Reused for every leaf of this thread (each worker thread has its own module instance). */
let scratch = Buffer.allocUnsafeSlow(4096);
/**
 * `0x00 || u64be(len(path)) || path || u64be(size) || sha256` (docs/protocol.md section 1, step 4),
 * written into the scratch buffer: the one encoding of a manifest entry as a leaf.
 */
function prefixedLeaf(path, size, sha256) {
    const pathLength = Buffer.byteLength(path, 'utf8');
    const length = 1 + 8 + pathLength + 8 + 32;
    if (scratch.length < length)
        scratch = Buffer.allocUnsafeSlow(2 * length);
    scratch[0] = LEAF_PREFIX;
    writeU64(scratch, 1, pathLength);
    scratch.write(path, 9, 'utf8');
    writeU64(scratch, 9 + pathLength, size);
    if (!/^[0-9a-f]{64}$/.test(sha256))
        throw new Error(`leaf of ${path}: sha256 is not 64 lowercase hex`);
    scratch.write(sha256, 17 + pathLength, 'hex');
    return scratch.subarray(0, length);
}
/** Sizes up to 2^53 without a BigInt per leaf. */
function writeU64(target, at, value) {
    target.writeUInt32BE(Math.floor(value / 0x1_0000_0000), at);
    target.writeUInt32BE(value >>> 0, at + 4);
}
/** `u64be(len(path)) || path || u64be(size) || sha256`: the leaf data of a manifest entry. */
function leafData(entry) {
    return Uint8Array.prototype.slice.call(prefixedLeaf(entry.path, entry.size, entry.sha256), 1);
}
/** The hex RFC 6962 leaf hash `SHA256(0x00 || leafData(entry))` of a manifest entry. */
function entryLeafHash(path, size, sha256) {
    return (0,external_node_crypto_namespaceObject.hash)('sha256', prefixedLeaf(path, size, sha256), 'hex');
}
/**
 * RFC 6962 Merkle Tree Hash with SHA-256: `MTH({d}) = SHA256(0x00 || d)`,
 * `MTH(D[0:n]) = SHA256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))`, `k` the largest power of two
 * below `n`; the empty list hashes to SHA256('').
 */
function merkleRoot(leaves) {
    return Buffer.from(rootOfLeafHashes(leaves.map(leafHash)), 'hex');
}
/** `SHA256(0x00 || leaf data)`, hex: the RFC 6962 leaf hash of any leaf (log entries too). */
function leafHash(data) {
    const prefixed = Buffer.allocUnsafe(1 + data.length);
    prefixed[0] = LEAF_PREFIX;
    prefixed.set(data, 1);
    return hash('sha256', prefixed, 'hex');
}
/**
 * The root (hex) over hex leaf hashes, built bottom-up: pairing neighbours level by level and
 * carrying an odd last node up unchanged gives exactly the recursive split. Hex strings, not
 * Buffers: for 20,000 leaves they halve the time (no Buffer per node for the GC to track).
 */
function rootOfLeafHashes(hashes) {
    if (hashes.length === 0)
        return hash('sha256', '', 'hex');
    let level = hashes;
    while (level.length > 1) {
        const next = [];
        for (let i = 0; i + 1 < level.length; i += 2)
            next.push(nodeHash(level[i], level[i + 1]));
        if (level.length % 2 === 1)
            next.push(level[level.length - 1]);
        level = next;
    }
    return level[0];
}
/** RFC 6962 interior node `SHA256(0x01 || left || right)`, over and to hex hashes. */
function nodeHash(left, right) {
    node.write(left, 1, 'hex');
    node.write(right, 33, 'hex');
    return hash('sha256', node, 'hex');
}

;// CONCATENATED MODULE: ./src/digest/hash-file.ts



function isHashFailure(value) {
    return (typeof value === 'object' &&
        value !== null &&
        typeof value.path === 'string' &&
        typeof value.problem === 'string');
}
/** A file of unknown size up to this many reads is hashed where it was opened, not deferred. */
const HASH_IN_PLACE_READS = 8;
/**
 * Per file: open without following links (O_NOFOLLOW) and without blocking on a FIFO swapped in
 * (O_NONBLOCK), read into reused buffers until a short read. A file that fits one read is one
 * syscall: its size is what was read (an empty read is fstat-ed, to reject a FIFO swapped in).
 * A bigger file is fstat-ed when first opened, and every read of it must add up to exactly
 * that size; it is fstat-ed again after the last read and rejected unless it still has that
 * size, mtime and inode (extended, truncated, rewritten or replaced while it was read).
 * Each file's RFC 6962 leaf hash is computed here too, in parallel, rather than on the calling
 * thread at the end. Digests are hex strings rather than Buffers: they are cheaper to allocate,
 * collect and post between threads.
 */
function createHasher(options) {
    const { readSize, progress, slot, afterChunk } = options;
    const deferAbove = HASH_IN_PLACE_READS * readSize;
    const buffer = Buffer.allocUnsafeSlow(readSize);
    let spare;
    function readChunk(fd, path) {
        try {
            return external_node_fs_default().readSync(fd, buffer, 0, readSize, null);
        }
        catch (error) {
            throw readFailure(path, error);
        }
    }
    /** Whether another read is needed after one of n bytes brought the total to total. */
    function wantsMore(n, total, size) {
        return n > 0 && total <= size && (n === readSize || total < size);
    }
    function counted(n, path, total) {
        progress[2 * slot] += n;
        afterChunk?.(path, total);
    }
    /** Streams the rest of a file of known size; the first n bytes are in the buffer. */
    function hashRest(fd, path, n, listed) {
        const sha = (0,external_node_crypto_namespaceObject.createHash)('sha256');
        let total = n;
        for (;;) {
            sha.update(n === readSize ? buffer : buffer.subarray(0, n));
            counted(n, path, total);
            if (!wantsMore(n, total, listed.size))
                break;
            n = readChunk(fd, path);
            total += n;
        }
        checkAfterReads(fd, path, listed, total);
        return sha.digest('hex');
    }
    function hashBatch({ paths, names, meta }) {
        const count = paths.length;
        const digests = new Array(count);
        const sizes = new Float64Array(count);
        const leaves = new Array(count);
        const deferred = [];
        for (let i = 0; i < count; i++) {
            const path = paths[i];
            let size = meta[3 * i];
            const fd = openFile(path);
            try {
                const n = readChunk(fd, path);
                let digest;
                if (size < 0 && n === readSize) {
                    const stats = regularStats(fd, path);
                    const listed = { size: stats.size, mtimeMs: stats.mtimeMs, ino: stats.ino };
                    if (stats.size > deferAbove) {
                        deferred.push(i, listed.size, listed.mtimeMs, listed.ino);
                        digests[i] = leaves[i] = '';
                        continue;
                    }
                    size = stats.size;
                    digest = hashRest(fd, path, n, listed);
                }
                else if (size < 0 || (n < readSize && n === size)) {
                    if (n === 0)
                        regularStats(fd, path);
                    size = n;
                    digest = (0,external_node_crypto_namespaceObject.hash)('sha256', buffer.subarray(0, n), 'hex');
                    counted(n, path, n);
                }
                else {
                    digest = hashRest(fd, path, n, { size, mtimeMs: meta[3 * i + 1], ino: meta[3 * i + 2] });
                }
                digests[i] = digest;
                sizes[i] = size;
                leaves[i] = entryLeafHash(names[i], size, digest);
            }
            finally {
                external_node_fs_default().closeSync(fd);
            }
            progress[2 * slot + 1] += 1;
        }
        return { digests, sizes, leaves, deferred };
    }
    function hashLarge(file, cancelled) {
        const { path, name, listed } = file;
        spare ??= Buffer.allocUnsafeSlow(readSize);
        const buffers = [buffer, spare];
        const fd = openFile(path);
        const sha = (0,external_node_crypto_namespaceObject.createHash)('sha256');
        let total = 0;
        return new Promise((resolve, reject) => {
            const finish = (error) => {
                let result;
                try {
                    if (error)
                        throw error;
                    checkAfterReads(fd, path, listed, total);
                    const digest = sha.digest('hex');
                    result = { digest, leaf: entryLeafHash(name, listed.size, digest) };
                    progress[2 * slot + 1] += 1;
                }
                catch (thrown) {
                    error = thrown;
                }
                external_node_fs_default().closeSync(fd);
                if (result)
                    resolve(result);
                else
                    reject(error);
            };
            const onRead = (which, error, n) => {
                if (error)
                    return finish(readFailure(path, error));
                if (cancelled?.())
                    return finish(failure(path, 'hashing cancelled'));
                total += n;
                const more = wantsMore(n, total, listed.size);
                if (more)
                    external_node_fs_default().read(fd, buffers[1 - which], 0, readSize, total, handlers[1 - which]);
                if (n > 0) {
                    sha.update(n === readSize ? buffers[which] : buffers[which].subarray(0, n));
                    counted(n, path, total);
                }
                if (!more)
                    finish();
            };
            const handlers = [onRead.bind(null, 0), onRead.bind(null, 1)];
            external_node_fs_default().read(fd, buffers[0], 0, readSize, 0, handlers[0]);
        });
    }
    return { hashBatch, hashLarge };
}
/** A hashing thread's answer to a batch: its result, or the failure that stopped it. */
function answerBatch(hasher, request) {
    try {
        return { result: hasher.hashBatch(request) };
    }
    catch (error) {
        if (isHashFailure(error))
            return { failure: { path: error.path, problem: error.problem } };
        const problem = error instanceof Error ? (error.stack ?? error.message) : String(error);
        return { failure: { path: '', problem } };
    }
}
const OPEN_FLAGS = (external_node_fs_default()).constants.O_RDONLY | (external_node_fs_default()).constants.O_NOFOLLOW | (external_node_fs_default()).constants.O_NONBLOCK;
function failure(path, problem) {
    return { path, problem };
}
function openFile(path) {
    try {
        return external_node_fs_default().openSync(path, OPEN_FLAGS);
    }
    catch (error) {
        const code = error.code;
        if (code === 'ELOOP')
            throw failure(path, 'became a symbolic link while the tree was hashed (links are never followed)');
        if (code === 'ENOENT')
            throw failure(path, 'disappeared while the tree was hashed');
        if (code === 'EACCES' || code === 'EPERM')
            throw failure(path, `is not readable (${code}): every file of a tree must be readable`);
        throw failure(path, `cannot be opened (${code})`);
    }
}
function readFailure(path, error) {
    const code = error.code;
    if (code === 'EISDIR' || code === 'EAGAIN')
        return notRegular(path);
    return failure(path, `cannot be read (${code})`);
}
function notRegular(path) {
    return failure(path, 'is no longer a regular file');
}
function regularStats(fd, path) {
    const stats = external_node_fs_default().fstatSync(fd);
    if (!stats.isFile())
        throw notRegular(path);
    return stats;
}
function checkAfterReads(fd, path, listed, total) {
    const after = regularStats(fd, path);
    const { size, mtimeMs, ino } = listed;
    if (total !== size || after.size !== size || after.mtimeMs !== mtimeMs || after.ino !== ino) {
        throw failure(path, `changed while the tree was hashed (${size} bytes when opened, ${total} read, ${after.size} now): hash a tree that nothing is writing to`);
    }
}

;// CONCATENATED MODULE: ./src/digest/digest-worker.ts
// The entry point of a hashing thread (bundled as dist/digest-worker.js beside each bundle).


if (!external_node_worker_threads_namespaceObject.parentPort)
    throw new Error('digest-worker.js runs as a worker thread of the digest engine');
const port = external_node_worker_threads_namespaceObject.parentPort;
const { readSize, progress, slot } = external_node_worker_threads_namespaceObject.workerData;
const hasher = createHasher({ readSize, progress: new Float64Array(progress), slot });
port.on('message', (request) => {
    const reply = answerBatch(hasher, request);
    port.postMessage(reply, 'result' in reply ? [reply.result.sizes.buffer] : []);
});

