/*-------------------------------------------------------------------------
 *
 * make_seeds.c
 *	  Write a seed corpus for fuzz_entry into the directory given as argument.
 *
 * For each case it builds a valid entry (checked with CeEntryParse, so a
 * rejected seed is an error) and writes two files: entry-NN, the entry
 * itself (for the raw and fixup modes), and synth-NN, the same natts,
 * generations section, codecs and row bytes in the synthetic format of
 * fuzz_common.h (for synth mode).
 *
 * The generations section (entry format version 2) is covered by entries
 * with no generations, one (of 1, 32 and 255 bytes), several, and a hundred;
 * by synth-only seeds whose pattern makes sections of 65535 bytes (accepted)
 * and 65536 bytes (rejected), too large to be written out as entries; and by
 * malformed entries, bad-NN, each with a correct checksum and length and
 * checked to be rejected for the reason it is meant to exercise: an empty
 * value, a value running past gens_len, gens_len past the end of the entry,
 * gens_len over CE_MAX_GENS_LEN, and a version 1 entry.
 *
 *	 make_seeds DIR
 *
 *-------------------------------------------------------------------------
 */
#include "c.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "entry_format.h"
#include "fuzz_common.h"

typedef struct Builder
{
	uint8 *d;
	size_t len;
	size_t cap;
	int natts;
	uint8 codecs[CE_MAX_ATTS];
	uint32 nrows;
	uint32 gens_len; /* bytes of generations section after the header */
} Builder;

static uint64 rng_state = 0x9E3779B97F4A7C15ull;

static uint32
rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32) (rng_state >> 16);
}

