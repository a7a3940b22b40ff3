/*-------------------------------------------------------------------------
 *
 * fuzz_entry.c
 *	  libFuzzer target for the stored-entry decoder (src/entry_format.c).
 *
 * Every input is tried three ways:
 *
 *	raw		the input as it came from Redis: CeEntryParse(input).
 *	fixup	if the input has at least 16 bytes, a copy with total_len and the
 *			checksum rewritten to be right, so that mutated seeds get past the
 *			checksum and reach the generations, descriptor and row checks.
 *	synth	the input read as a compact description (fuzz_common.h: natts, an
 *			nrows delta, a generations section given as a length and a
 *			repeated pattern, codec bytes, then raw row bytes) from which a
 *			correct header and descriptors are built; nrows is set from the
 *			number of complete rows the row bytes hold, give or take the
 *			delta, so most inputs are accepted or fail deep inside the
 *			generations section or the row walk.  The pattern lets a short
 *			input reach sections of up to CE_MAX_GENS_LEN + 1 bytes.
 *
 * Two oracles:
 *
 *	- When the parser accepts, consume() walks the entry the way a consumer
 *	  (EntryDecode in src/entry.c) does, using only the view: the ngens
 *	  generation values, every column descriptor through CeEntryColumn, every
 *	  row bitmap and every value, re-deriving the positions.  Each step is
 *	  bounds-checked against view->buf + view->len (and the generations
 *	  against view->gens + view->gens_len) and aborts if the parser let
 *	  something through that would take a consumer out of bounds (or leave
 *	  bytes unread).
 *	  Every buffer is allocated at its exact size, so ASan also catches any
 *	  out-of-bounds read inside the parser itself.
 *
 *	- ref_validate() is an independent reading of the layout documented in
 *	  entry_format.h, version 2 (with its own software CRC-32C and its own
 *	  walk of the generations section).  The parser's verdict must equal it:
 *	  accepting something the spec rejects, or rejecting a well-formed entry,
 *	  aborts; when both accept, the view's generations section (where it is,
 *	  gens_len, ngens) and the positions of the descriptors and rows must be
 *	  the ones the reference found.
 *
 *-------------------------------------------------------------------------
 */
#include "c.h"

#include <stdio.h>
#include <stdlib.h>

#include "entry_format.h"
#include "fuzz_common.h"

#define FZ_NAME "fuzz_entry"
#include "fuzz_check.h"

/* keeps the consumer's reads from being optimised away */
static volatile uint32 sink;

/* ---- independent reference validator ------------------------------------ */

static int
ref_width(uint8 codec)
{
	switch (codec)
	{
		case CE_CODEC_FIXED1:
			return 1;
		case CE_CODEC_FIXED2:
			return 2;
		case CE_CODEC_FIXED4:
			return 4;
		case CE_CODEC_FIXED8:
			return 8;
		case CE_CODEC_TEXT:
		case CE_CODEC_BYTES:
		case CE_CODEC_BINARY:
		case CE_CODEC_TEXTIO:
		case CE_CODEC_NUMERIC:
			return 0;
		default:
			return -1;
	}
}

/*
 * An independent reading of numeric's stored form: specials are exactly
 * 0xC000, 0xD000 or 0xF000 alone; otherwise a 2-byte (short, 0x8000 set) or
 * 4-byte header followed by whole int16 digits in 0..9999.
 */
static int
ref_numeric_ok(const uint8 *p, uint64 len)
{
	uint16 h;
	uint64 hdr;

	if (len < 2)
		return 0;
	h = (uint16) (p[0] | (p[1] << 8)); /* little-endian, as on x86-64 */
	if (h >= 0xC000)
		return len == 2 && (h == 0xC000 || h == 0xD000 || h == 0xF000);
	hdr = (h & 0x8000) ? 2 : 4;
	if (len < hdr || ((len - hdr) & 1))
		return 0;
	for (uint64 o = hdr; o < len; o += 2)
	{
		int d = (int16) (p[o] | (p[o + 1] << 8));

		if (d < 0 || d > 9999)
			return 0;
	}
	return 1;
}

