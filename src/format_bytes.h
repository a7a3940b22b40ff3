/*-------------------------------------------------------------------------
 *
 * format_bytes.h
 *	  What the stored formats share (entries, frames, values, sessions):
 *	  native-order 32-bit fields read and written without alignment, and
 *	  the header checksum, CRC-32C of everything but the 4 bytes at offset
 *	  12 where it is kept.  Needs only c.h and pg_crc32c, so the fuzz
 *	  targets link the formats as they are.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_FORMAT_BYTES_H
#define CACHE_EXT_FORMAT_BYTES_H

#include "port/pg_crc32c.h"

static inline uint32
ce_get_u32(const uint8 *p)
{
	uint32 v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline void
ce_put_u32(uint8 *p, uint32 v)
{
	memcpy(p, &v, sizeof(v));
}

/* CRC-32C of buf[0, 12) and buf[16, len): len >= 16 */
static inline uint32
ce_crc_but_field12(const uint8 *buf, size_t len)
{
	pg_crc32c crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, buf, 12);
	COMP_CRC32C(crc, buf + 16, len - 16);
	FIN_CRC32C(crc);
	return crc;
}

#endif /* CACHE_EXT_FORMAT_BYTES_H */
