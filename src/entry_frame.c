/*-------------------------------------------------------------------------
 *
 * entry_frame.c
 *	  Compressed frames and chunks of stored entries (see entry_frame.h):
 *	  writing them, and checking and opening them as untrusted input.
 *
 * Every read is bounds-checked against the end of the buffer before it is
 * made; lengths are compared in size_t/uint64 so that none can wrap.  A
 * frame's raw length is checked against the caller's limit before the
 * caller allocates for it, and the decompressors are given exactly the
 * payload and exactly raw_len bytes of room: a lying length or a
 * decompression bomb ends as a refusal, never as a large allocation.
 *
 * LZ4 is compiled in where PostgreSQL was built with it (USE_LZ4) and its
 * header was found when building (CE_HAVE_LZ4, set by the Makefile).
 *
 *-------------------------------------------------------------------------
 */
#include "c.h"

#include "common/pg_lzcompress.h"
#include "port/pg_crc32c.h"

#if defined(USE_LZ4) && defined(CE_HAVE_LZ4)
#define CE_LZ4 1
#include <lz4.h>
#endif

#include "entry_format.h"
#include "entry_frame.h"
#include "format_bytes.h"

bool
CePackAvailable(uint8 method)
{
	if (method == CE_PACK_PGLZ)
		return true;
#ifdef CE_LZ4
	if (method == CE_PACK_LZ4)
		return true;
#endif
	return false;
}

const char *
CePackName(uint8 method)
{
	switch (method)
	{
		case CE_PACK_NONE:
			return "none";
		case CE_PACK_PGLZ:
			return "pglz";
		case CE_PACK_LZ4:
			return "lz4";
		default:
			return "unknown";
	}
}

size_t
CePackBound(uint8 method, size_t len)
{
	/* pglz may write 4 bytes past what it keeps before it gives up */
	return CE_PACK_OVERHEAD + PGLZ_MAX_OUTPUT(len);
}

size_t
CePack(uint8 method, const uint8 *raw, size_t len, uint8 *out, size_t outcap)
{
	uint32 magic = CE_ENTRY_MAGIC;
	size_t keep;
	size_t clen = 0;
	uint32 total;
	uint32 crc;

	/* worth it only when it saves an eighth, frame included */
	if (len < CE_HEADER_SIZE || len > PG_INT32_MAX - 64 ||
		outcap < CePackBound(method, len) || !CePackAvailable(method))
		return 0;
	keep = len - len / 8;
	if (keep <= CE_PACK_OVERHEAD)
		return 0;
	keep -= CE_PACK_OVERHEAD;

	if (method == CE_PACK_PGLZ)
	{
		int32 n = pglz_compress((const char *) raw, (int32) len,
								(char *) out + CE_PACK_HEADER,
								PGLZ_strategy_default);

		clen = n > 0 ? (size_t) n : 0;
	}
#ifdef CE_LZ4
	else if (method == CE_PACK_LZ4)
	{
		/* no room past keep: LZ4 gives up (0) rather than write more */
		int n = LZ4_compress_default((const char *) raw,
									 (char *) out + CE_PACK_HEADER,
									 (int) len, (int) keep);

		clen = n > 0 ? (size_t) n : 0;
	}
#endif
	if (clen == 0 || clen > keep)
		return 0;

	total = (uint32) (CE_PACK_HEADER + clen + CE_PACK_TRAILER);
	memset(out, 0, CE_PACK_HEADER);
	memcpy(out, &magic, 4);
	out[4] = CE_ENTRY_VERSION;
	out[5] = method;
	ce_put_u32(out + 8, total);
	ce_put_u32(out + 16, (uint32) len);
	memset(out + CE_PACK_HEADER + clen, 0, CE_PACK_TRAILER);
	crc = CeEntryChecksum(out, total);
	ce_put_u32(out + 12, crc);
	return total;
}

bool
CeIsPacked(const uint8 *buf, size_t len)
{
	return len >= CE_HEADER_SIZE && ce_get_u32(buf) == CE_ENTRY_MAGIC &&
		buf[4] == CE_ENTRY_VERSION && buf[5] != 0;
}

