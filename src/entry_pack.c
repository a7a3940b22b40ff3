/*-------------------------------------------------------------------------
 *
 * entry_pack.c
 *	  The stored form of an entry: compression (cache_ext.compress_min_size,
 *	  cache_ext.compress_method) and sealing on the way to Redis, opening
 *	  and decompression on the way back, and cache_ext.chunk_size, which
 *	  store_chunks.c applies.
 *
 * Compression comes before sealing (ciphertext does not compress).  That
 * lets the length of a sealed value depend on how well its plaintext
 * compresses, as in CRIME: someone who can both choose part of a cached
 * result and read the value's length in Redis may learn something of the
 * rest.  docs/store.md says when that matters; compress_min_size = -1
 * turns compression off.
 *
 * No state but the settings.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/guc.h"

#include "entry.h"
#include "entry_pack.h"
#include "keys.h"

int cache_ext_compress_min_size = 4096;
int cache_ext_chunk_size = 1024 * 1024;
#if defined(USE_LZ4) && defined(CE_HAVE_LZ4)
int cache_ext_compress_method = CE_PACK_LZ4;
#else
int cache_ext_compress_method = CE_PACK_PGLZ;
#endif

char *
EntryStoredForm(const char *raw, size_t len, const char *rkey, size_t *outlen,
				uint8 *method)
{
	const char *data = raw;
	size_t dlen = len;
	char *packed = NULL;

	*method = CE_PACK_NONE;
	if (cache_ext_compress_min_size >= 0 &&
		len >= (size_t) cache_ext_compress_min_size)
	{
		size_t cap = CePackBound(cache_ext_compress_method, len);
		size_t n;

		packed = palloc(cap);
		n = CePack(cache_ext_compress_method, (const uint8 *) raw, len,
				   (uint8 *) packed, cap);
		if (n > 0)
		{
			data = packed;
			dlen = n;
			*method = cache_ext_compress_method;
		}
		else
		{
			pfree(packed);
			packed = NULL;
		}
	}
	if (KeyEncryptionOn())
	{
		StringInfoData sealed;

		EntrySeal(data, dlen, rkey, &sealed);
		if (packed)
			pfree(packed);
		*outlen = sealed.len;
		return sealed.data;
	}
	*outlen = dlen;
	return (char *) data;
}

char *
EntryFromStored(char *buf, size_t len, bool owned, const char *rkey,
				size_t max_raw, size_t *outlen, const char **why,
				uint8 *method)
{
	char *data = buf;
	size_t dlen = len;
	uint8 m;
	uint32 raw_len;
	char *raw = NULL;

	if (method)
		*method = CE_PACK_NONE;
	if (KeyEncryptionOn() || EntryIsSealed(buf, len))
	{
		data = EntryOpen(buf, len, rkey, &dlen, why);
		if (owned)
			pfree(buf);
		if (data == NULL)
			return NULL;
		owned = true;
	}
	if (!CeIsPacked((const uint8 *) data, dlen))
	{
		*outlen = dlen;
		return data;
	}

	/* bounded before anything is allocated for it */
	*why = CePackedParse((const uint8 *) data, dlen, max_raw, &m, &raw_len);
	if (*why == NULL)
	{
		raw = palloc((Size) raw_len + 1);
		*why = CePackedUnpack((const uint8 *) data, dlen, (uint8 *) raw, raw_len);
		if (*why != NULL)
			pfree(raw);
	}
	if (owned)
		pfree(data);
	if (*why != NULL)
		return NULL;
	raw[raw_len] = '\0';
	if (method)
		*method = m;
	*outlen = raw_len;
	return raw;
}

static bool
check_compress_method(int *newval, void **extra, GucSource source)
{
	if (!CePackAvailable((uint8) *newval))
	{
		GUC_check_errdetail("This server was built without %s.",
							CePackName((uint8) *newval));
		return false;
	}
	return true;
}

static const struct config_enum_entry compress_method_options[] = {
	{"pglz", CE_PACK_PGLZ, false},
	{"lz4", CE_PACK_LZ4, false},
	{NULL, 0, false}};

/* cache_ext.compress_min_size, cache_ext.compress_method, cache_ext.chunk_size */
void
EntryPackDefineGucs(void)
{
	DefineCustomIntVariable("cache_ext.compress_min_size",
							"Entries of at least this size are stored compressed; -1 stores none compressed.",
							"Compression is kept only when it saves at least an eighth.",
							&cache_ext_compress_min_size,
							4096, -1, PG_INT32_MAX,
							PGC_SUSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomEnumVariable("cache_ext.compress_method",
							 "How entries are compressed: lz4 (where PostgreSQL was built with it) or pglz.",
							 NULL,
							 &cache_ext_compress_method,
							 cache_ext_compress_method, compress_method_options,
							 PGC_SUSET, 0,
							 check_compress_method, NULL, NULL);

	DefineCustomIntVariable("cache_ext.chunk_size",
							"Stored values longer than this are split into chunks of this size, each its own Redis key.",
							NULL,
							&cache_ext_chunk_size,
							1024 * 1024, CE_MIN_CHUNK_SIZE, CE_MAX_CHUNK_SIZE,
							PGC_SUSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);
}