/*
 * Walk at most maxrows well-formed rows from rows[0..n).  Returns how many
 * complete, well-formed rows were found; *consumed is where the last of them
 * ends.
 */
static uint64
ref_rows(const uint8 *codecs, int natts, const uint8 *rows, uint64 n,
		 uint64 maxrows, uint64 *consumed)
{
	uint64 bml = ((uint64) natts + 8) / 8;
	uint64 off = 0;
	uint64 r;

	for (r = 0; r < maxrows; r++)
	{
		uint64 o = off;
		const uint8 *bm;
		bool ok = true;

		if (n - o < bml)
			break;
		bm = rows + o;
		o += bml;
		for (uint64 bit = natts; bit < bml * 8; bit++)
		{
			if ((bm[bit >> 3] >> (bit & 7)) & 1)
			{
				ok = false;
				break;
			}
		}
		for (int i = 0; ok && i < natts; i++)
		{
			int w;
			uint32 vl;

			if ((bm[i >> 3] >> (i & 7)) & 1)
				continue;
			w = ref_width(codecs[i]);
			if (w < 0)
				ok = false;
			else if (w > 0)
			{
				if (n - o < (uint64) w)
					ok = false;
				else
					o += w;
			}
			else if (n - o < 4)
				ok = false;
			else
			{
				vl = rd_u32(rows + o);
				o += 4;
				if (vl > CE_MAX_VALUE_LEN || n - o < vl)
					ok = false;
				else if (codecs[i] == CE_CODEC_NUMERIC && !ref_numeric_ok(rows + o, vl))
					ok = false;
				else
					o += vl;
			}
		}
		if (!ok)
			break;
		off = o;
	}
	*consumed = off;
	return r;
}

/* What the reference reading found in an entry it accepts. */
typedef struct RefResult
{
	uint64 gens_off; /* where the generations section starts */
	uint64 gens_len;
	uint64 ngens;
	uint64 columns_off; /* where the column descriptors start */
	uint64 rows_off;	/* where the first row starts */
} RefResult;

/*
 * The generations section as documented: gens_len (at most 65535) bytes at
 * offset 48, all inside the entry, made of values that are each a length
 * byte of 1..255 and that many bytes, the last one ending exactly at
 * gens_len.  Returns the number of values, or -1 when malformed.
 */
static int64
ref_gens(const uint8 *buf, uint64 len, uint64 gens_len)
{
	uint64 pos = 0;
	int64 count = 0;

	if (gens_len > 65535)
		return -1;
	if (len < 48 || len - 48 < gens_len)
		return -1;
	while (pos != gens_len)
	{
		uint64 vlen = buf[48 + pos];	  /* pos < gens_len, inside */
		uint64 left = gens_len - pos - 1; /* bytes after the length */

		if (vlen == 0 || vlen > left)
			return -1;
		pos += 1 + vlen;
		count++;
	}
	return count;
}

static bool
ref_validate(const uint8 *buf, size_t len, RefResult *res)
{
	uint16 natts;
	uint32 nrows;
	uint8 codecs[CE_MAX_ATTS];
	uint64 gens_len;
	int64 ngens;
	uint64 off;
	uint64 consumed;

	if (len < 48)
		return false;
	if (rd_u32(buf) != 0x31455843u) /* "CXE1" */
		return false;
	if (buf[4] != 2 || buf[5] != 0)
		return false;
	memcpy(&natts, buf + 6, 2);
	if (natts > 1664)
		return false;
	if ((uint64) rd_u32(buf + 8) != (uint64) len)
		return false;
	if (rd_u32(buf + 12) != fz_entry_crc(buf, len))
		return false;
	nrows = rd_u32(buf + 40);
	gens_len = rd_u32(buf + 44);
	ngens = ref_gens(buf, len, gens_len);
	if (ngens < 0)
		return false;

	off = 48 + gens_len;
	res->gens_off = 48;
	res->gens_len = gens_len;
	res->ngens = (uint64) ngens;
	res->columns_off = off;
	if (off + (uint64) natts * 12 > len)
		return false;
	for (int i = 0; i < natts; i++)
	{
		const uint8 *c = buf + off + (uint64) i * 12;

		if (ref_width(c[8]) < 0 || c[9] || c[10] || c[11])
			return false;
		codecs[i] = c[8];
	}
	off += (uint64) natts * 12;
	res->rows_off = off;

	if (ref_rows(codecs, natts, buf + off, len - off, nrows, &consumed) != nrows)
		return false;
	return consumed == len - off;
}

