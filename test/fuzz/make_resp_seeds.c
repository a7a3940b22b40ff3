/*-------------------------------------------------------------------------
 *
 * make_resp_seeds.c
 *	  Write a seed corpus for fuzz_resp into the directory given as first
 *	  argument, and a libFuzzer dictionary of RESP tokens into the file given
 *	  as second argument (optional).
 *
 * Each seed is a session in fuzz_resp's input format (see the head of
 * fuzz_resp.c): a flags byte (AUTH / SELECT commands at connect, number of
 * operations), the recv() chunk sizes, a kind and parameter per operation,
 * then the server's bytes.  The shapes: the replies a well-behaved Redis
 * sends to each round trip of the extension (lookup hit / miss / stale with
 * the generation initialisation, corrupt entry and its UNLINK, explain,
 * SCAN loops, health, SET, MSET, AUTH / SELECT, the INFO server reply with
 * and without a run_id), replies that must be refused or that the server
 * sends when it is not serving (-LOADING, -WRONGTYPE, -NOAUTH), nested
 * arrays at and past hiredis's depth limit, declared lengths around every
 * limit (the 1M-element array limit, INT_MAX, 2^32, LLONG_MAX and beyond,
 * -1, -2), partial frames, and replies larger than the byte caps.  Many
 * are written twice more with small recv() chunks.
 *
 *	 make_resp_seeds DIR [DICT]
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* fuzz_resp.c's operation kinds */
enum
{
	K_LOOKUP = 0,
	K_INITGENS = 2,
	K_EXPLAIN = 3,
	K_PURGE = 4,
	K_HEALTH = 5,
	K_WRITE = 6,
	K_GENERIC = 7
};

typedef struct Buf
{
	char *d;
	size_t len;
	size_t cap;
} Buf;

static const char *outdir;
static int nseeds = 0;

static void
die(const char *msg, const char *arg)
{
	fprintf(stderr, "make_resp_seeds: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
	exit(1);
}

static void
put(Buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap)
	{
		b->cap = (b->len + n) * 2 + 64;
		b->d = realloc(b->d, b->cap);
		if (b->d == NULL)
			die("out of memory", NULL);
	}
	memcpy(b->d + b->len, p, n);
	b->len += n;
}

static void
putf(Buf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t) n >= sizeof(tmp))
		die("format overflow", fmt);
	put(b, tmp, (size_t) n);
}

/* RESP writers */
static void
bulk(Buf *b, const char *s, size_t n)
{
	putf(b, "$%zu\r\n", n);
	put(b, s, n);
	put(b, "\r\n", 2);
}

static void
bulks(Buf *b, const char *s)
{
	bulk(b, s, strlen(s));
}

static void
nil(Buf *b)
{
	putf(b, "$-1\r\n");
}

static void
arr(Buf *b, long long n)
{
	putf(b, "*%lld\r\n", n);
}

static void
integer(Buf *b, long long v)
{
	putf(b, ":%lld\r\n", v);
}

static void
status(Buf *b, const char *s)
{
	putf(b, "+%s\r\n", s);
}

static void
error(Buf *b, const char *s)
{
	putf(b, "-%s\r\n", s);
}

/* a generation value as cache_ext writes them: 32 hex digits */
static void
gen(Buf *b, int i)
{
	char v[33];

	for (int k = 0; k < 32; k++)
		v[k] = "0123456789abcdef"[(i * 7 + k * 13) % 16];
	v[32] = '\0';
	bulks(b, v);
}

/* INFO server as Redis 7 sends it, with the given run_id (NULL: none) */
static void
info_server(Buf *b, const char *run_id)
{
	Buf t = {0};

	putf(&t, "# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\n"
			 "redis_mode:standalone\r\nos:Linux 6.1.0-18-amd64 x86_64\r\n"
			 "arch_bits:64\r\nprocess_id:4711\r\nprocess_supervised:no\r\n");
	if (run_id)
		putf(&t, "run_id:%s\r\n", run_id);
	putf(&t, "tcp_port:6379\r\nuptime_in_seconds:1234\r\n");
	bulk(b, t.d, t.len);
	free(t.d);
}

