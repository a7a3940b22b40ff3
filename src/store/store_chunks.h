/*-------------------------------------------------------------------------
 *
 * store_chunks.h
 *	  Entries stored in several Redis keys: a head under the entry's key
 *	  and chunks beside it (formats in entry_frame.h, operations in
 *	  store_chunks.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_STORE_CHUNKS_H
#define CACHE_EXT_STORE_CHUNKS_H

#include "c.h"

/*
 * Store data (len bytes, already compressed and sealed as it is to be)
 * under rkey as a head and ceil(len / chunk_size) chunks, the chunks first
 * (pipelined, a few MB per round trip) and the head last, once every
 * chunk was taken; the head records gens_crc (CeEntryGensChecksum of the
 * entry inside).  The chunks of an earlier store of rkey are given a short
 * expiry.  Returns NULL, or why it was not stored (palloc'd).
 */
extern char *StorePutChunked(const char *rkey, const char *data, size_t len,
							 int64 ttl_ms, size_t chunk_size,
							 uint32 gens_crc);

typedef enum StoreChunksResult
{
	STORE_CHUNKS_OK,	  /* joined */
	STORE_CHUNKS_CORRUPT, /* a bad head, a chunk missing, foreign, out of
							 * place or damaged (*why): deleted */
	STORE_CHUNKS_DOWN,	  /* Redis failed while reading them */
	STORE_CHUNKS_STALE	  /* the head's gens_crc is not the expected one:
							 * nothing was read */
} StoreChunksResult;

/*
 * head (hlen bytes, untrusted) was read under rkey: fetch its chunks and
 * join their payloads into *out (palloc'd, a NUL after *outlen bytes),
 * refusing a head whose total exceeds max_total before allocating.  The
 * replies of at most a few MB of chunks are held at a time beside *out.
 * A corrupt entry's head and chunks are deleted when delete_corrupt.
 * With gens_crc, a head recording another is STALE before any chunk is
 * read or anything allocated.
 */
extern StoreChunksResult StoreReadChunks(const char *rkey, const char *head,
										 size_t hlen, size_t max_total,
										 const uint32 *gens_crc,
										 bool delete_corrupt, char **out,
										 size_t *outlen, const char **why);

/*
 * Delete rkey and, when head (hlen bytes) is a chunk head, its chunks;
 * best effort.
 */
extern void StoreDeleteChunked(const char *rkey, const char *head,
							   size_t hlen);

#endif /* CACHE_EXT_STORE_CHUNKS_H */
