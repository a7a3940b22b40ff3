/*-------------------------------------------------------------------------
 *
 * value_format.c
 *	  Building and strictly validating stored application values (see
 *	  value_format.h).  No backend dependency: the fuzz target links it.
 *
 * Every read is bounds-checked against the end of the buffer before it is
 * made; arithmetic is done in uint64 so that no length can wrap.
 *
 *-------------------------------------------------------------------------
 */
#include "c.h"

#include "port/pg_crc32c.h"

#include "format_bytes.h"
#include "value_format.h"

uint32
CvValueChecksum(const uint8 *buf, size_t len)
{
	return ce_crc_but_field12(buf, len);
}

/*
 * CvValueSize (value_format.h): the same limits CvValueParse enforces, so
 * that nothing is written that would not be read back.
 */
size_t
CvValueSize(const CvValueParts *p)
{
	uint64 gens_len = 0;
	uint64 total;

	if ((p->kind != CV_KIND_JSONB && p->kind != CV_KIND_BYTES) ||
		p->ngens < 1 || p->ngens > CV_MAX_FIXED_GENS ||
		p->ntags < 0 || p->ntags > CV_MAX_TAGS)
		return 0;
	for (int i = 0; i < p->ngens + p->ntags; i++)
	{
		if (p->gens_lens[i] < 1 || p->gens_lens[i] > 255)
			return 0;
		gens_len += 1 + p->gens_lens[i];
	}
	if (gens_len > CV_MAX_GENS_LEN)
		return 0;
	total = CV_HEADER_SIZE + (uint64) p->ntags * CV_TAG_DIGEST_LEN + gens_len +
		(uint64) p->data_len;
	if (total > PG_UINT32_MAX)
		return 0;
	return (size_t) total;
}

/* CvValueBuild (value_format.h) */
void
CvValueBuild(const CvValueParts *p, uint8 *out)
{
	size_t total = CvValueSize(p);
	uint8 *w = out + CV_HEADER_SIZE;
	uint8 *gens_start;

	Assert(total > 0);
	ce_put_u32(out, CV_VALUE_MAGIC);
	out[4] = CV_VALUE_VERSION;
	out[5] = p->kind;
	out[6] = (uint8) p->ngens;
	out[7] = (uint8) p->ntags;
	ce_put_u32(out + 8, (uint32) total);
	ce_put_u32(out + 12, 0);
	memcpy(out + 16, p->fingerprint, CV_FINGERPRINT_LEN);
	if (p->ntags > 0)
		memcpy(w, p->tags, (size_t) p->ntags * CV_TAG_DIGEST_LEN);
	w += (size_t) p->ntags * CV_TAG_DIGEST_LEN;
	gens_start = w;
	for (int i = 0; i < p->ngens + p->ntags; i++)
	{
		*w++ = (uint8) p->gens_lens[i];
		memcpy(w, p->gens[i], p->gens_lens[i]);
		w += p->gens_lens[i];
	}
	ce_put_u32(out + 32, (uint32) (w - gens_start));
	ce_put_u32(out + 36, (uint32) p->data_len);
	if (p->data_len > 0)
		memcpy(w, p->data, p->data_len);
	ce_put_u32(out + 12, CvValueChecksum(out, total));
}

/*
 * CvValueParse (value_format.h).  The checksum is checked before anything
 * past the header is looked at, but every length is still checked on its
 * own: a checksum is no defence against a forged value.
 */
const char *
CvValueParse(const uint8 *buf, size_t len, CvValueView *view)
{
	uint64 need;
	uint32 nvals;
	const uint8 *g;
	const uint8 *gend;

	memset(view, 0, sizeof(*view));
	if (len < CV_HEADER_SIZE)
		return "value shorter than its header";
	if (ce_get_u32(buf) != CV_VALUE_MAGIC)
		return "not a cache_ext value (bad magic)";
	if (buf[4] != CV_VALUE_VERSION)
		return "unknown value format version";
	if (buf[5] != CV_KIND_JSONB && buf[5] != CV_KIND_BYTES)
		return "unknown value kind";
	if (buf[6] < 1 || buf[6] > CV_MAX_FIXED_GENS || buf[7] > CV_MAX_TAGS)
		return "bad generation or tag count";
	if (ce_get_u32(buf + 8) != len)
		return "value length does not match its header";
	if (ce_get_u32(buf + 12) != CvValueChecksum(buf, len))
		return "value checksum mismatch";

	view->kind = buf[5];
	view->ngens = buf[6];
	view->ntags = buf[7];
	view->fingerprint = buf + 16;
	view->gens_len = ce_get_u32(buf + 32);
	view->data_len = ce_get_u32(buf + 36);
	if (view->gens_len > CV_MAX_GENS_LEN)
		return "generations section too long";
	need = (uint64) CV_HEADER_SIZE + (uint64) view->ntags * CV_TAG_DIGEST_LEN +
		view->gens_len + view->data_len;
	if (need != len)
		return "value sections do not add up to its length";
	view->tags = buf + CV_HEADER_SIZE;
	view->gens = view->tags + (size_t) view->ntags * CV_TAG_DIGEST_LEN;
	view->data = view->gens + view->gens_len;

	/* no tag twice: a writer never repeats one */
	for (int i = 1; i < view->ntags; i++)
		for (int j = 0; j < i; j++)
			if (memcmp(view->tags + (size_t) i * CV_TAG_DIGEST_LEN,
					   view->tags + (size_t) j * CV_TAG_DIGEST_LEN,
					   CV_TAG_DIGEST_LEN) == 0)
				return "a tag is given twice";

	/* exactly ngens + ntags values of 1..255 bytes fill the section */
	nvals = 0;
	g = view->gens;
	gend = view->gens + view->gens_len;
	while (g < gend)
	{
		if (g[0] == 0 || (uint64) (gend - g) < 1 + (uint64) g[0])
			return "bad generation value";
		g += 1 + g[0];
		nvals++;
	}
	if (nvals != (uint32) view->ngens + view->ntags)
		return "generation count does not match";

	if (view->kind == CV_KIND_JSONB &&
		(view->data_len == 0 || memchr(view->data, '\0', view->data_len) != NULL))
		return "jsonb text is empty or holds a NUL byte";
	return NULL;
}