static const char *const RUN_ID = "6f4c1b7e0c5b4a2f9d8e7c6b5a4f3e2d1c0b9a88";

/* INFO everything, shortened */
static void
info_all(Buf *b, const char *policy)
{
	Buf t = {0};

	putf(&t, "# Server\r\nredis_version:7.2.4\r\nrun_id:%s\r\n"
			 "# Memory\r\nused_memory:1048576\r\nmaxmemory:268435456\r\n"
			 "maxmemory_policy:%s\r\n# Persistence\r\naof_enabled:0\r\n"
			 "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n",
		 RUN_ID, policy);
	bulk(b, t.d, t.len);
	free(t.d);
}

/*
 * A session: the header (connect commands, chunk sizes, operations) then
 * the stream.
 */
typedef struct Seed
{
	int auth; /* 0..2 */
	int nchunks;
	uint8_t chunks[7];
	int nops;
	uint8_t ops[8][2];
	Buf s;
} Seed;

static void
seed_init(Seed *sd, int auth)
{
	memset(sd, 0, sizeof(*sd));
	sd->auth = auth;
}

static void
op(Seed *sd, int kind, int param)
{
	if (sd->nops == 8)
		die("too many operations", NULL);
	sd->ops[sd->nops][0] = (uint8_t) kind;
	sd->ops[sd->nops][1] = (uint8_t) param;
	sd->nops++;
}

static void
write_one(const char *name, const Seed *sd, int nchunks, const uint8_t *chunks)
{
	char path[4096];
	FILE *f;
	uint8_t h[2 + 7 + 16];
	size_t hl = 0;

	if (sd->nops == 0)
		die("a seed without operations", name);
	h[hl++] = (uint8_t) (sd->auth | ((sd->nops - 1) << 2));
	h[hl++] = (uint8_t) nchunks;
	for (int i = 0; i < nchunks; i++)
		h[hl++] = chunks[i];
	for (int i = 0; i < sd->nops; i++)
	{
		h[hl++] = sd->ops[i][0];
		h[hl++] = sd->ops[i][1];
	}
	snprintf(path, sizeof(path), "%s/%s", outdir, name);
	f = fopen(path, "wb");
	if (f == NULL)
		die("cannot create", path);
	if (fwrite(h, 1, hl, f) != hl ||
		(sd->s.len > 0 && fwrite(sd->s.d, 1, sd->s.len, f) != sd->s.len) ||
		fclose(f) != 0)
		die("cannot write", path);
	nseeds++;
}

/*
 * Write the seed as it is (one recv() of RECV_CHUNK) and, when split is
 * set, with 1-byte chunks and with alternating 3 / 7 byte chunks.
 */
static void
emit(const char *name, Seed *sd, int split)
{
	char n2[256];

	write_one(name, sd, sd->nchunks, sd->chunks);
	if (split && sd->s.len <= 4096)
	{
		static const uint8_t one[1] = {1};
		static const uint8_t odd[2] = {3, 7};

		snprintf(n2, sizeof(n2), "%s-c1", name);
		write_one(n2, sd, 1, one);
		snprintf(n2, sizeof(n2), "%s-c37", name);
		write_one(n2, sd, 2, odd);
	}
	free(sd->s.d);
	sd->s.d = NULL;
	sd->s.len = sd->s.cap = 0;
}

/* connect: AUTH (and SELECT) answered +OK */
static void
hello(Seed *sd)
{
	for (int i = 0; i < sd->auth; i++)
		status(&sd->s, "OK");
}

/* lookup param: n generations (2..17), max_entry_size selector 0..3 */
static int
lp(int n, int mes)
{
	return (n - 2) | (mes << 4);
}

