/*-------------------------------------------------------------------------
 *
 * fuzz_frame.c
 *	  libFuzzer target for the frames around stored entries
 *	  (src/entry_frame.c): compressed frames (pglz, and lz4 where built
 *	  with it) and the head and chunks of chunked entries.
 *
 * The first byte of an input picks how the rest is read:
 *
 *	0 frame		the rest as a compressed frame from Redis: CePackedParse
 *				with a limit of FZ_MAX_RAW; when it accepts, exactly raw_len
 *				bytes are allocated (the limit is what keeps a lying length
 *				from allocating more) and CePackedUnpack must either refuse
 *				or fill them; what it gives goes on to CeEntryParse.
 *	1 repack	the rest as an entry's bytes, compressed with every method
 *				this build has; an accepted frame must parse and decompress
 *				back to the same bytes.  Then one byte of the frame (at a
 *				position the input picks) is flipped and the checksum fixed,
 *				so that the decompressors see damaged streams: they must
 *				refuse or give exactly raw_len bytes, never crash.
 *	2 head		the rest as a chunk head: when CeChunkHeadParse accepts,
 *				nchunks is ceil(total / chunk_size) and the payload lengths
 *				add up to total_len, each at most chunk_size.
 *	3 chunk		the first 48 bytes of the rest as a head (its checksum
 *				fixed), the remainder as its chunk 0 or 1: CeChunkCheck
 *				must not read past the chunk; a chunk written for the head
 *				with CeChunkHeaderWrite is accepted, and with any one byte
 *				changed, refused.
 *
 * Every buffer is allocated at its exact size, so ASan catches reads past
 * it.  Built with -DFZ_FRAME_MAKE_SEEDS, the file is instead a program
 * that writes seeds: make_frame_seeds ENTRY_DIR OUT_DIR packs the entries
 * make_seeds wrote with each method, and writes heads and chunks.
 *
 *-------------------------------------------------------------------------
 */
#include "c.h"

#include <stdio.h>
#include <stdlib.h>

#include "port/pg_crc32c.h"

#include "entry_format.h"
#include "entry_frame.h"

#define FZ_MAX_RAW (256 * 1024)

static void
fail(const char *what)
{
	fprintf(stderr, "fuzz_frame: %s\n", what);
	abort();
}

static const uint8 methods[] = {CE_PACK_PGLZ, CE_PACK_LZ4};

static void
fix_frame_crc(uint8 *f, size_t len)
{
	uint32 crc = CeEntryChecksum(f, len);

	memcpy(f + 12, &crc, 4);
}

/* mode 0: a frame from Redis */
static void
fuzz_frame(const uint8 *data, size_t size)
{
	uint8 method;
	uint32 raw_len;
	uint8 *out;
	CeEntryView view;

	if (CePackedParse(data, size, FZ_MAX_RAW, &method, &raw_len) != NULL)
		return;
	if (raw_len > FZ_MAX_RAW || raw_len < CE_HEADER_SIZE)
		fail("accepted a raw length outside the limit");
	out = malloc(raw_len);
	if (CePackedUnpack(data, size, out, raw_len) == NULL)
		(void) CeEntryParse(out, raw_len, &view);
	free(out);
}

/* mode 1: compress, round trip, then damage */
static void
fuzz_repack(const uint8 *data, size_t size)
{
	size_t pos;
	uint8 flip;

	if (size < 2 + CE_HEADER_SIZE)
		return;
	pos = data[0] | (data[1] << 8);
	flip = (uint8) (data[0] ^ data[1]) | 1;
	data += 2;
	size -= 2;
	for (size_t m = 0; m < lengthof(methods); m++)
	{
		size_t cap = CePackBound(methods[m], size);
		uint8 *frame = malloc(cap);
		size_t n = CePack(methods[m], data, size, frame, cap);
		uint8 method;
		uint32 raw_len;
		uint8 *out;
		uint8 *copy;

		if (n == 0)
		{
			free(frame);
			continue;
		}
		if (n > size - size / 8)
			fail("a frame kept that saves less than an eighth");
		copy = malloc(n);
		memcpy(copy, frame, n);
		free(frame);
		if (CePackedParse(copy, n, size, &method, &raw_len) != NULL ||
			method != methods[m] || raw_len != size)
			fail("a frame CePack wrote does not parse");
		out = malloc(raw_len);
		if (CePackedUnpack(copy, n, out, raw_len) != NULL ||
			memcmp(out, data, size) != 0)
			fail("a frame CePack wrote does not give its bytes back");

		/* damage the compressed stream, not the header */
		pos = CE_PACK_HEADER + pos % (n - CE_PACK_OVERHEAD);
		copy[pos] ^= flip;
		fix_frame_crc(copy, n);
		if (CePackedParse(copy, n, size, &method, &raw_len) != NULL)
			fail("a frame with its checksum fixed does not parse");
		(void) CePackedUnpack(copy, n, out, raw_len);
		free(out);
		free(copy);
	}
}

