// Builders of tar, tar.gz and zip archives, including hostile ones no ordinary tool would write
// (names with '..', links, devices, duplicates), for the unpacking tests.
import { crc32, deflateRawSync, gzipSync } from 'node:zlib'
import tar from 'tar-stream'

export interface TarMember {
  name: string
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo'
  content?: string | Buffer
  mode?: number
  linkname?: string
}

export async function tarArchive(
  members: TarMember[],
  options: { gzip?: boolean } = {}
): Promise<Buffer> {
  const pack = tar.pack()
  const chunks: Buffer[] = []
  const collected = (async () => {
    for await (const chunk of pack as unknown as AsyncIterable<Buffer>) chunks.push(chunk)
  })()
  for (const member of members) {
    const type = member.type ?? 'file'
    const content = type === 'file' ? Buffer.from(member.content ?? '') : undefined
    await new Promise<void>((resolve, reject) => {
      const header = {
        name: member.name,
        type,
        mode: member.mode ?? (type === 'directory' ? 0o755 : 0o644),
        linkname: member.linkname,
        mtime: new Date(1_700_000_000_000),
        size: content?.length ?? 0
      }
      const done = (error?: Error | null) => (error ? reject(error) : resolve())
      if (content) pack.entry(header, content, done)
      else pack.entry(header, done)
    })
  }
  pack.finalize()
  await collected
  const archive = Buffer.concat(chunks)
  return options.gzip ? gzipSync(archive) : archive
}

export interface ZipMember {
  name: string
  content?: string | Buffer
  /** The full unix st_mode (type bits included), stored in the external attributes. */
  unixMode?: number
  /** Deflate the data (method 8) instead of storing it. */
  deflate?: boolean
  /** Declare this uncompressed size instead of the true one (a lying entry). */
  declaredSize?: number
}

/** A minimal zip writer, enough to write any name, mode or declared size. */
export function zipArchive(members: ZipMember[]): Buffer {
  const locals: Buffer[] = []
  const centrals: Buffer[] = []
  let offset = 0
  for (const member of members) {
    const name = Buffer.from(member.name, 'utf8')
    const raw = Buffer.from(member.content ?? '')
    const checksum = crc32(raw)
    const data = member.deflate ? deflateRawSync(raw) : raw
    const method = member.deflate ? 8 : 0
    const size = member.declaredSize ?? raw.length
    const mode = member.unixMode ?? (member.name.endsWith('/') ? 0o040755 : 0o100644)

    const local = Buffer.alloc(30)
    local.writeUInt32LE(0x04034b50, 0)
    local.writeUInt16LE(20, 4) // version needed
    local.writeUInt16LE(0x0800, 6) // names are UTF-8
    local.writeUInt16LE(method, 8)
    local.writeUInt32LE(checksum, 14)
    local.writeUInt32LE(data.length, 18)
    local.writeUInt32LE(size, 22)
    local.writeUInt16LE(name.length, 26)
    locals.push(local, name, data)

    const central = Buffer.alloc(46)
    central.writeUInt32LE(0x02014b50, 0)
    central.writeUInt16LE((3 << 8) | 20, 4) // made by unix
    central.writeUInt16LE(20, 6)
    central.writeUInt16LE(0x0800, 8)
    central.writeUInt16LE(method, 10)
    central.writeUInt32LE(checksum, 16)
    central.writeUInt32LE(data.length, 20)
    central.writeUInt32LE(size, 24)
    central.writeUInt16LE(name.length, 28)
    central.writeUInt32LE((mode << 16) >>> 0, 38)
    central.writeUInt32LE(offset, 42)
    centrals.push(central, name)

    offset += local.length + name.length + data.length
  }
  const directory = Buffer.concat(centrals)
  const end = Buffer.alloc(22)
  end.writeUInt32LE(0x06054b50, 0)
  end.writeUInt16LE(members.length, 8)
  end.writeUInt16LE(members.length, 10)
  end.writeUInt32LE(directory.length, 12)
  end.writeUInt32LE(offset, 16)
  return Buffer.concat([...locals, directory, end])
}
