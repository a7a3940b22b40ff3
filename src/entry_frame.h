/*-------------------------------------------------------------------------
 *
 * entry_frame.h
 *	  The frames around a stored entry: compressed entries, and the head and
 *	  chunks of an entry stored in several Redis keys.
 *
 * A value cache_ext stores is built in layers (docs/store.md, "Compression
 * and chunks"):
 *
 *	 plain entry (entry_format.h, flags 0)
 *	   -> compressed frame, when it saves at least an eighth (below)
 *	   -> sealed (AES-256-GCM, entry_format.h), when a key is set
 *	   -> split into chunks, when longer than cache_ext.chunk_size (below)
 *
 * and read back in the reverse order.  Like entry_format.c, entry_frame.c
 * allocates nothing and needs nothing from a backend (pg_crc32c, and the
 * decompressors of libpgcommon and liblz4), so the fuzz target
 * (test/fuzz/fuzz_frame.c) links it directly.
 *
 * Compressed frame (native byte order):
 *
 *	 0 uint32 magic			 "CXE1", as a plain entry
 *	 4 uint8  version		 CE_ENTRY_VERSION
 *	 5 uint8  flags			 the method: CE_PACK_PGLZ or CE_PACK_LZ4 (a plain
 *							 entry has 0 here, so a reader that knows no
 *							 frames refuses this one as "unsupported entry
 *							 flags": never misread)
 *	 6 uint16 zero
 *	 8 uint32 total_len		 the length of the whole frame
 *	12 uint32 crc			 CRC-32C of bytes [0,12) and [16,total_len), as
 *							 for an entry
 *	16 uint32 raw_len		 the length of the plain entry inside, at least
 *							 CE_HEADER_SIZE, at most the reader's limit
 *							 (cache_ext.max_entry_size), checked before
 *							 anything is allocated for it
 *	20 uint32 zero
 *	24 the compressed bytes of one plain entry; decompressing them must give
 *	   exactly raw_len bytes, using exactly these bytes
 *	   then uint32 zero (a trailer: pglz may look two bytes past its input
 *	   on corrupt data before it notices)
 *
 * Chunk head: the value under the entry's own key when the stored bytes
 * were split.
 *
 *	 0 uint32 magic			 "CXC1"
 *	 4 uint8  version		 1
 *	 5 uint8[3] zero
 *	 8 uint32 nchunks		 1..CE_MAX_CHUNKS
 *	12 uint32 chunk_size	 payload bytes of every chunk but the last,
 *							 CE_MIN_CHUNK_SIZE..CE_MAX_CHUNK_SIZE
 *	16 uint64 total_len		 payload bytes of all chunks: nchunks is
 *							 exactly ceil(total_len / chunk_size)
 *	24 uint8[16] set id		 random, fresh for every store; the chunk keys
 *							 are named after it (store_chunks.c)
 *	40 uint32 gens_crc		 CRC-32C of the generations section of the
 *							 entry inside (entry_format.h), so that a lookup
 *							 whose generations differ knows the entry is
 *							 stale without reading its chunks
 *	44 uint32 crc			 CRC-32C of bytes [0,44)
 *
 * Chunk i (its own key, 0 <= i < nchunks):
 *
 *	 0 uint32 magic			 "CXK1"
 *	 4 uint32 index			 i
 *	 8 uint8[16] set id		 the head's: a chunk of another entry, or of an
 *							 earlier store of this one, is foreign
 *	24 uint32 payload_len	 chunk_size, or what is left for the last
 *	28 uint32 crc			 CRC-32C of bytes [0,28) and the payload
 *	32 the payload
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_ENTRY_FRAME_H
#define CACHE_EXT_ENTRY_FRAME_H

#include "c.h"

/* compression methods (the flags byte of a compressed frame) */
#define CE_PACK_NONE	 0
#define CE_PACK_PGLZ	 1
#define CE_PACK_LZ4		 2
#define CE_PACK_HEADER	 24
#define CE_PACK_TRAILER	 4
#define CE_PACK_OVERHEAD (CE_PACK_HEADER + CE_PACK_TRAILER)

