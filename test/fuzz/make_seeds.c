/*-------------------------------------------------------------------------
 *
 * make_seeds.c
 *	  Write a seed corpus for fuzz_entry into the directory given as argument.
 *
 * For each case it builds a valid entry (checked with CeEntryParse, so a
 * rejected seed is an error) and writes two files: entry-NN, the entry
 * itself (for the raw and fixup modes), and synth-NN, the same natts, codecs
 * and row bytes in the synthetic format of fuzz_common.h (for synth mode).
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
	uint8	   *d;
	size_t		len;
	size_t		cap;
	int			natts;
	uint8		codecs[CE_MAX_ATTS];
	uint32		nrows;
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

static void
b_init(Builder *b, int natts, const uint8 *codecs)
{
	memset(b, 0, sizeof(*b));
	b->natts = natts;
	b_need(b, CE_HEADER_SIZE);
	memset(b->d, 0, CE_HEADER_SIZE);
	b->len = CE_HEADER_SIZE;
	for (int i = 0; i < natts; i++)
	{
		uint8		c[CE_COLUMN_SIZE] = {0};

		b->codecs[i] = codecs[i];
		put_u32(c, 16 + codecs[i] * 7);
		put_u32(c + 4, (uint32) -1);
		c[8] = codecs[i];
		b_put(b, c, sizeof(c));
	}
}

/* one row; null_pct of the values NULL; varlena values up to maxlen bytes */
static void
b_row(Builder *b, int null_pct, uint32 maxlen)
{
	size_t		bml = b->natts / 8 + 1;
	size_t		bm_off = b->len;

	b_need(b, bml);
	memset(b->d + b->len, 0, bml);
	b->len += bml;
	for (int i = 0; i < b->natts; i++)
	{
		int			w = CeCodecWidth(b->codecs[i]);

		if ((int) (rng() % 100) < null_pct)
		{
			b->d[bm_off + i / 8] |= 1 << (i % 8);
			continue;
		}
		if (w > 0)
		{
			uint8		v[8];

			for (int k = 0; k < w; k++)
				v[k] = (uint8) rng();
			if (b->codecs[i] == CE_CODEC_FIXED1)
				v[0] &= 1;
			b_put(b, v, w);
		}
		else
		{
			uint32		vlen = maxlen ? rng() % (maxlen + 1) : 0;
			uint8		lw[4];

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
	char		path[4096];
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/%s-%02d", dir, name, n);
	f = fopen(path, "wb");
	if (!f)
		die("cannot create", path);
	if (len && fwrite(p, 1, len, f) != len)
		die("cannot write", path);
	if (fclose(f) != 0)
		die("cannot write", path);
}

static int nseeds = 0;

static void
emit(Builder *b, const char *dir)
{
	CeEntryView view;
	const char *why;
	size_t		rows_off = CE_HEADER_SIZE + (size_t) b->natts * CE_COLUMN_SIZE;
	uint8	   *s;
	size_t		slen;
	uint16		natts = (uint16) b->natts;

	fz_finish_header(b->d, b->len, natts, b->nrows,
					 (int64) 789000000000 + nseeds, (uint8) (nseeds * 11));
	why = CeEntryParse(b->d, b->len, &view);
	if (why)
	{
		fprintf(stderr, "make_seeds: seed %d rejected: %s\n", nseeds, why);
		exit(1);
	}
	write_file(dir, "entry", nseeds, b->d, b->len);

	/* the same natts, codecs and rows as a synth-mode payload, delta 0 */
	slen = SYNTH_PREFIX + b->natts + (b->len - rows_off);
	s = malloc(slen);
	if (!s)
		die("out of memory", NULL);
	put_u16(s, natts);
	s[2] = 0;
	memcpy(s + SYNTH_PREFIX, b->codecs, b->natts);
	memcpy(s + SYNTH_PREFIX + b->natts, b->d + rows_off, b->len - rows_off);
	write_file(dir, "synth", nseeds, s, slen);
	free(s);
	free(b->d);
	nseeds++;
}

int
main(int argc, char **argv)
{
	const char *dir;
	Builder		b;
	uint8		c[CE_MAX_ATTS];

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
		uint8		lw[4];

		b_put(&b, "\0", 1);		/* null bitmap: no NULLs */
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

	printf("make_seeds: wrote %d entries and %d synth payloads to %s\n",
		   nseeds, nseeds, dir);
	return 0;
}