static void
die(const char *msg, const char *arg)
{
	fprintf(stderr, "make_seeds: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
	exit(1);
}

static void
b_need(Builder *b, size_t n)
{
	if (b->len + n <= b->cap)
		return;
	while (b->len + n > b->cap)
		b->cap = b->cap ? b->cap * 2 : 256;
	b->d = realloc(b->d, b->cap);
	if (!b->d)
		die("out of memory", NULL);
}

static void
b_put(Builder *b, const void *p, size_t n)
{
	b_need(b, n);
	if (n)
		memcpy(b->d + b->len, p, n);
	b->len += n;
}

/* Start an entry: room for the header, filled in by emit_checked. */
static void
b_start(Builder *b, int natts)
{
	memset(b, 0, sizeof(*b));
	b->natts = natts;
	b_need(b, CE_HEADER_SIZE);
	memset(b->d, 0, CE_HEADER_SIZE);
	b->len = CE_HEADER_SIZE;
}

/* Close the generations section and append the column descriptors. */
static void
b_columns(Builder *b, const uint8 *codecs)
{
	b->gens_len = (uint32) (b->len - CE_HEADER_SIZE);
	for (int i = 0; i < b->natts; i++)
	{
		uint8 c[CE_COLUMN_SIZE] = {0};

		b->codecs[i] = codecs[i];
		put_u32(c, 16 + codecs[i] * 7);
		put_u32(c + 4, (uint32) -1);
		c[8] = codecs[i];
		b_put(b, c, sizeof(c));
	}
}

/*
 * Start an entry with a generations section of ngens values of glens[i]
 * random bytes each, and its column descriptors.
 */
static void
b_init_gens(Builder *b, int natts, const uint8 *codecs, int ngens,
			const int *glens)
{
	b_start(b, natts);
	for (int g = 0; g < ngens; g++)
	{
		uint8 v[256];

		if (glens[g] < 1 || glens[g] > 255)
			die("bad generation length in a seed", NULL);
		v[0] = (uint8) glens[g];
		for (int k = 1; k <= glens[g]; k++)
			v[k] = (uint8) rng();
		b_put(b, v, 1 + glens[g]);
	}
	b_columns(b, codecs);
}

static void
b_init(Builder *b, int natts, const uint8 *codecs)
{
	b_init_gens(b, natts, codecs, 0, NULL);
}

/* Start an entry whose generations section is these bytes, as they are. */
static void
b_init_raw_gens(Builder *b, int natts, const uint8 *codecs,
				const uint8 *section, size_t section_len)
{
	b_start(b, natts);
	b_put(b, section, section_len);
	b_columns(b, codecs);
}

/* A valid stored numeric: NaN/+Inf/-Inf now and then, else short format. */
static uint32
numeric_value(uint8 *v)
{
	static const uint16 specials[3] = {0xC000, 0xD000, 0xF000};
	uint16 h;
	uint32 ndigits;

	if (rng() % 5 == 0)
	{
		memcpy(v, &specials[rng() % 3], 2);
		return 2;
	}
	ndigits = rng() % 5;
	h = 0x8000 | ((rng() % 2) ? 0x2000 : 0) | ((rng() % 8) << 7) | (rng() % 4);
	memcpy(v, &h, 2);
	for (uint32 k = 0; k < ndigits; k++)
	{
		int16 d = (int16) (rng() % 10000);

		memcpy(v + 2 + 2 * k, &d, 2);
	}
	return 2 + 2 * ndigits;
}

/* one row; null_pct of the values NULL; varlena values up to maxlen bytes */
static void
b_row(Builder *b, int null_pct, uint32 maxlen)
{
	size_t bml = b->natts / 8 + 1;
	size_t bm_off = b->len;

	b_need(b, bml);
	memset(b->d + b->len, 0, bml);
	b->len += bml;
	for (int i = 0; i < b->natts; i++)
	{
		int w = CeCodecWidth(b->codecs[i]);

		if ((int) (rng() % 100) < null_pct)
		{
			b->d[bm_off + i / 8] |= 1 << (i % 8);
			continue;
		}
		if (w > 0)
		{
			uint8 v[8];

			for (int k = 0; k < w; k++)
				v[k] = (uint8) rng();
			if (b->codecs[i] == CE_CODEC_FIXED1)
				v[0] &= 1;
			b_put(b, v, w);
		}
		else if (b->codecs[i] == CE_CODEC_NUMERIC)
		{
			uint8 v[16];
			uint32 vlen = numeric_value(v);
			uint8 lw[4];

			put_u32(lw, vlen);
			b_put(b, lw, 4);
			b_put(b, v, vlen);
		}
		else
		{
			uint32 vlen = maxlen ? rng() % (maxlen + 1) : 0;
			uint8 lw[4];

			put_u32(lw, vlen);
			b_put(b, lw, 4);
			b_need(b, vlen);
			for (uint32 k = 0; k < vlen; k++)
				b->d[b->len + k] = (uint8) ('a' + rng() % 26);
			b->len += vlen;
		}
	}
	b->nrows++;
}

static void
write_file(const char *dir, const char *name, int n, const uint8 *p, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s-%02d", dir, name, n);
	f = fopen(path, "wb");
	if (!f)
		die("cannot create", path);
	if (len && fwrite(p, 1, len, f) != len)
		die("cannot write", path);
	if (fclose(f) != 0)
		die("cannot write", path);
}

/* entries longer than run.sh's default FUZZ_MAX_LEN are not written out */
#define SEED_MAX_LEN 65536

static int nseeds = 0;
static int nentries = 0;
static int nsynth = 0;
static int nbad = 0;

/*
 * Write the synth-mode form of b: delta 0, a glen-byte generations section
 * made of the npat-byte pattern (for most seeds the section itself, with
 * npat = glen = gens_len), then b's codecs and row bytes.
 */
static void
write_synth(Builder *b, const char *dir, const uint8 *pat, size_t npat,
			uint32 glen)
{
	size_t rows_off = CE_HEADER_SIZE + b->gens_len +
		(size_t) b->natts * CE_COLUMN_SIZE;
	size_t nrow_bytes = b->len - rows_off;
	size_t slen;
	uint8 *s;

	if (npat > PG_UINT16_MAX)
		die("synth pattern too long", NULL);
	if (glen > CE_MAX_GENS_LEN + 1)
		die("synth section too long", NULL);
	slen = SYNTH_PREFIX + npat + b->natts + nrow_bytes;
	s = malloc(slen);
	if (!s)
		die("out of memory", NULL);
	put_u16(s, (uint16) b->natts);
	s[2] = 0;
	put_u16(s + 3, (uint16) npat);
	fz_synth_set_glen(s, glen);
	if (npat)
		memcpy(s + SYNTH_PREFIX, pat, npat);
	memcpy(s + SYNTH_PREFIX + npat, b->codecs, b->natts);
	memcpy(s + SYNTH_PREFIX + npat + b->natts, b->d + rows_off, nrow_bytes);
	write_file(dir, "synth", nseeds, s, slen);
	free(s);
	nsynth++;
}

/*
 * Finish b with gens_len written as declared_gens_len (b->gens_len unless a
 * malformed header is wanted) and check the parser's verdict: accepted when
 * reason is NULL, else rejected with a reason containing that string.
 * Writes the entry (entry-NN, or bad-NN when rejected) unless it is too
 * long for the fuzzer's inputs, and the synth form when synth is set.
 */
static void
emit_checked(Builder *b, const char *dir, uint32 declared_gens_len,
			 const char *reason, bool synth)
{
	CeEntryView view;
	const char *why;

	fz_finish_header(b->d, b->len, (uint16) b->natts, b->nrows,
					 declared_gens_len, (int64) 789000000000 + nseeds,
					 (uint8) (nseeds * 11));
	why = CeEntryParse(b->d, b->len, &view);
	if (reason == NULL && why != NULL)
	{
		fprintf(stderr, "make_seeds: seed %d rejected: %s\n", nseeds, why);
		exit(1);
	}
	if (reason != NULL && (why == NULL || strstr(why, reason) == NULL))
	{
		fprintf(stderr, "make_seeds: malformed seed %d %s (expected \"%s\")\n",
				nseeds, why ? why : "accepted", reason);
		exit(1);
	}
	if (reason == NULL && view.gens_len != b->gens_len)
	{
		fprintf(stderr, "make_seeds: seed %d: gens_len %u, built %u\n",
				nseeds, view.gens_len, b->gens_len);
		exit(1);
	}
	if (b->len <= SEED_MAX_LEN)
	{
		write_file(dir, reason ? "bad" : "entry", nseeds, b->d, b->len);
		if (reason)
			nbad++;
		else
			nentries++;
	}
	if (synth)
		write_synth(b, dir, b->d + CE_HEADER_SIZE, b->gens_len, b->gens_len);
	free(b->d);
	nseeds++;
}

static void
emit(Builder *b, const char *dir)
{
	emit_checked(b, dir, b->gens_len, NULL, true);
}

/*
 * A synth-only seed whose glen-byte section is the npat-byte pattern
 * repeated, checked (accepted when reason is NULL) by building the entry.
 */
static void
emit_pattern(const char *dir, const uint8 *pat, size_t npat, uint32 glen,
			 const char *reason)
{
	Builder b;
	uint8 c[2] = {CE_CODEC_FIXED4, CE_CODEC_TEXT};
	uint8 *section = malloc(glen);

	if (!section)
		die("out of memory", NULL);
	fz_fill_gens(section, glen, pat, npat);
	b_init_raw_gens(&b, 2, c, section, glen);
	free(section);
	for (int r = 0; r < 3; r++)
		b_row(&b, 20, 6);
	write_synth(&b, dir, pat, npat, glen);
	emit_checked(&b, dir, b.gens_len, reason, false);
}

int
main(int argc, char **argv)
{
	const char *dir;
	Builder b;
	uint8 c[CE_MAX_ATTS];

	if (argc != 2)
	{
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	dir = argv[1];
	if (mkdir(dir, 0777) != 0 && errno != EEXIST)
		die("cannot create directory", dir);
	fz_crc_init();

	/* zero columns, zero rows */
	b_init(&b, 0, c);
	emit(&b, dir);

	/* zero columns, five (empty) rows */
	b_init(&b, 0, c);
	for (int r = 0; r < 5; r++)
		b_row(&b, 0, 0);
	emit(&b, dir);

	/* one int4 column, zero rows */
	c[0] = CE_CODEC_FIXED4;
	b_init(&b, 1, c);
	emit(&b, dir);

	/* one int4 column, some NULLs */
	b_init(&b, 1, c);
	for (int r = 0; r < 6; r++)
		b_row(&b, 40, 0);
	emit(&b, dir);

	/* the four fixed widths */
	for (int i = 0; i < 4; i++)
		c[i] = CE_CODEC_FIXED1 + i;
	b_init(&b, 4, c);
	for (int r = 0; r < 3; r++)
		b_row(&b, 10, 0);
	emit(&b, dir);

	/* all eight codecs: natts % 8 == 0, so a 2-byte bitmap */
	for (int i = 0; i < 8; i++)
		c[i] = CE_CODEC_FIXED1 + i;
	b_init(&b, 8, c);
	for (int r = 0; r < 4; r++)
		b_row(&b, 25, 12);
	emit(&b, dir);

	/* nine columns, every row all NULL */
	for (int i = 0; i < 9; i++)
		c[i] = CE_CODEC_FIXED1 + (i % 8);
	b_init(&b, 9, c);
	for (int r = 0; r < 3; r++)
		b_row(&b, 100, 0);
	emit(&b, dir);

	/* length-prefixed codecs only, empty and short values */
	c[0] = CE_CODEC_TEXT;
	c[1] = CE_CODEC_BYTES;
	c[2] = CE_CODEC_TEXTIO;
	c[3] = CE_CODEC_BINARY;
	b_init(&b, 4, c);
	b_row(&b, 0, 0);
	for (int r = 0; r < 4; r++)
		b_row(&b, 20, 8);
	emit(&b, dir);

	/* seventeen columns (3-byte bitmap), mixed */
	for (int i = 0; i < 17; i++)
		c[i] = CE_CODEC_FIXED1 + rng() % 8;
	b_init(&b, 17, c);
	for (int r = 0; r < 5; r++)
		b_row(&b, 30, 6);
	emit(&b, dir);

	/* a long text value */
	c[0] = CE_CODEC_FIXED8;
	c[1] = CE_CODEC_TEXT;
	b_init(&b, 2, c);
	b_row(&b, 0, 0);
	{
		uint8 lw[4];

		b_put(&b, "\0", 1); /* null bitmap: no NULLs */
		b_put(&b, "12345678", 8);
		put_u32(lw, 3000);
		b_put(&b, lw, 4);
		b_need(&b, 3000);
		memset(b.d + b.len, 'x', 3000);
		b.len += 3000;
		b.nrows++;
	}
	emit(&b, dir);

	/* a hundred columns, a few rows */
	for (int i = 0; i < 100; i++)
		c[i] = CE_CODEC_FIXED1 + rng() % 8;
	b_init(&b, 100, c);
	for (int r = 0; r < 8; r++)
		b_row(&b, 15, 5);
	emit(&b, dir);

	/* the maximum column count: one all-NULL row, one all-bool row */
	for (int i = 0; i < CE_MAX_ATTS; i++)
		c[i] = CE_CODEC_FIXED1;
	b_init(&b, CE_MAX_ATTS, c);
	b_row(&b, 100, 0);
	b_row(&b, 0, 0);
	emit(&b, dir);

	/* many small rows */
	c[0] = CE_CODEC_FIXED2;
	c[1] = CE_CODEC_BYTES;
	b_init(&b, 2, c);
	for (int r = 0; r < 200; r++)
		b_row(&b, 10, 3);
	emit(&b, dir);

	/* ---- generations sections (format version 2) ---- */

	/* one generation of each length 1, 32 and 255, with an int4 column */
	{
		static const int one_len[3] = {1, 32, 255};

		c[0] = CE_CODEC_FIXED4;
		for (int k = 0; k < 3; k++)
		{
			b_init_gens(&b, 1, c, 1, &one_len[k]);
			for (int r = 0; r < 3; r++)
				b_row(&b, 20, 0);
			emit(&b, dir);
		}
	}

	/* one generation, no columns and no rows: the section ends the entry */
	{
		static const int eight = 8;

		b_init_gens(&b, 0, c, 1, &eight);
		emit(&b, dir);
	}

	/* several generations of 1, 32, 255 and 8 bytes, all the codecs */
	{
		static const int several[6] = {1, 32, 255, 8, 1, 255};

		for (int i = 0; i <= CE_CODEC_LAST - 1; i++)
			c[i] = CE_CODEC_FIXED1 + i;
		b_init_gens(&b, CE_CODEC_LAST, c, 6, several);
		for (int r = 0; r < 4; r++)
			b_row(&b, 20, 10);
		emit(&b, dir);
	}

	/* a hundred 8-byte generations, seventeen mixed columns */
	{
		int lens[100];

		for (int g = 0; g < 100; g++)
			lens[g] = 8;
		for (int i = 0; i < 17; i++)
			c[i] = CE_CODEC_FIXED1 + rng() % CE_CODEC_LAST;
		b_init_gens(&b, 17, c, 100, lens);
		for (int r = 0; r < 5; r++)
			b_row(&b, 30, 6);
		emit(&b, dir);
	}

	/* numeric values after two generations */
	{
		static const int two[2] = {8, 16};

		c[0] = CE_CODEC_NUMERIC;
		c[1] = CE_CODEC_FIXED8;
		c[2] = CE_CODEC_NUMERIC;
		b_init_gens(&b, 3, c, 2, two);
		for (int r = 0; r < 10; r++)
			b_row(&b, 10, 0);
		emit(&b, dir);
	}

	/* the largest section, 65535 bytes: 21845 values of 2 bytes (synth only) */
	emit_pattern(dir, (const uint8 *) "\002ab", 3, CE_MAX_GENS_LEN, NULL);

	/*
	 * 65536 bytes of well-formed values, one byte over the limit (synth
	 * only), and 65535 bytes of 255-byte values whose last one is cut short
	 */
	{
		uint8 pat[256];

		pat[0] = 1;
		pat[1] = 'g';
		emit_pattern(dir, pat, 2, CE_MAX_GENS_LEN + 1, "generations");
		pat[0] = 255;
		for (int k = 1; k < 256; k++)
			pat[k] = (uint8) k;
		emit_pattern(dir, pat, 256, CE_MAX_GENS_LEN - 255, NULL);
		emit_pattern(dir, pat, 256, CE_MAX_GENS_LEN, "generations");
	}

	/* malformed: a zero-length value between two good ones */
	c[0] = CE_CODEC_FIXED4;
	c[1] = CE_CODEC_TEXT;
	{
		static const uint8 sec[] = {1, 'a', 0, 2, 'b', 'c'};

		b_init_raw_gens(&b, 2, c, sec, sizeof(sec));
		b_row(&b, 0, 4);
		b_row(&b, 0, 4);
		emit_checked(&b, dir, b.gens_len, "generations", true);
	}

	/* malformed: the section is a lone zero length byte */
	{
		static const uint8 sec[] = {0};

		b_init_raw_gens(&b, 1, c, sec, sizeof(sec));
		b_row(&b, 0, 0);
		emit_checked(&b, dir, b.gens_len, "generations", true);
	}

	/* malformed: the last value claims 9 bytes, 2 are left before gens_len */
	{
		static const uint8 sec[] = {3, 'a', 'b', 'c', 9, 'd', 'e'};

		b_init_raw_gens(&b, 2, c, sec, sizeof(sec));
		for (int r = 0; r < 3; r++)
			b_row(&b, 0, 4);
		emit_checked(&b, dir, b.gens_len, "generations", true);
	}

	/* malformed: the last value runs past gens_len and the entry's end */
	{
		static const uint8 sec[] = {2, 'a', 'b', 200, 'c'};

		b_init_raw_gens(&b, 0, c, sec, sizeof(sec));
		emit_checked(&b, dir, b.gens_len, "generations", true);
	}

	/* malformed: gens_len shorter than the values really there */
	{
		static const uint8 sec[] = {4, 'a', 'b', 'c', 'd', 4, 'e', 'f', 'g', 'h'};

		b_init_raw_gens(&b, 1, c, sec, sizeof(sec));
		b_row(&b, 0, 0);
		emit_checked(&b, dir, 7, "generations", false);
	}

	/* malformed: gens_len one byte past the end (no columns, no rows) */
	{
		static const uint8 sec[] = {4, 'a', 'b', 'c', 'd'};

		b_init_raw_gens(&b, 0, c, sec, sizeof(sec));
		emit_checked(&b, dir, sizeof(sec) + 1, "generations", false);
	}

	/* malformed: gens_len at the limit, far past the end of a small entry */
	{
		static const uint8 sec[] = {8, 1, 2, 3, 4, 5, 6, 7, 8};

		b_init_raw_gens(&b, 1, c, sec, sizeof(sec));
		b_row(&b, 0, 0);
		emit_checked(&b, dir, CE_MAX_GENS_LEN, "generations", false);
	}

	/* malformed: gens_len just over the limit, and the largest uint32 */
	{
		static const uint8 sec[] = {2, 'x', 'y'};

		b_init_raw_gens(&b, 1, c, sec, sizeof(sec));
		b_row(&b, 0, 0);
		emit_checked(&b, dir, CE_MAX_GENS_LEN + 1, "generations", false);
		b_init_raw_gens(&b, 1, c, sec, sizeof(sec));
		b_row(&b, 0, 0);
		emit_checked(&b, dir, PG_UINT32_MAX, "generations", false);
	}

	/* malformed: a version 1 entry (no generations, offset 44 zero) */
	{
		b_init(&b, 1, c);
		b_row(&b, 0, 0);
		fz_finish_header(b.d, b.len, 1, b.nrows, 0, 0, 0);
		b.d[4] = 1;
		put_u32(b.d + 12, CeEntryChecksum(b.d, b.len));
		if (CeEntryParse(b.d, b.len, &(CeEntryView){0}) == NULL)
			die("a version 1 entry was accepted", NULL);
		write_file(dir, "bad", nseeds++, b.d, b.len);
		nbad++;
		free(b.d);
	}

	printf("make_seeds: wrote %d valid entries, %d malformed entries and %d synth payloads to %s\n",
		   nentries, nbad, nsynth, dir);
	return 0;
}