static void
write_seeds(void)
{
	Seed sd;
	char name[64];

	/* ---- lookups ---- */
	for (int n = 2; n <= 5; n++)
	{
		/* hit: entry bytes, n generations; fresh connection: INFO first */
		seed_init(&sd, n % 3);
		hello(&sd);
		info_server(&sd.s, RUN_ID);
		bulks(&sd.s, "CE\x02\x00 an entry's bytes, decoded elsewhere");
		arr(&sd.s, n);
		for (int i = 0; i < n; i++)
			gen(&sd.s, i);
		op(&sd, K_LOOKUP, lp(n, 0));
		/* the same again on the same connection */
		bulk(&sd.s, "", 0);
		arr(&sd.s, n);
		for (int i = 0; i < n; i++)
			gen(&sd.s, i);
		op(&sd, K_LOOKUP, lp(n, 1));
		snprintf(name, sizeof(name), "lookup-hit-%d", n);
		emit(name, &sd, 1);
	}

	/* miss with missing generations: SET NX replies and MGET follow */
	seed_init(&sd, 0);
	info_server(&sd.s, RUN_ID);
	bulk(&sd.s, "", 0);
	arr(&sd.s, 3);
	gen(&sd.s, 1);
	nil(&sd.s);
	nil(&sd.s);
	status(&sd.s, "OK");
	nil(&sd.s); /* SET NX lost the race */
	arr(&sd.s, 2);
	gen(&sd.s, 2);
	gen(&sd.s, 3);
	op(&sd, K_LOOKUP, lp(3, 0));
	emit("lookup-miss-init", &sd, 1);

	/* stale: a generation is nil, the entry exists */
	seed_init(&sd, 0);
	info_server(&sd.s, RUN_ID);
	bulks(&sd.s, "entry");
	arr(&sd.s, 2);
	nil(&sd.s);
	gen(&sd.s, 5);
	status(&sd.s, "OK");
	arr(&sd.s, 1);
	bulk(&sd.s, "", 0); /* an empty generation value: refused */
	op(&sd, K_LOOKUP, lp(2, 0));
	emit("lookup-stale-badinit", &sd, 1);

	/* corrupt: WRONGTYPE, then UNLINK's :1 */
	seed_init(&sd, 0);
	info_server(&sd.s, RUN_ID);
	error(&sd.s, "WRONGTYPE Operation against a key holding the wrong kind of value");
	arr(&sd.s, 2);
	gen(&sd.s, 1);
	gen(&sd.s, 2);
	integer(&sd.s, 1);
	op(&sd, K_LOOKUP, lp(2, 0));
	emit("lookup-wrongtype", &sd, 1);

	/* corrupt: an integer where the entry should be; an entry over the limit */
	seed_init(&sd, 0);
	info_server(&sd.s, RUN_ID);
	integer(&sd.s, 42);
	arr(&sd.s, 2);
	gen(&sd.s, 1);
	gen(&sd.s, 2);
	integer(&sd.s, 0);
	{
		char big[1100];

		memset(big, 'x', sizeof(big));
		bulk(&sd.s, big, sizeof(big));
	}
	arr(&sd.s, 2);
	gen(&sd.s, 1);
	gen(&sd.s, 2);
	integer(&sd.s, 1);
	op(&sd, K_LOOKUP, lp(2, 0));
	op(&sd, K_LOOKUP, lp(2, 0));
	emit("lookup-corrupt", &sd, 0);

	/* the server is not serving */
	seed_init(&sd, 0);
	info_server(&sd.s, RUN_ID);
	error(&sd.s, "LOADING Redis is loading the dataset in memory");
	error(&sd.s, "LOADING Redis is loading the dataset in memory");
	info_server(&sd.s, RUN_ID);
	bulk(&sd.s, "", 0);
	error(&sd.s, "NOAUTH Authentication required.");
	op(&sd, K_LOOKUP, lp(2, 0));
	op(&sd, K_LOOKUP, lp(2, 0));
	emit("lookup-loading", &sd, 1);

	/* generations of 255 and 256 bytes, and an array of the wrong size */
	seed_init(&sd, 0);
	{
		char g[256];

		memset(g, 'g', sizeof(g));
		info_server(&sd.s, RUN_ID);
		bulks(&sd.s, "entry");
		arr(&sd.s, 2);
		bulk(&sd.s, g, 255);
		bulk(&sd.s, g, 255);
		bulks(&sd.s, "entry");
		arr(&sd.s, 2);
		bulk(&sd.s, g, 255);
		bulk(&sd.s, g, 256);
		bulks(&sd.s, "entry");
		arr(&sd.s, 3);
		gen(&sd.s, 1);
		gen(&sd.s, 2);
		gen(&sd.s, 3);
		op(&sd, K_LOOKUP, lp(2, 0));
		op(&sd, K_LOOKUP, lp(2, 0));
		op(&sd, K_LOOKUP, lp(2, 0));
	}
	emit("lookup-genlen", &sd, 0);

	/* a reply past the byte cap (max_entry_size 1024: cap 1024 + 1024 + 600) */
	seed_init(&sd, 0);
	info_server(&sd.s, RUN_ID);
	bulk(&sd.s, "", 0);
	arr(&sd.s, 2);
	gen(&sd.s, 1);
	gen(&sd.s, 2);
	{
		char big[3000];

		memset(big, 'e', sizeof(big));
		bulk(&sd.s, big, sizeof(big));
	}
	arr(&sd.s, 2);
	gen(&sd.s, 1);
	gen(&sd.s, 2);
	op(&sd, K_LOOKUP, lp(2, 0));
	op(&sd, K_LOOKUP, lp(2, 0));
	sd.nchunks = 1;
	sd.chunks[0] = 128; /* 128-byte recv()s */
	emit("lookup-cap", &sd, 0);

	/* ---- init_generations alone ---- */
	for (int n = 1; n <= 3; n++)
	{
		seed_init(&sd, 0);
		info_server(&sd.s, RUN_ID);
		for (int i = 0; i < n; i++)
			status(&sd.s, "OK");
		arr(&sd.s, n);
		for (int i = 0; i < n; i++)
			gen(&sd.s, i);
		op(&sd, K_INITGENS, n - 1);
		snprintf(name, sizeof(name), "initgens-%d", n);
		emit(name, &sd, 1);
	}

	/* ---- explain ---- */
	seed_init(&sd, 0);
	info_server(&sd.s, RUN_ID);
	bulks(&sd.s, "entry");
	integer(&sd.s, 59000);
	arr(&sd.s, 2);
	gen(&sd.s, 1);
	gen(&sd.s, 2);
	error(&sd.s, "WRONGTYPE Operation against a key holding the wrong kind of value");
	integer(&sd.s, -1);
	arr(&sd.s, 2);
	nil(&sd.s);
	gen(&sd.s, 2);
	op(&sd, K_EXPLAIN, lp(2, 0));
	op(&sd, K_EXPLAIN, lp(2, 0));
	emit("explain", &sd, 1);

	/* ---- purge ---- */
	seed_init(&sd, 0);
	info_server(&sd.s, RUN_ID);
	arr(&sd.s, 2);
	bulks(&sd.s, "17");
	arr(&sd.s, 3);
	bulks(&sd.s, "cache_ext:e:1:aa");
	bulks(&sd.s, "cache_ext:e:1:bb");
	bulks(&sd.s, "cache_ext:e:1:cc");
	integer(&sd.s, 3);
	arr(&sd.s, 2);
	bulks(&sd.s, "1234567890123456789012345678901"); /* 31 bytes */
	arr(&sd.s, 0);
	arr(&sd.s, 2);
	bulks(&sd.s, "0");
	arr(&sd.s, 2);
	bulks(&sd.s, "cache_ext:e:1:dd");
	integer(&sd.s, 7); /* skipped: not a string */
	integer(&sd.s, 1);
	op(&sd, K_PURGE, 15);
	emit("purge", &sd, 1);

	seed_init(&sd, 0);
	info_server(&sd.s, RUN_ID);
	arr(&sd.s, 2);
	bulks(&sd.s, "12345678901234567890123456789012"); /* 32 bytes: refused */
	arr(&sd.s, 0);
	op(&sd, K_PURGE, 15);
	emit("purge-longcursor", &sd, 0);

	seed_init(&sd, 0);
	info_server(&sd.s, RUN_ID);
	arr(&sd.s, 2);
	bulks(&sd.s, "5");
	arr(&sd.s, 1);
	bulks(&sd.s, "k");
	integer(&sd.s, 9223372036854775807LL);
	arr(&sd.s, 2);
	bulks(&sd.s, "0");
	arr(&sd.s, 1);
	bulks(&sd.s, "k");
	integer(&sd.s, 9223372036854775807LL);
	op(&sd, K_PURGE, 15);
	emit("purge-bigcount", &sd, 0);

	seed_init(&sd, 0);
	info_server(&sd.s, RUN_ID);
	arr(&sd.s, 3);
	bulks(&sd.s, "0");
	arr(&sd.s, 0);
	arr(&sd.s, 0);
	arr(&sd.s, 2);
	integer(&sd.s, 0);
	arr(&sd.s, 0);
	op(&sd, K_PURGE, 0);
	op(&sd, K_PURGE, 0);
	emit("purge-badshape", &sd, 1);

	/* ---- health ---- */
	seed_init(&sd, 0);
	info_server(&sd.s, RUN_ID);
	status(&sd.s, "PONG");
	info_all(&sd.s, "volatile-lru");
	status(&sd.s, "PONG");
	info_all(&sd.s, "allkeys-lru");
	status(&sd.s, "PONG");
	error(&sd.s, "NOPERM this user has no permissions to run the 'info' command");
	op(&sd, K_HEALTH, 0);
	op(&sd, K_HEALTH, 0);
	op(&sd, K_HEALTH, 0);
	emit("health", &sd, 0);

	seed_init(&sd, 0);
	info_server(&sd.s, RUN_ID);
	status(&sd.s, "PONG");
	bulks(&sd.s, "role:master\nmaxmemory:x\r\nrolex:1\nused_memory:-9223372036854775809\n"
				 "maxmemory_policy:noeviction\nredis_version:\naof_enabled:99999999999999999999");
	op(&sd, K_HEALTH, 0);
	emit("health-odd", &sd, 1);

	/* ---- writes ---- */
	seed_init(&sd, 0);
	info_server(&sd.s, RUN_ID);
	status(&sd.s, "OK");
	error(&sd.s, "OOM command not allowed when used memory > 'maxmemory'.");
	nil(&sd.s);
	status(&sd.s, "OK");
	error(&sd.s, "MISCONF Redis is configured to save RDB snapshots");
	info_server(&sd.s, RUN_ID);
	integer(&sd.s, 1);
	op(&sd, K_WRITE, 1);
	op(&sd, K_WRITE, 1);
	op(&sd, K_WRITE, 1);
	op(&sd, K_WRITE, 0);
	op(&sd, K_WRITE, 0);
	op(&sd, K_WRITE, 0);
	emit("writes", &sd, 1);

	/* ---- connecting ---- */
	seed_init(&sd, 2);
	status(&sd.s, "OK");
	status(&sd.s, "OK");
	info_server(&sd.s, RUN_ID);
	status(&sd.s, "PONG");
	op(&sd, K_WRITE, 0);
	emit("connect-auth-select", &sd, 1);

	seed_init(&sd, 1);
	error(&sd.s, "WRONGPASS invalid username-password pair or user is disabled.");
	status(&sd.s, "OK");
	info_server(&sd.s, RUN_ID);
	status(&sd.s, "OK");
	op(&sd, K_WRITE, 0);
	op(&sd, K_WRITE, 0);
	emit("connect-wrongpass", &sd, 1);

	/* the server closes an idle connection: retried on a new one */
	seed_init(&sd, 0);
	info_server(&sd.s, RUN_ID);
	status(&sd.s, "OK");
	op(&sd, K_WRITE, 0);
	op(&sd, K_WRITE, 0);
	emit("connect-closed", &sd, 0);

	/* ---- INFO server variants ---- */
	{
		static const char *const ids[] = {
			"", "a", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",
			"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
			"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
			"abc-def", "\xe9t\xe9"};

		for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		{
			seed_init(&sd, 0);
			info_server(&sd.s, ids[i]);
			status(&sd.s, "OK");
			op(&sd, K_WRITE, 0);
			snprintf(name, sizeof(name), "info-runid-%zu", i);
			emit(name, &sd, 0);
		}
	}
	seed_init(&sd, 0);
	info_server(&sd.s, NULL);
	status(&sd.s, "OK");
	op(&sd, K_WRITE, 0);
	emit("info-no-runid", &sd, 1);

	seed_init(&sd, 0);
	bulk(&sd.s, "# Server\r\n\0run_id:abc\r\n", 23); /* NUL before run_id */
	status(&sd.s, "OK");
	bulks(&sd.s, "run_id:"); /* at the very end */
	op(&sd, K_WRITE, 0);
	emit("info-nul", &sd, 1);

	seed_init(&sd, 0);
	error(&sd.s, "NOPERM this user has no permissions to run the 'info' command");
	status(&sd.s, "OK");
	op(&sd, K_WRITE, 0);
	emit("info-refused", &sd, 1);

	seed_init(&sd, 0);
	status(&sd.s, "run_id:abcdef"); /* a status, not a bulk: not looked at */
	status(&sd.s, "OK");
	op(&sd, K_WRITE, 0);
	emit("info-status", &sd, 1);

	/* ---- nesting, declared lengths, partial frames (generic op) ---- */
	for (int depth = 6; depth <= 9; depth++)
	{
		seed_init(&sd, 0);
		info_server(&sd.s, RUN_ID);
		for (int d = 0; d < depth; d++)
			arr(&sd.s, 2);
		integer(&sd.s, 1);
		for (int d = 0; d < depth; d++)
			nil(&sd.s);
		op(&sd, K_GENERIC, 0);
		snprintf(name, sizeof(name), "nested-%d", depth);
		emit(name, &sd, 1);
	}

	{
		static const char *const frames[] = {
			"*1048576\r\n:1\r\n",
			"*1048577\r\n:1\r\n",
			"*2147483647\r\n",
			"*2147483648\r\n",
			"*4294967296\r\n:1\r\n",
			"*9223372036854775807\r\n",
			"*9223372036854775808\r\n",
			"*-1\r\n",
			"*-2\r\n",
			"*-9223372036854775808\r\n",
			"*0\r\n",
			"*00\r\n",
			"*+1\r\n:1\r\n",
			"* 1\r\n",
			"*\r\n",
			"$2147483647\r\nabc",
			"$4294967297\r\nabc\r\n",
			"$9223372036854775807\r\nabc",
			"$9223372036854775808\r\n",
			"$18446744073709551616\r\n",
			"$-1\r\n",
			"$-2\r\n",
			"$-0\r\n",
			"$0\r\n\r\n",
			"$3\r\nabcXY",
			"$3\r\na\r\nb\r\n",
			":9223372036854775807\r\n",
			":-9223372036854775808\r\n",
			":9223372036854775808\r\n",
			":-9223372036854775809\r\n",
			":01\r\n",
			":\r\n",
			"+\r\n",
			"-\r\n",
			"+OK\rmore\r\n",
			"+OK\n\r\n",
			"!3\r\nabc\r\n",
			"_\r\n",
			"%1\r\n:1\r\n:2\r\n",
			"*2\r\n$3\r\nab",
			"*2\r\n:1\r",
			"*3\r\n:1\r\n*1\r\n",
			"$5\r\nhel",
			"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",
			"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",
			"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*-1\r\n",
			"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n$-1\r\n",
			"*2\r\n*1048577\r\n",
			"*3\r\n*0\r\n*-1\r\n$-1\r\n",
			"",
		};

		for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++)
		{
			seed_init(&sd, 0);
			info_server(&sd.s, RUN_ID);
			put(&sd.s, frames[i], strlen(frames[i]));
			status(&sd.s, "OK");
			op(&sd, K_GENERIC, 1);
			op(&sd, K_WRITE, 0);
			snprintf(name, sizeof(name), "frame-%02zu", i);
			emit(name, &sd, 1);
		}
	}

	/* a pipeline of several replies, cap 64 << 4 = 1 kB, over it */
	seed_init(&sd, 0);
	info_server(&sd.s, RUN_ID);
	for (int i = 0; i < 8; i++)
	{
		char v[300];

		memset(v, 'a' + i, sizeof(v));
		bulk(&sd.s, v, sizeof(v));
	}
	op(&sd, K_GENERIC, 7 | (4 << 3));
	emit("generic-cap", &sd, 0);
}