/* mode 2: a head */
static void
fuzz_head(const uint8 *data, size_t size)
{
	CeChunkHead h;
	uint64 sum = 0;
	uint8 again[CE_CHUNK_HEAD_LEN];

	if (CeChunkHeadParse(data, size, (size_t) 1 << 40, &h) != NULL)
		return;
	if ((h.total_len + h.chunk_size - 1) / h.chunk_size != h.nchunks)
		fail("accepted a head whose count does not match its length");
	for (uint32 i = 0; i < h.nchunks; i++)
	{
		uint32 plen = CeChunkPayloadLen(&h, i);

		if (plen == 0 || plen > h.chunk_size)
			fail("a chunk of an accepted head has no room or too much");
		sum += plen;
	}
	if (sum != h.total_len)
		fail("the chunks of an accepted head do not add up");
	CeChunkHeadWrite(&h, again);
	if (memcmp(again, data, CE_CHUNK_HEAD_LEN) != 0)
		fail("an accepted head does not write back the same");
}

/* mode 3: a chunk of a head */
static void
fuzz_chunk(const uint8 *data, size_t size)
{
	uint8 head[CE_CHUNK_HEAD_LEN];
	CeChunkHead h;
	pg_crc32c crc;
	uint32 idx;
	uint32 plen;
	uint8 *chunk;

	if (size < CE_CHUNK_HEAD_LEN + 1)
		return;
	memcpy(head, data, CE_CHUNK_HEAD_LEN);
	INIT_CRC32C(crc);
	COMP_CRC32C(crc, head, 44);
	FIN_CRC32C(crc);
	memcpy(head + 44, &crc, 4);
	data += CE_CHUNK_HEAD_LEN;
	size -= CE_CHUNK_HEAD_LEN;
	idx = data[0] & 1;
	data++;
	size--;
	if (CeChunkHeadParse(head, sizeof(head), FZ_MAX_RAW, &h) != NULL)
	{
		/* no head: read the bytes as a chunk of a made-up one */
		h.nchunks = 2;
		h.chunk_size = CE_MIN_CHUNK_SIZE;
		h.total_len = CE_MIN_CHUNK_SIZE + 1;
		memset(h.setid, 0x5a, sizeof(h.setid));
		h.gens_crc = 0;
	}
	chunk = malloc(size ? size : 1);
	memcpy(chunk, data, size);
	(void) CeChunkCheck(&h, idx, chunk, size);
	free(chunk);

	/* a chunk written for the head, whole and with one byte changed */
	if (idx >= h.nchunks)
		return;
	plen = CeChunkPayloadLen(&h, idx);
	chunk = malloc(CE_CHUNK_HEADER + plen);
	for (uint32 i = 0; i < plen; i++)
		chunk[CE_CHUNK_HEADER + i] = size ? data[i % size] : (uint8) i;
	CeChunkHeaderWrite(&h, idx, chunk + CE_CHUNK_HEADER, chunk);
	if (CeChunkCheck(&h, idx, chunk, CE_CHUNK_HEADER + plen) != NULL)
		fail("a chunk written for its head is refused");
	chunk[(size ? data[0] : 0) % (CE_CHUNK_HEADER + plen)] ^= 0x10;
	if (CeChunkCheck(&h, idx, chunk, CE_CHUNK_HEADER + plen) == NULL)
		fail("a chunk with a byte changed is accepted");
	free(chunk);
}

#ifndef FZ_FRAME_MAKE_SEEDS

