/*-------------------------------------------------------------------------
 *
 * fuzz_value.c
 *	  libFuzzer target for stored application values (src/value_format.c:
 *	  CvValueParse, CvValueBuild, CvValueSize).
 *
 * Every input is tried three ways:
 *
 *	raw		the input as it came from Redis: CvValueParse(input), in a buffer
 *			of exactly its size (ASan sees any read past it).
 *	fixup	if the input has at least 16 bytes, a copy with total_len and the
 *			checksum rewritten to be right, so that mutated seeds get past the
 *			checksum and reach the section and generation checks.
 *	synth	the input read as a description of a value (kind, counts,
 *			generation lengths, then bytes reused cyclically for the
 *			generations, tag digests and data), built with CvValueBuild:
 *			it must parse back to exactly those parts; flipping any one
 *			byte (at the input's chosen position) and truncating by one
 *			byte must both be refused.
 *
 * Oracle for raw and fixup: ref_parse() is an independent reading of the
 * layout documented in value_format.h (its own CRC-32C, fuzz_common.h).
 * CvValueParse must accept exactly what it accepts, and then give the same
 * view; an accepted value rebuilt with CvValueBuild from its view must be
 * the same bytes (one encoding per value).
 *
 * Seeds: built with -DFZ_VALUE_MAKE_SEEDS, this file writes valid values
 * (both kinds, with and without tags) and a few broken ones to a directory.
 *
 *-------------------------------------------------------------------------
 */
#include "c.h"

#include <stdio.h>
#include <stdlib.h>

#include "fuzz_common.h"
#include "value_format.h"

#define FZ_NAME "fuzz_value"
#include "fuzz_check.h"

/* The reference reading of value_format.h: true when well formed. */
static bool
ref_parse(const uint8 *b, size_t len, CvValueView *v)
{
	uint32 gens_len;
	uint32 data_len;
	uint64 need;
	size_t off;
	uint32 count = 0;

	if (len < 40 || rd_u32(b) != 0x31565843u || b[4] != 1 ||
		(b[5] != 1 && b[5] != 2) || b[6] < 1 || b[6] > 8 || b[7] > 64 ||
		rd_u32(b + 8) != len || rd_u32(b + 12) != fz_entry_crc(b, len))
		return false;
	gens_len = rd_u32(b + 32);
	data_len = rd_u32(b + 36);
	if (gens_len > 65535)
		return false;
	need = 40 + 16 * (uint64) b[7] + gens_len + (uint64) data_len;
	if (need != len)
		return false;
	for (int i = 0; i < b[7]; i++)
		for (int j = i + 1; j < b[7]; j++)
			if (memcmp(b + 40 + 16 * i, b + 40 + 16 * j, 16) == 0)
				return false;
	off = 40 + 16 * (size_t) b[7];
	for (size_t p = off; p < off + gens_len;)
	{
		size_t l = b[p];

		if (l == 0 || p + 1 + l > off + gens_len)
			return false;
		p += 1 + l;
		count++;
	}
	if (count != (uint32) b[6] + b[7])
		return false;
	if (b[5] == 1)
	{
		if (data_len == 0)
			return false;
		for (size_t i = 0; i < data_len; i++)
			if (b[off + gens_len + i] == 0)
				return false;
	}
	v->kind = b[5];
	v->ngens = b[6];
	v->ntags = b[7];
	v->fingerprint = b + 16;
	v->tags = b + 40;
	v->gens = b + off;
	v->gens_len = gens_len;
	v->data = b + off + gens_len;
	v->data_len = data_len;
	return true;
}

/* Rebuild an accepted value from its view: must give the same bytes. */
static void
rebuild_same(const uint8 *buf, size_t len, const CvValueView *v)
{
	const char *gens[CV_MAX_FIXED_GENS + CV_MAX_TAGS];
	size_t lens[CV_MAX_FIXED_GENS + CV_MAX_TAGS];
	const uint8 *g = v->gens;
	CvValueParts p;
	uint8 *out;

	for (int i = 0; i < v->ngens + v->ntags; i++)
	{
		gens[i] = (const char *) g + 1;
		lens[i] = g[0];
		g += 1 + g[0];
	}
	p.kind = v->kind;
	p.fingerprint = v->fingerprint;
	p.ngens = v->ngens;
	p.ntags = v->ntags;
	p.tags = v->tags;
	p.gens = gens;
	p.gens_lens = lens;
	p.data = v->data;
	p.data_len = v->data_len;
	CHECK(CvValueSize(&p) == len);
	out = malloc(len);
	CvValueBuild(&p, out);
	CHECK(memcmp(out, buf, len) == 0);
	free(out);
}