const char *
CePackedParse(const uint8 *buf, size_t len, size_t max_raw, uint8 *method,
			  uint32 *raw_len)
{
	uint32 raw;

	if (len < CE_PACK_OVERHEAD + 1)
		return "compressed entry shorter than its header";
	if (ce_get_u32(buf) != CE_ENTRY_MAGIC || buf[4] != CE_ENTRY_VERSION)
		return "bad magic number";
	if (buf[5] != CE_PACK_PGLZ && buf[5] != CE_PACK_LZ4)
		return "unsupported entry flags";
	if (buf[6] != 0 || buf[7] != 0 || ce_get_u32(buf + 20) != 0)
		return "nonzero padding in a compressed entry";
	if (ce_get_u32(buf + 8) != len)
		return "entry length does not match its header";
	if (ce_get_u32(buf + len - CE_PACK_TRAILER) != 0)
		return "nonzero trailer in a compressed entry";
	if (ce_get_u32(buf + 12) != CeEntryChecksum(buf, len))
		return "checksum mismatch";
	raw = ce_get_u32(buf + 16);
	if (raw < CE_HEADER_SIZE)
		return "compressed entry too short to hold an entry";
	if ((size_t) raw > max_raw)
		return "compressed entry would decompress past cache_ext.max_entry_size";
	if (!CePackAvailable(buf[5]))
		return "entry compressed with a method this server was built without";
	*method = buf[5];
	*raw_len = raw;
	return NULL;
}

const char *
CePackedUnpack(const uint8 *buf, size_t len, uint8 *out, uint32 raw_len)
{
	const char *src = (const char *) buf + CE_PACK_HEADER;
	size_t slen = len - CE_PACK_OVERHEAD;

	if (slen > PG_INT32_MAX || raw_len > PG_INT32_MAX)
		return "compressed entry too large";
	if (buf[5] == CE_PACK_PGLZ)
	{
		/* check_complete: all of the input, exactly raw_len out */
		if (pglz_decompress(src, (int32) slen, (char *) out, (int32) raw_len,
							true) != (int32) raw_len)
			return "compressed entry does not decompress";
		return NULL;
	}
#ifdef CE_LZ4
	if (buf[5] == CE_PACK_LZ4)
	{
		/* LZ4_decompress_safe fails on input that does not end a block */
		if (LZ4_decompress_safe(src, (char *) out, (int) slen, (int) raw_len) !=
			(int) raw_len)
			return "compressed entry does not decompress";
		return NULL;
	}
#endif
	return "entry compressed with a method this server was built without";
}

static uint32
head_crc(const uint8 *buf)
{
	pg_crc32c crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, buf, 44);
	FIN_CRC32C(crc);
	return crc;
}

uint32
CeGensChecksumInit(void)
{
	pg_crc32c crc;

	INIT_CRC32C(crc);
	return crc;
}

uint32
CeGensChecksumAdd(uint32 crc, const uint8 *val, uint8 len)
{
	pg_crc32c c = crc;

	COMP_CRC32C(c, &len, 1);
	COMP_CRC32C(c, val, len);
	return c;
}

uint32
CeGensChecksumEnd(uint32 crc)
{
	pg_crc32c c = crc;

	FIN_CRC32C(c);
	return c;
}

uint32
CeEntryGensChecksum(const uint8 *entry, size_t len)
{
	pg_crc32c crc;
	uint32 gens_len = ce_get_u32(entry + 44);

	INIT_CRC32C(crc);
	if ((size_t) gens_len <= len - CE_HEADER_SIZE)
		COMP_CRC32C(crc, entry + CE_HEADER_SIZE, gens_len);
	FIN_CRC32C(crc);
	return crc;
}

bool
CeIsChunkHead(const uint8 *buf, size_t len)
{
	return len >= 4 && ce_get_u32(buf) == CE_CHUNK_HEAD_MAGIC;
}