int LLVMFuzzerTestOneInput(const uint8 *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8 *data, size_t size)
{
	uint8 *copy;

	if (size < 1)
		return 0;
	/* exactly the input's size, so that ASan sees any read past it */
	copy = malloc(size - 1 ? size - 1 : 1);
	memcpy(copy, data + 1, size - 1);
	switch (data[0] % 4)
	{
		case 0:
			fuzz_frame(copy, size - 1);
			break;
		case 1:
			fuzz_repack(copy, size - 1);
			break;
		case 2:
			fuzz_head(copy, size - 1);
			break;
		case 3:
			fuzz_chunk(copy, size - 1);
			break;
	}
	free(copy);
	return 0;
}

#else

#include <dirent.h>

static int nseeds = 0;

static void
write_seed(const char *dir, const char *name, uint8 mode, const uint8 *d,
		   size_t len)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s-%03d", dir, name, nseeds++);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(&mode, 1, 1, f) != 1 ||
		(len > 0 && fwrite(d, 1, len, f) != len) || fclose(f) != 0)
	{
		fprintf(stderr, "make_frame_seeds: cannot write %s\n", path);
		exit(1);
	}
}

/* Seeds of every mode from one entry's bytes. */
static void
seeds_of(const char *out, const uint8 *e, size_t len)
{
	uint8 *rp = malloc(len + 2);

	for (size_t m = 0; m < lengthof(methods); m++)
	{
		size_t cap = CePackBound(methods[m], len);
		uint8 *frame = malloc(cap);
		size_t n = CePack(methods[m], e, len, frame, cap);

		if (n > 0)
			write_seed(out, CePackName(methods[m]), 0, frame, n);
		free(frame);
	}
	rp[0] = (uint8) len;
	rp[1] = (uint8) (len >> 3);
	memcpy(rp + 2, e, len);
	write_seed(out, "repack", 1, rp, len + 2);
	free(rp);
}

int
main(int argc, char **argv)
{
	DIR *d;
	struct dirent *de;
	CeChunkHead h;
	uint8 head[CE_CHUNK_HEAD_LEN + 1 + 64];
	uint8 big[8192];

	if (argc != 3)
	{
		fprintf(stderr, "usage: make_frame_seeds ENTRY_DIR OUT_DIR\n");
		return 1;
	}
	d = opendir(argv[1]);
	if (d == NULL)
	{
		fprintf(stderr, "make_frame_seeds: cannot read %s\n", argv[1]);
		return 1;
	}
	while ((de = readdir(d)) != NULL)
	{
		char path[1024];
		FILE *f;
		uint8 *buf;
		long len;

		if (strncmp(de->d_name, "entry-", 6) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", argv[1], de->d_name);
		f = fopen(path, "rb");
		if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) <= 0)
			continue;
		rewind(f);
		buf = malloc(len);
		if (fread(buf, 1, len, f) == (size_t) len)
			seeds_of(argv[2], buf, len);
		free(buf);
		fclose(f);
	}
	closedir(d);

	/* a compressible entry-like buffer */
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8) ("abcdefgh"[i % 8] + (i / 997));
	seeds_of(argv[2], big, sizeof(big));

	/* heads: one chunk, several, the last one short, the largest */
	{
		static const struct
		{
			uint32 size;
			uint64 total;
		} hs[] = {{1024, 1024}, {1024, 1025}, {4096, 3 * 4096 + 7}, {1024 * 1024, 64 * 1024 * 1024}, {CE_MAX_CHUNK_SIZE, CE_MAX_CHUNK_SIZE}};

		for (size_t i = 0; i < lengthof(hs); i++)
		{
			h.chunk_size = hs[i].size;
			h.total_len = hs[i].total;
			h.nchunks = (uint32) ((hs[i].total + hs[i].size - 1) / hs[i].size);
			memset(h.setid, (int) i * 17 + 1, sizeof(h.setid));
			h.gens_crc = (uint32) i * 0x9E3779B9u;
			CeChunkHeadWrite(&h, head);
			write_seed(argv[2], "head", 2, head, CE_CHUNK_HEAD_LEN);
			head[CE_CHUNK_HEAD_LEN] = (uint8) i;
			memset(head + CE_CHUNK_HEAD_LEN + 1, 'c', 64);
			write_seed(argv[2], "chunk", 3, head, sizeof(head));
		}
	}
	printf("make_frame_seeds: %d seeds in %s\n", nseeds, argv[2]);
	return 0;
}

#endif