#define CE_CHUNK_HEAD_MAGIC 0x31435843 /* "CXC1" read as little-endian */
#define CE_CHUNK_MAGIC		0x314B5843 /* "CXK1" read as little-endian */
#define CE_CHUNK_HEAD_LEN	48
#define CE_CHUNK_HEADER		32
#define CE_CHUNK_SETID_LEN	16
#define CE_MAX_CHUNKS		65536
#define CE_MIN_CHUNK_SIZE	1024
#define CE_MAX_CHUNK_SIZE	(64 * 1024 * 1024)

/* Whether this build can compress and decompress with method. */
extern bool CePackAvailable(uint8 method);

/* The method's name ("pglz", "lz4"), or "unknown". */
extern const char *CePackName(uint8 method);

/*
 * Room CePack needs in out for len bytes of entry (more than the frame it
 * keeps: pglz needs slack while it works).
 */
extern size_t CePackBound(uint8 method, size_t len);

/*
 * Compress the plain entry raw (len bytes) with method into out (outcap
 * bytes, at least CePackBound).  Returns the frame's length, or 0 when it
 * would not save at least an eighth of len (or the method is unavailable):
 * then store raw as it is.
 */
extern size_t CePack(uint8 method, const uint8 *raw, size_t len, uint8 *out,
					 size_t outcap);

/* Whether buf begins like a compressed frame (to be parsed). */
extern bool CeIsPacked(const uint8 *buf, size_t len);

/*
 * Check a compressed frame's header, trailer and checksum.  Returns NULL
 * with *method and *raw_len (<= max_raw), or a static reason.
 */
extern const char *CePackedParse(const uint8 *buf, size_t len, size_t max_raw,
								 uint8 *method, uint32 *raw_len);

/*
 * Decompress a frame CePackedParse accepted into out (raw_len bytes).
 * Returns NULL when exactly raw_len bytes came out of exactly the frame's
 * payload, else a static reason (out then holds garbage).
 */
extern const char *CePackedUnpack(const uint8 *buf, size_t len, uint8 *out,
								  uint32 raw_len);

/* A chunked value's head, parsed. */
typedef struct CeChunkHead
{
	uint32 nchunks;
	uint32 chunk_size;
	uint64 total_len;
	uint8 setid[CE_CHUNK_SETID_LEN];
	uint32 gens_crc;
} CeChunkHead;

/*
 * CRC-32C of a generations section (entry_format.h): a uint8 length and
 * the bytes of each value.  Start with CeGensChecksumInit, add each value
 * with CeGensChecksumAdd, finish with CeGensChecksumEnd.
 */
extern uint32 CeGensChecksumInit(void);
extern uint32 CeGensChecksumAdd(uint32 crc, const uint8 *val, uint8 len);
extern uint32 CeGensChecksumEnd(uint32 crc);

/*
 * The gens_crc of a plain entry (len bytes, at least its header): of its
 * generations section, or of none when the section runs past len.
 */
extern uint32 CeEntryGensChecksum(const uint8 *entry, size_t len);

extern bool CeIsChunkHead(const uint8 *buf, size_t len);

/*
 * Parse a head (untrusted) whose total_len may be at most max_total.
 * Returns NULL or a static reason.
 */
extern const char *CeChunkHeadParse(const uint8 *buf, size_t len,
									size_t max_total, CeChunkHead *h);

/* Write the head of h into out (CE_CHUNK_HEAD_LEN bytes). */
extern void CeChunkHeadWrite(const CeChunkHead *h, uint8 *out);

/* The payload length of chunk i of h. */
extern uint32 CeChunkPayloadLen(const CeChunkHead *h, uint32 i);

/*
 * Write the header of chunk i (CE_CHUNK_HEADER bytes) for its payload,
 * CeChunkPayloadLen(h, i) bytes.
 */
extern void CeChunkHeaderWrite(const CeChunkHead *h, uint32 i,
							   const uint8 *payload, uint8 *out);

/*
 * Check chunk i of h (untrusted, len bytes): its magic, index, set id,
 * length and checksum.  Returns NULL (the payload is at buf +
 * CE_CHUNK_HEADER) or a static reason.
 */
extern const char *CeChunkCheck(const CeChunkHead *h, uint32 i,
								const uint8 *buf, size_t len);

#endif /* CACHE_EXT_ENTRY_FRAME_H */