static const char *const dict[] = {
	"\\x0d\\x0a",
	"*",
	"$",
	"+",
	"-",
	":",
	"+OK\\x0d\\x0a",
	"+PONG\\x0d\\x0a",
	"$-1\\x0d\\x0a",
	"*-1\\x0d\\x0a",
	"*0\\x0d\\x0a",
	"$0\\x0d\\x0a\\x0d\\x0a",
	"*1\\x0d\\x0a",
	"*2\\x0d\\x0a",
	":0\\x0d\\x0a",
	":1\\x0d\\x0a",
	"-WRONGTYPE ",
	"-LOADING ",
	"-ERR ",
	"-NOAUTH ",
	"WRONGTYPE",
	/* Sentinel: ROLE, get-master-addr-by-name, errors that re-resolve */
	"*3\\x0d\\x0a$6\\x0d\\x0amaster\\x0d\\x0a",
	"$5\\x0d\\x0aslave\\x0d\\x0a",
	"*2\\x0d\\x0a$9\\x0d\\x0a127.0.0.1\\x0d\\x0a$4\\x0d\\x0a6379\\x0d\\x0a",
	"-READONLY ",
	"-MASTERDOWN ",
	"run_id:",
	"\\x0d\\x0arun_id:",
	"redis_version:",
	"role:",
	"maxmemory:",
	"maxmemory_policy:",
	"aof_enabled:",
	"used_memory:",
	"allkeys-lru",
	"noeviction",
	"1048576",
	"1048577",
	"2147483647",
	"2147483648",
	"4294967296",
	"9223372036854775807",
	"9223372036854775808",
	"-9223372036854775808",
	"-2",
	"-0",
	"00",
	"255",
	"256",
	"31",
	"32",
	"63",
	"64",
};

static void
write_dict(const char *path)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		die("cannot create", path);
	for (size_t i = 0; i < sizeof(dict) / sizeof(dict[0]); i++)
		fprintf(f, "\"%s\"\n", dict[i]);
	if (fclose(f) != 0)
		die("cannot write", path);
}

int
main(int argc, char **argv)
{
	if (argc < 2 || argc > 3)
	{
		fprintf(stderr, "usage: make_resp_seeds DIR [DICT]\n");
		return 2;
	}
	outdir = argv[1];
	if (mkdir(outdir, 0777) != 0 && errno != EEXIST)
		die("cannot create", outdir);
	write_seeds();
	if (argc == 3)
		write_dict(argv[2]);
	printf("fuzz_resp seeds: %d files in %s%s%s\n", nseeds, outdir,
		   argc == 3 ? ", dictionary " : "", argc == 3 ? argv[2] : "");
	return 0;
}
