/*-------------------------------------------------------------------------
 *
 * fuzz_common.h
 *	  Helpers shared by the entry fuzz target and the seed generator.
 *
 * An independent software CRC-32C (so CeEntryChecksum is itself checked
 * against the standard), little writers, and the "synthetic" payload format
 * that the fuzz target's second mode turns into a well-formed entry.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_FUZZ_COMMON_H
#define CE_FUZZ_COMMON_H

#include "c.h"

#include "entry_format.h"

/*
 * Synthetic payload (mode "synth" of fuzz_entry.c):
 *
 *	 0 uint16 natts (native order), taken modulo CE_MAX_ATTS + 2 so that the
 *			  one value just past the limit is reachable
 *	 2 int8	  nrows delta: nrows = (complete rows in the row bytes) + delta,
 *			  clamped to [0, UINT32_MAX]; SYNTH_NROWS_MAX means UINT32_MAX
 *	 3 natts codec bytes, each taken modulo 10 (0 and 9 are invalid codecs)
 *	   then the row bytes, copied verbatim after the descriptors
 */
#define SYNTH_PREFIX		3
#define SYNTH_NROWS_MAX		((int8) 0x7f)

static inline void
put_u16(uint8 *p, uint16 v)
{
	memcpy(p, &v, 2);
}

static inline void
put_u32(uint8 *p, uint32 v)
{
	memcpy(p, &v, 4);
}

static inline uint32
rd_u32(const uint8 *p)
{
	uint32		v;

	memcpy(&v, p, 4);
	return v;
}

/* Reflected CRC-32C (Castagnoli, 0x82F63B78), table driven. */
static uint32 fz_crc_table[256];

static inline void
fz_crc_init(void)
{
	for (uint32 i = 0; i < 256; i++)
	{
		uint32		c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		fz_crc_table[i] = c;
	}
}

static inline uint32
fz_crc_update(uint32 crc, const uint8 *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		crc = fz_crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
	return crc;
}

/* The entry checksum as the header documents it, computed independently. */
static inline uint32
fz_entry_crc(const uint8 *buf, size_t len)
{
	uint32		crc = 0xFFFFFFFFu;

	crc = fz_crc_update(crc, buf, 12);
	crc = fz_crc_update(crc, buf + 16, len - 16);
	return crc ^ 0xFFFFFFFFu;
}

/*
 * Fill in a 48-byte header for an entry of total_len bytes whose descriptors
 * and rows are already in place, including the checksum.
 */
static inline void
fz_finish_header(uint8 *buf, size_t total_len, uint16 natts, uint32 nrows,
				 int64 created_at, uint8 fp_seed)
{
	put_u32(buf, CE_ENTRY_MAGIC);
	buf[4] = CE_ENTRY_VERSION;
	buf[5] = 0;
	put_u16(buf + 6, natts);
	put_u32(buf + 8, (uint32) total_len);
	put_u32(buf + 12, 0);
	for (int i = 0; i < CE_FINGERPRINT_LEN; i++)
		buf[16 + i] = (uint8) (fp_seed + i * 37);
	memcpy(buf + 32, &created_at, 8);
	put_u32(buf + 40, nrows);
	put_u32(buf + 44, 0);
	put_u32(buf + 12, CeEntryChecksum(buf, total_len));
}

#endif							/* CE_FUZZ_COMMON_H */