/* One buffer through CvValueParse and the reference. */
static void
check_parse(const uint8 *data, size_t size)
{
	uint8 *buf = malloc(size ? size : 1);
	CvValueView v;
	CvValueView r;
	const char *why;
	bool ok;

	memcpy(buf, data, size);
	why = CvValueParse(buf, size, &v);
	ok = ref_parse(buf, size, &r);
	if ((why == NULL) != ok)
		FAIL("parser says %s, reference says %s", why ? why : "ok", ok ? "ok" : "bad");
	if (ok)
	{
		CHECK(v.kind == r.kind && v.ngens == r.ngens && v.ntags == r.ntags);
		CHECK(v.fingerprint == r.fingerprint && v.tags == r.tags);
		CHECK(v.gens == r.gens && v.gens_len == r.gens_len);
		CHECK(v.data == r.data && v.data_len == r.data_len);
		CHECK(v.data + v.data_len == buf + size);
		rebuild_same(buf, size, &v);
	}
	free(buf);
}

/* raw, and fixup (length and checksum made right) */
static void
mode_raw(const uint8 *data, size_t size)
{
	uint8 *buf;

	check_parse(data, size);
	if (size < 16)
		return;
	buf = malloc(size);
	memcpy(buf, data, size);
	put_u32(buf + 8, (uint32) size);
	put_u32(buf + 12, fz_entry_crc(buf, size));
	check_parse(buf, size);
	free(buf);
}

/*
 * synth: the input as a description.
 *	 0 kind (bit 0: jsonb, else bytes), 1 ngens (mod 8, +1), 2 ntags (mod 65),
 *	 3..6 flip position (uint32), 7 flip mask (0 means 0x80),
 *	 then ngens + ntags length bytes (mod 255, +1), then the pool of bytes
 *	 the generations, digests and data are cut from (cyclically; the data
 *	 is the pool itself).
 */
static void
mode_synth(const uint8 *in, size_t size)
{
	const char *gens[CV_MAX_FIXED_GENS + CV_MAX_TAGS];
	size_t lens[CV_MAX_FIXED_GENS + CV_MAX_TAGS];
	uint8 tags[CV_MAX_TAGS * CV_TAG_DIGEST_LEN];
	uint8 fp[CV_FINGERPRINT_LEN];
	static uint8 genbuf[(CV_MAX_FIXED_GENS + CV_MAX_TAGS) * 255];
	uint8 *pool;
	size_t npool;
	size_t hdr;
	CvValueParts p;
	CvValueView v;
	size_t total;
	uint8 *out;
	uint32 pos;
	uint8 mask;
	const uint8 *g;

	if (size < 8)
		return;
	p.kind = (in[0] & 1) ? CV_KIND_JSONB : CV_KIND_BYTES;
	p.ngens = 1 + in[1] % CV_MAX_FIXED_GENS;
	p.ntags = in[2] % (CV_MAX_TAGS + 1);
	pos = rd_u32(in + 3);
	mask = in[7] ? in[7] : 0x80;
	hdr = 8 + (size_t) p.ngens + p.ntags;
	if (size < hdr)
		return;
	npool = size - hdr;
	pool = malloc(npool ? npool : 1);
	memcpy(pool, in + hdr, npool);
	for (int i = 0; i < p.ngens + p.ntags; i++)
	{
		lens[i] = 1 + in[8 + i] % 255;
		for (size_t j = 0; j < lens[i]; j++)
			genbuf[i * 255 + j] = npool ? pool[(i + j) % npool] : (uint8) j;
		gens[i] = (const char *) genbuf + i * 255;
	}
	for (int t = 0; t < p.ntags; t++)
	{
		/* distinct by construction: the index, then pool bytes */
		put_u32(tags + t * CV_TAG_DIGEST_LEN, (uint32) t);
		for (int j = 4; j < CV_TAG_DIGEST_LEN; j++)
			tags[t * CV_TAG_DIGEST_LEN + j] = npool ? pool[(t * 7 + j) % npool] : 0;
	}
	for (int j = 0; j < CV_FINGERPRINT_LEN; j++)
		fp[j] = npool ? pool[j % npool] : (uint8) j;
	if (p.kind == CV_KIND_JSONB)
	{
		for (size_t j = 0; j < npool; j++)
			if (pool[j] == 0)
				pool[j] = '0';
		if (npool == 0)
		{
			pool[0] = '0';
			npool = 1;
		}
	}
	p.fingerprint = fp;
	p.tags = tags;
	p.gens = gens;
	p.gens_lens = lens;
	p.data = pool;
	p.data_len = npool;
	total = CvValueSize(&p);
	if (total == 0)
	{
		/* only a generations section over the limit is unstorable here */
		uint64 gl = 0;

		for (int i = 0; i < p.ngens + p.ntags; i++)
			gl += 1 + lens[i];
		CHECK(gl > CV_MAX_GENS_LEN);
		free(pool);
		return;
	}
	out = malloc(total);
	CvValueBuild(&p, out);
	if (CvValueParse(out, total, &v) != NULL)
		FAIL("a built value is refused: %s", CvValueParse(out, total, &v));
	CHECK(v.kind == p.kind && v.ngens == p.ngens && v.ntags == p.ntags);
	CHECK(memcmp(v.fingerprint, fp, CV_FINGERPRINT_LEN) == 0);
	CHECK(p.ntags == 0 || memcmp(v.tags, tags, (size_t) p.ntags * CV_TAG_DIGEST_LEN) == 0);
	CHECK(v.data_len == npool && memcmp(v.data, pool, npool) == 0);
	g = v.gens;
	for (int i = 0; i < p.ngens + p.ntags; i++)
	{
		CHECK(g[0] == lens[i] && memcmp(g + 1, gens[i], lens[i]) == 0);
		g += 1 + g[0];
	}
	/* one flipped byte, and one byte less: refused */
	out[pos % total] ^= mask;
	CHECK(CvValueParse(out, total, &v) != NULL);
	out[pos % total] ^= mask;
	CHECK(CvValueParse(out, total - 1, &v) != NULL);
	free(out);
	free(pool);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init = false;

	if (!init)
	{
		fz_crc_init();
		init = true;
	}
	mode_raw(data, size);
	mode_synth(data, size);
	return 0;
}