/* ---- consumer-side walk of an accepted entry ------------------------------ */

static void
consume(const uint8 *buf, size_t len, const CeEntryView *v)
{
	const uint8 *end;
	const uint8 *p;
	uint8 codecs[CE_MAX_ATTS];
	size_t bml;
	uint32 acc = 0;
	int64 created_at;
	uint16 hdr_natts;

	/* the view describes this buffer and stays inside it */
	CHECK(v->buf == buf);
	CHECK(v->len == len);
	end = v->buf + v->len;
	CHECK(v->natts <= CE_MAX_ATTS);
	memcpy(&hdr_natts, buf + 6, 2);
	CHECK(v->natts == hdr_natts);
	CHECK(v->nrows == rd_u32(buf + 40));
	memcpy(&created_at, buf + 32, 8);
	CHECK(v->created_at == created_at);
	CHECK(v->fingerprint >= v->buf &&
		  (size_t) (end - v->fingerprint) >= CE_FINGERPRINT_LEN);
	CHECK(v->gens >= v->buf + CE_HEADER_SIZE && v->gens <= end);
	CHECK(v->gens_len <= CE_MAX_GENS_LEN);
	CHECK((size_t) (end - v->gens) >= v->gens_len);
	CHECK(v->columns >= v->gens + v->gens_len && v->columns <= end);
	CHECK((size_t) (end - v->columns) >= (size_t) v->natts * CE_COLUMN_SIZE);
	CHECK(v->rows >= v->columns + (size_t) v->natts * CE_COLUMN_SIZE);
	CHECK(v->rows <= end);
	for (int i = 0; i < CE_FINGERPRINT_LEN; i++)
		acc += v->fingerprint[i];

	/* the generations, as EntryDecode compares them: ngens values in turn */
	{
		const uint8 *g = v->gens;
		const uint8 *gend = v->gens + v->gens_len;

		for (uint32 n = 0; n < v->ngens; n++)
		{
			if (g >= gend)
				FAIL("generation %u of %u starts past the section (%u bytes)",
					 n, v->ngens, v->gens_len);
			if (g[0] == 0)
				FAIL("generation %u: accepted an empty value", n);
			if ((size_t) (gend - g) - 1 < g[0])
				FAIL("generation %u: %u-byte value at offset %zu runs past the section (%u bytes)",
					 n, g[0], (size_t) (g - v->gens), v->gens_len);
			for (int k = 1; k <= g[0]; k++)
				acc = acc * 31 + g[k];
			g += 1 + g[0];
		}
		if (g != gend)
			FAIL("%zu bytes of the generations section left after %u values",
				 (size_t) (gend - g), v->ngens);
	}

	for (int i = 0; i < v->natts; i++)
	{
		uint32 typid;
		int32 typmod;
		uint8 codec;

		CeEntryColumn(v, i, &typid, &typmod, &codec);
		if (codec < CE_CODEC_FIXED1 || codec > CE_CODEC_LAST)
			FAIL("column %d: accepted codec %u", i, codec);
		codecs[i] = codec;
		acc += typid + (uint32) typmod;
	}

	p = v->rows;
	bml = v->natts / 8 + 1;
	for (uint32 r = 0; r < v->nrows; r++)
	{
		const uint8 *bitmap;

		if ((size_t) (end - p) < bml)
			FAIL("row %u: null bitmap at offset %zu runs past the end (%zu)",
				 r, (size_t) (p - v->buf), v->len);
		bitmap = p;
		p += bml;
		if (v->natts % 8 != 0)
			CHECK((bitmap[v->natts / 8] >> (v->natts % 8)) == 0);
		else
			CHECK(bitmap[v->natts / 8] == 0);

		for (int i = 0; i < v->natts; i++)
		{
			int width;
			uint32 vlen;

			if (bitmap[i / 8] & (1 << (i % 8)))
				continue;
			width = CeCodecWidth(codecs[i]);
			if (width > 0)
				vlen = width;
			else
			{
				if ((size_t) (end - p) < 4)
					FAIL("row %u col %d: length word at offset %zu runs past the end (%zu)",
						 r, i, (size_t) (p - v->buf), v->len);
				memcpy(&vlen, p, 4);
				p += 4;
				if (vlen > CE_MAX_VALUE_LEN)
					FAIL("row %u col %d: accepted value length %u", r, i, vlen);
			}
			if ((size_t) (end - p) < vlen)
				FAIL("row %u col %d: %u-byte value at offset %zu runs past the end (%zu)",
					 r, i, vlen, (size_t) (p - v->buf), v->len);
			/* read the value like a decoder would (ASan sees every byte) */
			for (uint32 k = 0; k < vlen; k++)
				acc = acc * 31 + p[k];
			p += vlen;
		}
	}
	if (p != end)
		FAIL("%zu bytes left after the last of %u rows", (size_t) (end - p),
			 v->nrows);
	sink += acc;
}