const char *
CeChunkHeadParse(const uint8 *buf, size_t len, size_t max_total,
				 CeChunkHead *h)
{
	uint64 total;
	uint32 n;
	uint32 size;

	if (len != CE_CHUNK_HEAD_LEN || ce_get_u32(buf) != CE_CHUNK_HEAD_MAGIC)
		return "malformed chunk head";
	if (buf[4] != 1 || buf[5] != 0 || buf[6] != 0 || buf[7] != 0)
		return "malformed chunk head";
	if (ce_get_u32(buf + 44) != head_crc(buf))
		return "chunk head checksum mismatch";
	n = ce_get_u32(buf + 8);
	size = ce_get_u32(buf + 12);
	memcpy(&total, buf + 16, 8);
	if (n < 1 || n > CE_MAX_CHUNKS || size < CE_MIN_CHUNK_SIZE ||
		size > CE_MAX_CHUNK_SIZE)
		return "chunk head out of range";
	if (total == 0 || total > (uint64) max_total)
		return "chunked entry larger than cache_ext.max_entry_size";
	if ((total + size - 1) / size != n)
		return "chunk count does not match the length";
	h->nchunks = n;
	h->chunk_size = size;
	h->total_len = total;
	memcpy(h->setid, buf + 24, CE_CHUNK_SETID_LEN);
	h->gens_crc = ce_get_u32(buf + 40);
	return NULL;
}

void
CeChunkHeadWrite(const CeChunkHead *h, uint8 *out)
{
	uint32 magic = CE_CHUNK_HEAD_MAGIC;

	memset(out, 0, CE_CHUNK_HEAD_LEN);
	memcpy(out, &magic, 4);
	out[4] = 1;
	ce_put_u32(out + 8, h->nchunks);
	ce_put_u32(out + 12, h->chunk_size);
	memcpy(out + 16, &h->total_len, 8);
	memcpy(out + 24, h->setid, CE_CHUNK_SETID_LEN);
	ce_put_u32(out + 40, h->gens_crc);
	ce_put_u32(out + 44, head_crc(out));
}

uint32
CeChunkPayloadLen(const CeChunkHead *h, uint32 i)
{
	uint64 start = (uint64) i * h->chunk_size;

	if (i >= h->nchunks || start >= h->total_len)
		return 0;
	return (uint32) Min((uint64) h->chunk_size, h->total_len - start);
}

static uint32
chunk_crc(const uint8 *header, const uint8 *payload, uint32 plen)
{
	pg_crc32c crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, header, 28);
	COMP_CRC32C(crc, payload, plen);
	FIN_CRC32C(crc);
	return crc;
}

void
CeChunkHeaderWrite(const CeChunkHead *h, uint32 i, const uint8 *payload,
				   uint8 *out)
{
	uint32 magic = CE_CHUNK_MAGIC;
	uint32 plen = CeChunkPayloadLen(h, i);

	memcpy(out, &magic, 4);
	ce_put_u32(out + 4, i);
	memcpy(out + 8, h->setid, CE_CHUNK_SETID_LEN);
	ce_put_u32(out + 24, plen);
	ce_put_u32(out + 28, chunk_crc(out, payload, plen));
}

const char *
CeChunkCheck(const CeChunkHead *h, uint32 i, const uint8 *buf, size_t len)
{
	uint32 plen = CeChunkPayloadLen(h, i);

	if (len < CE_CHUNK_HEADER || ce_get_u32(buf) != CE_CHUNK_MAGIC)
		return "malformed chunk";
	if (ce_get_u32(buf + 4) != i)
		return "chunk out of place";
	if (memcmp(buf + 8, h->setid, CE_CHUNK_SETID_LEN) != 0)
		return "chunk of another entry";
	if (plen == 0 || ce_get_u32(buf + 24) != plen ||
		len - CE_CHUNK_HEADER != (size_t) plen)
		return "chunk length does not match its head";
	if (ce_get_u32(buf + 28) != chunk_crc(buf, buf + CE_CHUNK_HEADER, plen))
		return "chunk checksum mismatch";
	return NULL;
}
