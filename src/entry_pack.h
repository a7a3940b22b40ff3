/*-------------------------------------------------------------------------
 *
 * entry_pack.h
 *	  Turning an encoded entry into the bytes stored in Redis (compressed,
 *	  sealed) and back, with the settings that decide it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_ENTRY_PACK_H
#define CACHE_EXT_ENTRY_PACK_H

#include "postgres.h"

#include "entry_frame.h"

/* cache_ext.compress_min_size: -1 never; else entries of at least this */
extern int cache_ext_compress_min_size;

/* cache_ext.compress_method: CE_PACK_LZ4 or CE_PACK_PGLZ */
extern int cache_ext_compress_method;

/* cache_ext.chunk_size: longer stored values are split into chunks */
extern int cache_ext_chunk_size;

/*
 * What a StoreDecodeFn returns when the chunks of an entry could not be
 * read (Redis failed half way): not decoded, a miss, not a corrupt entry.
 */
#define ENTRY_FETCH_FAILED 100

/*
 * The bytes to store in Redis under rkey for the plain entry raw (len
 * bytes): compressed when cache_ext.compress_min_size says so and it saves
 * at least an eighth, then sealed when a key is set.  Returns raw itself
 * when neither applies, else a palloc'd buffer (the caller frees it);
 * *method is the compression used (CE_PACK_NONE when none).
 */
extern char *EntryStoredForm(const char *raw, size_t len, const char *rkey,
							 size_t *outlen, uint8 *method);

/*
 * The plain entry in a stored value buf (untrusted, len bytes, a NUL
 * after it), opened when sealed (or when a key is set: then it must be)
 * and decompressed when compressed, its raw length bounded by max_raw
 * before anything is allocated for it.  Returns buf itself or a palloc'd
 * buffer with a NUL after *outlen bytes, or NULL with *why.  With owned,
 * buf is palloc'd and freed here once it is not needed (so that a large
 * entry is not held twice over).  *method (may be NULL) receives the
 * compression found.
 */
extern char *EntryFromStored(char *buf, size_t len, bool owned,
							 const char *rkey, size_t max_raw,
							 size_t *outlen, const char **why,
							 uint8 *method);

extern void EntryPackDefineGucs(void);

#endif /* CACHE_EXT_ENTRY_PACK_H */