/* ---- one candidate entry -------------------------------------------------- */

static void
check_one(const uint8 *buf, size_t len)
{
	CeEntryView view;
	RefResult rr;
	const char *why;
	bool ref;

	memset(&view, 0x5a, sizeof(view));
	why = CeEntryParse(buf, len, &view);
	ref = ref_validate(buf, len, &rr);
	if (why == NULL)
	{
		consume(buf, len, &view);
		if (!ref)
			FAIL("parser accepted a %zu-byte entry that the documented layout rejects",
				 len);
		if (view.gens_len != rr.gens_len || view.ngens != rr.ngens)
			FAIL("parser read %u generations in %u bytes, the documented layout %llu in %llu",
				 view.ngens, view.gens_len, (unsigned long long) rr.ngens,
				 (unsigned long long) rr.gens_len);
		if (view.gens != buf + rr.gens_off ||
			view.columns != buf + rr.columns_off ||
			view.rows != buf + rr.rows_off)
			FAIL("parser placed generations/columns/rows at %td/%td/%td, the documented layout at %llu/%llu/%llu",
				 view.gens - buf, view.columns - buf, view.rows - buf,
				 (unsigned long long) rr.gens_off,
				 (unsigned long long) rr.columns_off,
				 (unsigned long long) rr.rows_off);
	}
	else
	{
		CHECK(why[0] != '\0');
		if (ref)
			FAIL("parser rejected a well-formed %zu-byte entry: %s", len, why);
	}
}

/* ---- modes ----------------------------------------------------------------- */

static void
mode_fixup(const uint8 *data, size_t size)
{
	uint8 *buf;

	if (size < 16 || size > PG_UINT32_MAX)
		return;
	buf = malloc(size);
	CHECK(buf != NULL);
	memcpy(buf, data, size);
	put_u32(buf + 8, (uint32) size);
	put_u32(buf + 12, CeEntryChecksum(buf, size));
	if (rd_u32(buf + 12) != fz_entry_crc(buf, size))
		FAIL("CeEntryChecksum %08x differs from CRC-32C %08x over %zu bytes",
			 rd_u32(buf + 12), fz_entry_crc(buf, size), size);
	check_one(buf, size);
	free(buf);
}

