// Helia's side of the IPFS interop tests (sync/tests/ipfs_helia.rs).
//   node interop.mjs cid FILE            root CID of FILE, imported like `ipfs add --cid-version=1`
//   node interop.mjs export FILE CAR     FILE imported the same way, written as a CAR v1; prints the root
//   node interop.mjs cat CAR OUT         the file whose root the CAR names, read by @helia/unixfs, to OUT
import { createReadStream, createWriteStream } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { CarWriter, CarReader } from '@ipld/car'
import { unixfs } from '@helia/unixfs'

// Kubo's defaults for `ipfs add --cid-version=1`.
const KUBO = {
  cidVersion: 1,
  rawLeaves: true,
  reduceSingleLeafToSelf: true,
  chunker: fixedSize({ chunkSize: 262144 }),
  layout: balanced({ maxChildrenPerNode: 174 }),
  wrapWithDirectory: false,
}

async function importFile (path, blockstore) {
  let root
  for await (const entry of importer([{ content: createReadStream(path) }], blockstore, KUBO)) {
    root = entry.cid
  }
  return root
}

// Records every block put, in order, so they can be written to a CAR.
class RecordingStore extends MemoryBlockstore {
  constructor () { super(); this.order = [] }
  async put (cid, bytes) { this.order.push([cid, bytes]); return super.put(cid, bytes) }
}

const [cmd, a, b] = process.argv.slice(2)
if (cmd === 'cid') {
  console.log((await importFile(a, new MemoryBlockstore())).toString())
} else if (cmd === 'export') {
  const store = new RecordingStore()
  const root = await importFile(a, store)
  const { writer, out } = CarWriter.create([root])
  const done = new Promise((resolve, reject) => {
    Readable.from(out).pipe(createWriteStream(b)).on('finish', resolve).on('error', reject)
  })
  for (const [cid, bytes] of store.order) await writer.put({ cid, bytes })
  await writer.close()
  await done
  console.log(root.toString())
} else if (cmd === 'cat') {
  const reader = await CarReader.fromBytes(await readFile(a))
  const [root] = await reader.getRoots()
  const blockstore = new MemoryBlockstore()
  for await (const { cid, bytes } of reader.blocks()) await blockstore.put(cid, bytes)
  const fs = unixfs({ blockstore })
  const chunks = []
  for await (const chunk of fs.cat(root)) chunks.push(chunk)
  await writeFile(b, Buffer.concat(chunks))
  console.log(root.toString())
} else {
  console.error('usage: interop.mjs cid FILE | export FILE CAR | cat CAR OUT')
  process.exit(2)
}