#ifdef FZ_VALUE_MAKE_SEEDS
/* ---- seed builder: fuzz_value_seeds OUT_DIR ---- */

static void
write_seed(const char *dir, const char *name, const uint8 *b, size_t n)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(b, 1, n, f) != n || fclose(f) != 0)
	{
		perror(path);
		exit(1);
	}
}

int
main(int argc, char **argv)
{
	static const char *const gv[] = {
		"0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210",
		"0011223344556677889900aabbccddee", "x", "yy"};
	size_t gl[] = {32, 32, 32, 1, 2};
	uint8 tags[2 * CV_TAG_DIGEST_LEN];
	uint8 fp[CV_FINGERPRINT_LEN];
	const char *json = "{\"a\": [1, 2, {\"b\": null}], \"c\": \"d\"}";
	int nseeds = 0;

	if (argc != 2)
	{
		fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
		return 2;
	}
	fz_crc_init();
	memset(fp, 0xab, sizeof(fp));
	for (int i = 0; i < (int) sizeof(tags); i++)
		tags[i] = (uint8) (i * 37);
	for (int kind = 1; kind <= 2; kind++)
		for (int ntags = 0; ntags <= 2; ntags++)
		{
			CvValueParts p;
			size_t n;
			uint8 *b;
			char name[64];

			p.kind = (uint8) kind;
			p.fingerprint = fp;
			p.ngens = 3;
			p.ntags = ntags;
			p.tags = tags;
			p.gens = gv;
			p.gens_lens = gl;
			p.data = (const uint8 *) json;
			p.data_len = strlen(json);
			n = CvValueSize(&p);
			b = malloc(n);
			CvValueBuild(&p, b);
			snprintf(name, sizeof(name), "value-%d-%d", kind, ntags);
			write_seed(argv[1], name, b, n);
			/* broken: truncated, and one byte of the data changed */
			snprintf(name, sizeof(name), "bad-trunc-%d-%d", kind, ntags);
			write_seed(argv[1], name, b, n - 3);
			b[n - 2] ^= 0x20;
			snprintf(name, sizeof(name), "bad-flip-%d-%d", kind, ntags);
			write_seed(argv[1], name, b, n);
			free(b);
			nseeds += 3;
		}
	printf("wrote %d value seeds to %s\n", nseeds, argv[1]);
	return 0;
}
#endif /* FZ_VALUE_MAKE_SEEDS */