static void
mode_synth(const uint8 *data, size_t size)
{
	uint16 raw_natts;
	int natts;
	int8 delta;
	uint16 npat_raw;
	size_t npat;
	size_t glen;
	const uint8 *pat;
	uint8 codecs[CE_MAX_ATTS + 2];
	size_t ncb;
	const uint8 *cb;
	const uint8 *rows;
	size_t nrow_bytes;
	size_t total;
	size_t desc_off;
	uint8 *buf;
	uint64 fit;
	uint64 consumed;
	int64 nrows;
	int64 created_at;

	if (size < SYNTH_PREFIX)
		return;
	memcpy(&raw_natts, data, 2);
	natts = raw_natts % (CE_MAX_ATTS + 2);
	delta = (int8) data[2];
	memcpy(&npat_raw, data + 3, 2);
	glen = fz_synth_glen(data);
	pat = data + SYNTH_PREFIX;
	npat = Min((size_t) npat_raw, size - SYNTH_PREFIX);
	cb = pat + npat;
	ncb = Min((size_t) natts, size - SYNTH_PREFIX - npat);
	for (int i = 0; i < natts; i++)
		codecs[i] = (size_t) i < ncb ? cb[i] % (CE_CODEC_LAST + 2) : (i % CE_CODEC_LAST) + 1;
	rows = cb + ncb;
	nrow_bytes = size - SYNTH_PREFIX - npat - ncb;

	desc_off = CE_HEADER_SIZE + glen;
	total = desc_off + (size_t) natts * CE_COLUMN_SIZE + nrow_bytes;
	buf = malloc(total);
	CHECK(buf != NULL);
	fz_fill_gens(buf + CE_HEADER_SIZE, glen, pat, npat);
	for (int i = 0; i < natts; i++)
	{
		uint8 *c = buf + desc_off + (size_t) i * CE_COLUMN_SIZE;

		put_u32(c, 16 + codecs[i]);
		put_u32(c + 4, (uint32) (i % 3) - 1);
		c[8] = codecs[i];
		c[9] = c[10] = c[11] = 0;
	}
	if (nrow_bytes > 0)
		memcpy(buf + desc_off + (size_t) natts * CE_COLUMN_SIZE, rows, nrow_bytes);

	fit = ref_rows(codecs, natts, rows, nrow_bytes, PG_UINT64_MAX, &consumed);
	if (delta == SYNTH_NROWS_MAX)
		nrows = PG_UINT32_MAX;
	else
	{
		nrows = (int64) fit + delta;
		if (nrows < 0)
			nrows = 0;
		if (nrows > PG_UINT32_MAX)
			nrows = PG_UINT32_MAX;
	}
	created_at = (int64) size * 1000003;
	fz_finish_header(buf, total, (uint16) natts, (uint32) nrows, (uint32) glen,
					 created_at, (uint8) size);
	check_one(buf, total);
	free(buf);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const uint8 check[] = "123456789";
	uint8 v[32];
	uint32 crc;

	fz_crc_init();
	crc = fz_crc_update(0xFFFFFFFFu, check, 9) ^ 0xFFFFFFFFu;
	if (crc != 0xE3069283u)
		FAIL("reference CRC-32C self-test: %08x", crc);
	/* RFC 3720 B.4: 32 bytes of zeros, of ones, ascending 0..31 */
	memset(v, 0, sizeof(v));
	if ((crc = fz_crc_update(0xFFFFFFFFu, v, 32) ^ 0xFFFFFFFFu) != 0x8A9136AAu)
		FAIL("reference CRC-32C self-test (zeros): %08x", crc);
	memset(v, 0xFF, sizeof(v));
	if ((crc = fz_crc_update(0xFFFFFFFFu, v, 32) ^ 0xFFFFFFFFu) != 0x62A8AB43u)
		FAIL("reference CRC-32C self-test (ones): %08x", crc);
	for (int i = 0; i < 32; i++)
		v[i] = (uint8) i;
	if ((crc = fz_crc_update(0xFFFFFFFFu, v, 32) ^ 0xFFFFFFFFu) != 0x46DD794Eu)
		FAIL("reference CRC-32C self-test (ascending): %08x", crc);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_one(data, size);
	mode_fixup(data, size);
	mode_synth(data, size);
	return 0;
}
