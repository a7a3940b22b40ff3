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
 *	 3 uint16 npat: the number of generations pattern bytes that follow
 *	 5 uint8  gsel, 6 uint16 gbig: the length glen of the generations section,
 *			  gsel bytes when gsel < 255, else gbig + 1 bytes (1..65536, so
 *			  that the one length just past the limit is reachable); the
 *			  header's gens_len says exactly glen.  Random bytes thus rarely
 *			  make a long section (each costs a checksum over it), and an
 *			  entry read as a payload (flags 0 at offset 5) makes none.
 *	 8 npat pattern bytes (fewer if the input ends first); the section is the
 *	   pattern repeated until it fills glen bytes (zeros if it is empty), so
 *	   a short input can describe a section of any length, well-formed when
 *	   the pattern is a whole number of values and glen a multiple of it
 *	   then natts codec bytes, each taken modulo CE_CODEC_LAST + 2 (0 and
 *	   CE_CODEC_LAST + 1 are invalid codecs)
 *	   then the row bytes, copied verbatim after the descriptors
 */
#define SYNTH_PREFIX	8
#define SYNTH_NROWS_MAX ((int8) 0x7f)
#define SYNTH_GSEL_BIG	255

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
	uint32 v;

	memcpy(&v, p, 4);
	return v;
}

/*
 * Reflected CRC-32C (Castagnoli, 0x82F63B78), table driven, eight bytes at a
 * time (slicing-by-8, little-endian host).  The update loop is left out of
 * the fuzzer's coverage instrumentation: its comparisons tell the fuzzer
 * nothing, and tracing them made the checksum of a 64 kB entry cost more
 * than everything else done with it.
 */
#if defined(__clang__)
#define FZ_NO_COVERAGE __attribute__((noinline, no_sanitize("coverage")))
#else
#define FZ_NO_COVERAGE
#endif

static uint32 fz_crc_table[8][256];

static inline void
fz_crc_init(void)
{
	for (uint32 i = 0; i < 256; i++)
	{
		uint32 c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		fz_crc_table[0][i] = c;
	}
	for (int t = 1; t < 8; t++)
		for (uint32 i = 0; i < 256; i++)
		{
			uint32 prev = fz_crc_table[t - 1][i];

			fz_crc_table[t][i] = (prev >> 8) ^ fz_crc_table[0][prev & 0xff];
		}
}

static FZ_NO_COVERAGE uint32
fz_crc_update(uint32 crc, const uint8 *p, size_t n)
{
	while (n >= 8)
	{
		uint32 lo = crc ^ ((uint32) p[0] | (uint32) p[1] << 8 | (uint32) p[2] << 16 | (uint32) p[3] << 24);
		uint32 hi = (uint32) p[4] | (uint32) p[5] << 8 |
			(uint32) p[6] << 16 | (uint32) p[7] << 24;

		crc = fz_crc_table[7][lo & 0xff] ^ fz_crc_table[6][(lo >> 8) & 0xff] ^
			fz_crc_table[5][(lo >> 16) & 0xff] ^ fz_crc_table[4][lo >> 24] ^
			fz_crc_table[3][hi & 0xff] ^ fz_crc_table[2][(hi >> 8) & 0xff] ^
			fz_crc_table[1][(hi >> 16) & 0xff] ^ fz_crc_table[0][hi >> 24];
		p += 8;
		n -= 8;
	}
	for (size_t i = 0; i < n; i++)
		crc = fz_crc_table[0][(crc ^ p[i]) & 0xff] ^ (crc >> 8);
	return crc;
}

/* The entry checksum as the header documents it, computed independently. */
static inline uint32
fz_entry_crc(const uint8 *buf, size_t len)
{
	uint32 crc = 0xFFFFFFFFu;

	crc = fz_crc_update(crc, buf, 12);
	crc = fz_crc_update(crc, buf + 16, len - 16);
	return crc ^ 0xFFFFFFFFu;
}

/* The generations section length of a synthetic payload (see above). */
static inline uint32
fz_synth_glen(const uint8 *payload)
{
	uint16 big;

	if (payload[5] != SYNTH_GSEL_BIG)
		return payload[5];
	memcpy(&big, payload + 6, 2);
	return (uint32) big + 1;
}

/* Encode glen (0..CE_MAX_GENS_LEN + 1) into a synthetic payload's prefix. */
static inline void
fz_synth_set_glen(uint8 *payload, uint32 glen)
{
	if (glen < SYNTH_GSEL_BIG)
	{
		payload[5] = (uint8) glen;
		put_u16(payload + 6, 0);
	}
	else
	{
		payload[5] = SYNTH_GSEL_BIG;
		put_u16(payload + 6, (uint16) (glen - 1));
	}
}

/*
 * Fill glen bytes at dst with the npat-byte pattern repeated (with zeros when
 * the pattern is empty): the generations section of a synthetic payload.
 * What is filled so far is copied onto the rest, doubling each time.
 */
static FZ_NO_COVERAGE void
fz_fill_gens(uint8 *dst, size_t glen, const uint8 *pat, size_t npat)
{
	size_t done;

	if (npat == 0)
	{
		memset(dst, 0, glen);
		return;
	}
	done = Min(npat, glen);
	memcpy(dst, pat, done);
	while (done < glen)
	{
		size_t n = Min(done, glen - done);

		memcpy(dst + done, dst, n);
		done += n;
	}
}

/*
 * Fill in a 48-byte header for an entry of total_len bytes whose generations
 * section (gens_len bytes, the value written at offset 44 whatever is really
 * there), descriptors and rows are already in place, including the checksum.
 */
static inline void
fz_finish_header(uint8 *buf, size_t total_len, uint16 natts, uint32 nrows,
				 uint32 gens_len, int64 created_at, uint8 fp_seed)
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
	put_u32(buf + 44, gens_len);
	put_u32(buf + 12, CeEntryChecksum(buf, total_len));
}

#endif /* CE_FUZZ_COMMON_H */
