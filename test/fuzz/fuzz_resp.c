/*-------------------------------------------------------------------------
 *
 * fuzz_resp.c
 *	  libFuzzer target for the handling of Redis replies: hiredis's reader
 *	  (the system libhiredis, as the extension links it) configured the way
 *	  src/redis/client.c configures it, driven the way exchange() drives it,
 *	  and the interpretation of the replies by the store layer
 *	  (src/store/store_reply.c, linked as it is).
 *
 * The input is one backend's session with a hostile or broken server:
 *
 *	 byte 0	  flags: bits 0-1 the number of commands (AUTH, SELECT) sent when
 *			  connecting, 0..2 (3 means 2); bits 2-4 the number of
 *			  operations minus one (1..8)
 *	 byte 1	  k = byte % 8, then k chunk-size bytes: successive recv()s return
 *			  at most these sizes in turn (0: RECV_CHUNK; 1..191: that many
 *			  bytes; 192..255: (v - 191) kB); none: RECV_CHUNK each
 *	 then	  two bytes per operation: kind, parameter (see run_op())
 *	 then	  the bytes the server sends, in order, over every connection of
 *			  the session (a connection dropped after a failure is followed
 *			  by a new one that reads on from where the last recv() stopped)
 *
 * A missing header byte counts as 0.  The operations are the extension's
 * round trips: cached_query's lookup (GETRANGE + MGET, then UNLINK of a
 * corrupt entry and the generation initialisation, SET NX... + MGET, as
 * lookup() does them), init_generations alone, cache_explain's GETRANGE +
 * PTTL + MGET, cache_purge's SCAN / UNLINK loop, cache_health's PING and
 * INFO, store's SET, the incarnation token's SET ... GET, the bumps' MSET,
 * and a pipeline of n replies read
 * without interpretation.  The first pipeline of every connection gets
 * INFO server in front of it, whose reply goes through report_run_id(),
 * with the byte cap raised by 64 kB, as exec_once() does; a connection is
 * made by the AUTH / SELECT exchange of connect_redis() when the flags ask
 * for it.  A failed exchange, an error reply that RedisReportError() is
 * given, or a refused AUTH drops the connection (the reader is freed), as
 * in the extension.
 *
 * Oracles:
 *
 *	- ASan / UBSan / LSan on everything, including hiredis's allocations
 *	  (its malloc is ASan's, and memcpy & co. are intercepted): every reply,
 *	  every reader, every formatted command is freed on every path.
 *
 *	- walk_reply(): every reply tree is walked as a consumer would: types
 *	  are known ones, strings are NUL-terminated at len (strstr, strncmp
 *	  and %s in the extension rely on it) and every byte is read, arrays
 *	  have no more than MAX_REPLY_ELEMENTS non-NULL elements, the depth is
 *	  hiredis's, and a tree holds no more than its bytes could describe.
 *
 *	- ref_item(): an independent reader of RESP2 as hiredis 0.14.1 accepts
 *	  it (strict string2ll lengths, -1 for nil, the two bytes after a bulk
 *	  payload skipped unchecked, arrays at most 8 deep, the array limit),
 *	  run over the same bytes.  Whenever hiredis hands out a reply, the
 *	  reference must read an identical one from the same position; when
 *	  hiredis fails, the reference must fail at the same place for the same
 *	  reason; when hiredis waits for more bytes, so must the reference.  It
 *	  also gives the fuzzer coverage of the grammar: libhiredis is not
 *	  instrumented.
 *
 *	- The store's interpretation of replies (store_reply.c: the lookup
 *	  verdict of cached_query and cache_explain alike, the generation
 *	  initialisation, writes, the incarnation token, SCAN and UNLINK, INFO
 *	  fields) is the real code, driven as store.c drives it, and its
 *	  verdict compared with an independent reading of what it must accept:
 *	  e.g. a lookup's generations are usable exactly when the MGET reply is
 *	  an array of n elements, each a string of 1..255 bytes or nil, and
 *	  explain reaches the same verdict as the lookup; SCAN's reply must be
 *	  an array of two, a string cursor of at most 31 bytes and an array;
 *	  UNLINK's count is clamped to the keys sent.  The client's reading of
 *	  RESP around hiredis (src/redis/resp.c: the array limit, feeding under
 *	  a byte cap, the run_id of INFO server) is the real code too: its
 *	  run_id must be the alphanumeric run after the first "run_id:", at
 *	  most 63 characters.  The client's control flow (connect_redis,
 *	  exchange, the retry of a closed connection) is mirrored here, with
 *	  the socket replaced by the input's bytes.
 *
 *-------------------------------------------------------------------------
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis.h>

/*
 * src/store/store_reply.c and src/redis/text.c, linked as they are (their
 * headers need c.h, which store_reply.h includes)
 */
#include "redis/redis_text.h"
#include "redis/resp.h"
#include "store/store_reply.h"

#define FZ_NAME "fuzz_resp"
#include "fuzz_check.h"

/* Text that came from Redis reaches users only as printable ASCII. */
static void
check_printable(const char *t)
{
	if (t == NULL)
		return;
	for (const char *c = t; *c; c++)
		if ((unsigned char) *c < 0x20 || (unsigned char) *c > 0x7e)
			FAIL("byte 0x%02x in text shown to users: \"%s\"", (unsigned char) *c, t);
}

/*
 * RedisSafeText (src/redis/text.c) on raw bytes: NUL-terminated within
 * dstlen, printable ASCII only, and its escapes read back as a prefix of
 * the input, cut only between whole characters.
 */
static void
check_safe_text(const uint8_t *src, size_t len, size_t dstlen)
{
	char dst[300];
	size_t n;
	size_t in = 0;

	CHECK(dstlen <= sizeof(dst));
	memset(dst, 0x7f, sizeof(dst));
	n = RedisSafeText(dst, dstlen, (const char *) src, len);
	if (dstlen == 0)
	{
		CHECK(n == 0 && (unsigned char) dst[0] == 0x7f);
		return;
	}
	CHECK(n < dstlen && dst[n] == '\0' && strlen(dst) == n);
	check_printable(dst);
	for (size_t o = 0; o < n;)
	{
		unsigned int b;

		CHECK(in < len);
		if (dst[o] == '\\')
		{
			CHECK(o + 4 <= n && dst[o + 1] == 'x');
			CHECK(sscanf(dst + o + 2, "%2x", &b) == 1);
			CHECK(b == src[in] && (b < 0x20 || b > 0x7e || b == '\\'));
			o += 4;
		}
		else
		{
			CHECK((unsigned char) dst[o] == src[in]);
			o++;
		}
		in++;
	}
	/* cut only when the next character did not fit */
	if (in < len)
		CHECK(n + ((src[in] >= 0x20 && src[in] <= 0x7e && src[in] != '\\') ? 1 : 4) >= dstlen);
}

#ifndef Min
#define Min(a, b) ((a) < (b) ? (a) : (b))
#endif

/* as in src/redis/client.c */
#define RECV_CHUNK 65536

/* hiredis 0.14: rstack[9], a multi-bulk at index 8 is refused */
#define HIREDIS_MAX_RIDX 8

/* keeps the reads of the walks from being optimised away */
static volatile uint64_t sink;

/* ---- the reader: configured by src/redis/resp.c, as client.c does ------- */

/* ---- the session --------------------------------------------------------- */

typedef struct Session
{
	const uint8_t *s; /* the server's bytes */
	size_t slen;
	size_t spos; /* next byte a recv() returns */

	uint32_t chunks[8]; /* recv() sizes, in turn */
	int nchunks;
	int chunk_i;

	int connect_cmds; /* AUTH / SELECT at connect, 0..2 */

	/* the connection */
	bool connected;
	redisReader *reader;
	size_t conn_start; /* stream offset of its first byte */
	size_t fed_end;	   /* stream offset past the last byte fed */
	size_t ref_pos;	   /* stream offset the reference reads on from */

	char last_error[256];
	bool closed; /* the last exchange failed at the end of the stream */
} Session;

static void
disconnect(Session *S)
{
	S->connected = false;
	if (S->reader)
	{
		redisReaderFree(S->reader);
		S->reader = NULL;
	}
}

static void
free_replies(int n, redisReply **replies)
{
	for (int i = 0; i < n; i++)
	{
		if (replies[i])
			freeReplyObject(replies[i]);
		replies[i] = NULL;
	}
}

/* RedisReportError(): the server answered but is not serving. */
static void
report_error(Session *S, const char *msg, size_t len)
{
	char safe[160];

	RedisSafeText(safe, sizeof(safe), msg, len);
	snprintf(S->last_error, sizeof(S->last_error), "Redis answered: %s", safe);
	disconnect(S);
}

/* client.c's reader_error() */
static void
reader_error(Session *S)
{
	char safe[200];

	RedisSafeText(safe, sizeof(safe), S->reader->errstr,
				  strnlen(S->reader->errstr, sizeof(S->reader->errstr)));
	snprintf(S->last_error, sizeof(S->last_error), "invalid reply from Redis: %s", safe);
}

/* ---- independent reference reader ------------------------------------------ */

typedef enum RefResult
{
	REF_DONE,
	REF_MORE,
	REF_ERR
} RefResult;

typedef enum ErrKind
{
	EK_NONE,
	EK_TYPE_BYTE,
	EK_INTEGER,
	EK_BULK_LEN,
	EK_BULK_RANGE,
	EK_MB_LEN,
	EK_MB_RANGE,
	EK_DEPTH,
	EK_OOM,
	EK_UNKNOWN
} ErrKind;

static const char *const ek_names[] = {
	"none", "type byte", "integer", "bulk length", "bulk range",
	"multi-bulk length", "multi-bulk range", "depth", "out of memory", "unknown"};

/*
 * A decimal as hiredis's string2ll() takes it, written from its contract:
 * an optional '-', then "0" alone or a digit 1-9 followed by digits, and
 * nothing else; the value must fit a long long.
 */
static bool
ref_decimal(const uint8_t *p, size_t n, long long *out)
{
	size_t i = 0;
	bool neg = false;
	unsigned long long v = 0;
	unsigned long long lim;

	if (n == 1 && p[0] == '0')
	{
		*out = 0;
		return true;
	}
	if (n > 0 && p[0] == '-')
	{
		neg = true;
		i = 1;
	}
	if (i >= n || p[i] < '1' || p[i] > '9')
		return false;
	lim = neg ? (unsigned long long) LLONG_MAX + 1 : (unsigned long long) LLONG_MAX;
	for (; i < n; i++)
	{
		if (p[i] < '0' || p[i] > '9')
			return false;
		if (v > (lim - (unsigned long long) (p[i] - '0')) / 10)
			return false;
		v = v * 10 + (unsigned long long) (p[i] - '0');
	}
	if (neg)
		*out = v == (unsigned long long) LLONG_MAX + 1 ? LLONG_MIN : -(long long) v;
	else
		*out = (long long) v;
	return true;
}

/* The first CR LF at or after pos, or -1. */
static long
ref_line_end(const uint8_t *b, size_t n, size_t pos)
{
	for (size_t i = pos; i + 1 < n; i++)
		if (b[i] == '\r' && b[i + 1] == '\n')
			return (long) i;
	return -1;
}

static void
ref_mismatch(const char *what, const redisReply *h, size_t pos)
{
	FAIL("hiredis and the reference reader disagree at stream offset %zu: %s "
		 "(hiredis: type %d, len %zu, elements %zu)",
		 pos, what, h ? h->type : -1, h ? h->len : 0, h ? h->elements : 0);
}

/*
 * Read one item of b[0..n) at *pos, nested ridx deep (0: a whole reply), and
 * when h is not NULL check that it is the item hiredis built.  On REF_ERR
 * *ek says why.
 */
static RefResult
ref_item(const uint8_t *b, size_t n, size_t *pos, int ridx, const redisReply *h,
		 ErrKind *ek)
{
	size_t start = *pos;
	uint8_t t;
	long e;
	long long v;

	if (*pos >= n)
		return REF_MORE;
	t = b[*pos];
	switch (t)
	{
		case '+':
		case '-':
		case ':':
			if ((e = ref_line_end(b, n, *pos + 1)) < 0)
				return REF_MORE;
			{
				const uint8_t *line = b + *pos + 1;
				size_t len = (size_t) e - (*pos + 1);

				*pos = (size_t) e + 2;
				if (t == ':')
				{
					if (!ref_decimal(line, len, &v))
					{
						*ek = EK_INTEGER;
						return REF_ERR;
					}
					if (h && (h->type != REDIS_REPLY_INTEGER || h->integer != v))
						ref_mismatch("integer", h, start);
				}
				else if (h)
				{
					int want = t == '+' ? REDIS_REPLY_STATUS : REDIS_REPLY_ERROR;

					if (h->type != want || h->len != len ||
						(len > 0 && memcmp(h->str, line, len) != 0))
						ref_mismatch(t == '+' ? "status" : "error", h, start);
				}
			}
			return REF_DONE;

		case '$':
			if ((e = ref_line_end(b, n, *pos + 1)) < 0)
				return REF_MORE;
			if (!ref_decimal(b + *pos + 1, (size_t) e - (*pos + 1), &v))
			{
				*pos = (size_t) e + 2;
				*ek = EK_BULK_LEN;
				return REF_ERR;
			}
			if (v < -1)
			{
				*pos = (size_t) e + 2;
				*ek = EK_BULK_RANGE;
				return REF_ERR;
			}
			if (v == -1)
			{
				*pos = (size_t) e + 2;
				if (h && h->type != REDIS_REPLY_NIL)
					ref_mismatch("nil bulk", h, start);
				return REF_DONE;
			}
			/* the payload, then two bytes hiredis skips without looking */
			if ((unsigned long long) v > n - ((size_t) e + 2) ||
				n - ((size_t) e + 2) - (size_t) v < 2)
				return REF_MORE;
			*pos = (size_t) e + 2 + (size_t) v + 2;
			if (h && (h->type != REDIS_REPLY_STRING || h->len != (size_t) v || (v > 0 && memcmp(h->str, b + e + 2, (size_t) v) != 0)))
				ref_mismatch("bulk string", h, start);
			return REF_DONE;

		case '*':
			/* hiredis refuses a multi-bulk this deep before reading its line */
			if (ridx >= HIREDIS_MAX_RIDX)
			{
				*pos += 1;
				*ek = EK_DEPTH;
				return REF_ERR;
			}
			if ((e = ref_line_end(b, n, *pos + 1)) < 0)
				return REF_MORE;
			if (!ref_decimal(b + *pos + 1, (size_t) e - (*pos + 1), &v))
			{
				*ek = EK_MB_LEN;
				return REF_ERR;
			}
			*pos = (size_t) e + 2;
			if (v < -1 || v > INT_MAX)
			{
				*ek = EK_MB_RANGE;
				return REF_ERR;
			}
			if (v == -1)
			{
				if (h && h->type != REDIS_REPLY_NIL)
					ref_mismatch("nil multi-bulk", h, start);
				return REF_DONE;
			}
			if (v > MAX_REPLY_ELEMENTS)
			{
				/* create_array_limited() refuses it: "Out of memory" */
				*ek = EK_OOM;
				return REF_ERR;
			}
			if (h && (h->type != REDIS_REPLY_ARRAY || h->elements != (size_t) v))
				ref_mismatch("array", h, start);
			for (long long i = 0; i < v; i++)
			{
				RefResult rr = ref_item(b, n, pos, ridx + 1,
										h ? h->element[i] : NULL, ek);

				if (rr != REF_DONE)
					return rr;
			}
			return REF_DONE;

		default:
			*pos += 1;
			*ek = EK_TYPE_BYTE;
			return REF_ERR;
	}
}

/* Reads one reply from the session's bytes at ref_pos, moving it on. */
static RefResult
ref_next(Session *S, const redisReply *h, ErrKind *ek)
{
	size_t pos = S->ref_pos;
	RefResult rr;

	*ek = EK_NONE;
	rr = ref_item(S->s, S->fed_end, &pos, 0, h, ek);
	if (rr == REF_DONE)
		S->ref_pos = pos;
	return rr;
}

static ErrKind
hiredis_err_kind(const redisReader *r)
{
	const char *e = r->errstr;

	if (r->err == REDIS_ERR_OOM)
		return strcmp(e, "Out of memory") == 0 ? EK_OOM : EK_UNKNOWN;
	if (r->err != REDIS_ERR_PROTOCOL)
		return EK_UNKNOWN;
	if (strncmp(e, "Protocol error, got ", 20) == 0 &&
		strstr(e, " as reply type byte") != NULL)
		return EK_TYPE_BYTE;
	if (strcmp(e, "Bad integer value") == 0)
		return EK_INTEGER;
	if (strcmp(e, "Bad bulk string length") == 0)
		return EK_BULK_LEN;
	if (strcmp(e, "Bulk string length out of range") == 0)
		return EK_BULK_RANGE;
	if (strcmp(e, "Bad multi-bulk length") == 0)
		return EK_MB_LEN;
	if (strcmp(e, "Multi-bulk length out of range") == 0)
		return EK_MB_RANGE;
	if (strcmp(e, "No support for nested multi bulk replies with depth > 7") == 0)
		return EK_DEPTH;
	return EK_UNKNOWN;
}

/* ---- the walk -------------------------------------------------------------- */

/*
 * Walk a reply as a consumer would and check what the extension assumes of
 * it.  Returns the number of nodes.
 */
static void check_sentinel_parsers(const redisReply *r);

static size_t
walk_reply(const redisReply *r, int depth)
{
	size_t nodes = 1;
	uint64_t h = 0;

	CHECK(r != NULL);
	CHECK(depth <= HIREDIS_MAX_RIDX);
	if (depth <= 1)
		check_sentinel_parsers(r);
	switch (r->type)
	{
		case REDIS_REPLY_STRING:
		case REDIS_REPLY_STATUS:
		case REDIS_REPLY_ERROR:
			CHECK(r->str != NULL);
			CHECK(r->elements == 0);
			for (size_t i = 0; i < r->len; i++)
				h = h * 31 + (unsigned char) r->str[i];
			CHECK(r->str[r->len] == '\0');
			/* what strstr / strncmp / %s see: the bytes up to the first NUL */
			CHECK(strlen(r->str) <= r->len);
			if (r->type != REDIS_REPLY_STRING)
			{
				/* a line never holds CR LF */
				for (size_t i = 0; i + 1 < r->len; i++)
					CHECK(!(r->str[i] == '\r' && r->str[i + 1] == '\n'));
			}
			break;
		case REDIS_REPLY_INTEGER:
			CHECK(r->str == NULL && r->elements == 0);
			h = (uint64_t) r->integer;
			break;
		case REDIS_REPLY_NIL:
			CHECK(r->str == NULL && r->elements == 0 && r->len == 0);
			break;
		case REDIS_REPLY_ARRAY:
			CHECK(r->str == NULL);
			CHECK(r->elements <= MAX_REPLY_ELEMENTS);
			CHECK(r->elements == 0 || r->element != NULL);
			for (size_t i = 0; i < r->elements; i++)
			{
				CHECK(r->element[i] != NULL);
				nodes += walk_reply(r->element[i], depth + 1);
			}
			break;
		default:
			FAIL("reply of unknown type %d", r->type);
	}
	sink += h;
	return nodes;
}

/* ---- exchange() -------------------------------------------------------------- */

/* TransportRecv(): the next chunk of the stream; -1 at its end (EOF). */
static long
recv_chunk(Session *S, const uint8_t **chunk)
{
	size_t want;
	size_t r;

	if (S->spos >= S->slen)
		return -1;
	want = S->nchunks > 0 ? S->chunks[S->chunk_i++ % S->nchunks] : RECV_CHUNK;
	r = Min(want, S->slen - S->spos);
	*chunk = S->s + S->spos;
	S->spos += r;
	return (long) r;
}

/*
 * As exchange() in client.c: read n replies, feeding the reader what recv()
 * returns, refusing to receive more than max_reply_bytes.  On failure
 * nothing is left in replies[] (the caller drops the connection).
 */
static bool
exchange(Session *S, int n, redisReply **replies, size_t max_reply_bytes)
{
	size_t received = 0;
	int got = 0;
	ErrKind ek;
	RefResult rr;

	CHECK(S->connected && S->reader != NULL);
	S->closed = false;
	memset(replies, 0, n * sizeof(redisReply *));
	while (got < n)
	{
		void *reply = NULL;
		const uint8_t *chunk = NULL;
		long r;
		RespFeedResult fed;

		if (redisReaderGetReply(S->reader, &reply) != REDIS_OK)
		{
			ErrKind hk = hiredis_err_kind(S->reader);

			CHECK(reply == NULL);
			if (hk == EK_UNKNOWN)
				FAIL("unexpected reader error %d: %s", S->reader->err, S->reader->errstr);
			rr = ref_next(S, NULL, &ek);
			if (rr != REF_ERR || ek != hk)
				FAIL("hiredis failed (%s: %s) where the reference reader %s%s at stream offset %zu",
					 ek_names[hk], S->reader->errstr,
					 rr == REF_DONE ? "read a reply" : rr == REF_MORE ? "waits for more" :
																		"failed with ",
					 rr == REF_ERR ? ek_names[ek] : "", S->ref_pos);
			reader_error(S);
			break;
		}
		if (reply != NULL)
		{
			size_t nodes = walk_reply(reply, 0);

			rr = ref_next(S, reply, &ek);
			if (rr != REF_DONE)
				ref_mismatch(rr == REF_MORE ? "the reference needs more bytes" :
											  "the reference fails",
							 reply, S->ref_pos);
			/* every node takes at least 3 bytes ("+\r\n") */
			CHECK(nodes <= (S->fed_end - S->conn_start) / 3);
			replies[got++] = reply;
			continue;
		}
		r = recv_chunk(S, &chunk);
		if (r < 0)
		{
			/* TransportRecv()'s words for an end of stream, of kind closed */
			snprintf(S->last_error, sizeof(S->last_error),
					 "Redis closed the connection");
			S->closed = true;
			break;
		}
		fed = RespFeed(S->reader, (const char *) chunk, (size_t) r, &received,
					   max_reply_bytes);
		if (fed == RESP_TOO_LARGE)
		{
			snprintf(S->last_error, sizeof(S->last_error),
					 "Redis reply exceeds %zu bytes", max_reply_bytes);
			break;
		}
		if (fed == RESP_BAD)
		{
			reader_error(S);
			break;
		}
		CHECK(chunk == S->s + S->fed_end);
		S->fed_end += (size_t) r;
	}

	if (got < n)
	{
		/* hiredis waits for more: then so does the reference */
		if (S->reader->err == 0)
		{
			rr = ref_next(S, NULL, &ek);
			if (rr != REF_MORE)
				FAIL("hiredis waits for more bytes where the reference reader %s at stream offset %zu",
					 rr == REF_DONE ? "read a reply" : "failed", S->ref_pos);
		}
		free_replies(got, replies);
		return false;
	}
	return true;
}

/* format_command(): hiredis's formatter on the arguments, freed at once. */
static bool
format_command(int argc, const char **argv, const size_t *argvlen)
{
	char *formatted = NULL;
	int len;

	len = redisFormatCommandArgv(&formatted, argc, argv, argvlen);
	if (len < 0 || formatted == NULL)
		return false;
	sink += (unsigned char) formatted[len - 1];
	redisFreeCommand(formatted);
	return true;
}

/* ---- report_run_id ----------------------------------------------------------- */

/*
 * What report_run_id() must find, read independently: in the text before
 * the first NUL, the first "run_id:" at the start of a line, and the
 * alphanumerics after it, at most 63.
 */
static void
check_run_id(const redisReply *info)
{
	char run_id[64];
	char want[64] = "";
	size_t wlen = 0;

	memset(run_id, 0x7f, sizeof(run_id));
	(void) RespRunId(info, run_id);
	if (info->type == REDIS_REPLY_STRING)
	{
		size_t n = strnlen(info->str, info->len);

		for (size_t i = 0; i + 7 <= n; i++)
		{
			if (memcmp(info->str + i, "run_id:", 7) != 0 ||
				(i > 0 && info->str[i - 1] != '\n'))
				continue;
			for (size_t j = i + 7; j < n && wlen < 63; j++)
			{
				char c = info->str[j];

				if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
					  (c >= 'A' && c <= 'Z')))
					break;
				want[wlen++] = c;
			}
			break;
		}
	}
	want[wlen] = '\0';
	if (memchr(run_id, '\0', sizeof(run_id)) == NULL || strcmp(run_id, want) != 0)
		FAIL("report_run_id found \"%.64s\" where the INFO text has run_id \"%s\"",
			 run_id, want);
	sink += strlen(run_id);
}

/* ---- Sentinel (sentinel.c, client.c) ------------------------------------------ */

/*
 * RespMasterAddr, RespRoleIsMaster and RespNotMaster on any reply, against
 * an independent reading of what each must accept.
 */
static void
check_sentinel_parsers(const redisReply *r)
{
	char host[256];
	int port = -1;
	int got = RespMasterAddr(r, host, sizeof(host), &port);
	int want = -1;
	int role;
	bool not_master;

	if (r->type == REDIS_REPLY_NIL || (r->type == REDIS_REPLY_ARRAY && r->elements == 0))
		want = 0;
	else if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
			 r->element[0]->type == REDIS_REPLY_STRING &&
			 r->element[1]->type == REDIS_REPLY_STRING)
	{
		const redisReply *h = r->element[0];
		const redisReply *p = r->element[1];
		long v = 0;
		bool ok = h->len >= 1 && h->len <= 255 && p->len >= 1 && p->len <= 5;

		for (size_t i = 0; ok && i < h->len; i++)
		{
			char c = h->str[i];

			ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
				(c >= '0' && c <= '9') || c == '.' || c == '-' || c == ':' || c == '_';
		}
		for (size_t i = 0; ok && i < p->len; i++)
		{
			ok = p->str[i] >= '0' && p->str[i] <= '9';
			v = v * 10 + (p->str[i] - '0');
		}
		if (ok && v >= 1 && v <= 65535)
		{
			want = 1;
			CHECK(strlen(host) == h->len && memcmp(host, h->str, h->len) == 0);
			CHECK(port == v);
		}
	}
	CHECK(got == want);
	if (got != 1)
		CHECK(host[0] == '\0' && port == 0);

	role = RespRoleIsMaster(r);
	if (r->type != REDIS_REPLY_ARRAY || r->elements == 0 ||
		(r->element[0]->type != REDIS_REPLY_STRING && r->element[0]->type != REDIS_REPLY_STATUS))
		CHECK(role == -1);
	else
		CHECK(role == (r->element[0]->len == 6 && memcmp(r->element[0]->str, "master", 6) == 0));

	not_master = false;
	if (r->type == REDIS_REPLY_ERROR)
	{
		static const char *const words[] = {"READONLY", "MASTERDOWN", "LOADING"};

		for (int i = 0; i < 3; i++)
		{
			size_t n = strlen(words[i]);

			if (r->len >= n && memcmp(r->str, words[i], n) == 0 &&
				(r->len == n || r->str[n] == ' '))
				not_master = true;
		}
	}
	CHECK(RespNotMaster(r) == not_master);
}

/* ---- exec_once / exec_pipeline ----------------------------------------------- */

/* connect_redis(): a new reader, then the AUTH / SELECT exchange. */
static bool
connect_redis(Session *S)
{
	redisReply *replies[2];
	int n = S->connect_cmds;

	CHECK(!S->connected && S->reader == NULL);
	S->reader = redisReaderCreate();
	CHECK(S->reader != NULL);
	{
		const redisReplyObjectFunctions *dflt = S->reader->fn;

		RespLimitArrays(S->reader);
		CHECK(S->reader->fn != dflt && S->reader->fn->createArray != dflt->createArray);
	}
	S->connected = true;
	S->conn_start = S->fed_end = S->ref_pos = S->spos;
	if (n == 0)
		return true;
	{
		const char *argv[3] = {"AUTH", "cache_ext", "secret"};
		size_t argvlen[3] = {4, 9, 6};
		const char *sargv[2] = {"SELECT", "3"};
		size_t sargvlen[2] = {6, 1};

		CHECK(format_command(3, argv, argvlen));
		if (n > 1)
			CHECK(format_command(2, sargv, sargvlen));
	}
	if (!exchange(S, n, replies, 65536))
		return false;
	for (int i = 0; i < n; i++)
	{
		walk_reply(replies[i], 0);
		if (replies[i]->type == REDIS_REPLY_ERROR)
		{
			char safe[160];

			RedisSafeText(safe, sizeof(safe), replies[i]->str, replies[i]->len);
			snprintf(S->last_error, sizeof(S->last_error), "%s failed: %s",
					 i == 0 ? "AUTH" : "SELECT", safe);
			free_replies(n, replies);
			return false;
		}
	}
	free_replies(n, replies);
	return true;
}

/* exec_once(): connect if needed, INFO server in front on a new connection. */
static bool
exec_once(Session *S, int ncmds, redisReply **replies, size_t max_reply_bytes,
		  bool *fresh_out)
{
	bool fresh = false;
	bool ok = true;

	if (!S->connected)
	{
		ok = connect_redis(S);
		fresh = ok;
	}
	if (ok)
	{
		if (fresh)
		{
			redisReply **all = malloc(sizeof(redisReply *) * (ncmds + 1));

			CHECK(all != NULL);
			ok = exchange(S, ncmds + 1, all, max_reply_bytes + 65536);
			if (ok)
			{
				memcpy(replies, all + 1, sizeof(redisReply *) * ncmds);
				check_run_id(all[0]);
				free_replies(1, all);
			}
			free(all);
		}
		else
			ok = exchange(S, ncmds, replies, max_reply_bytes);
	}
	*fresh_out = fresh;
	return ok;
}

/*
 * client.c retries when the failure's kind is "closed" (the server or the
 * network ended the connection: here, the end of the stream).
 */
static bool
connection_was_closed(const Session *S)
{
	return S->closed;
}

/* RedisExec(): one retry on a new connection when the old one was closed. */
static bool
redis_exec(Session *S, int ncmds, const char *const *names, redisReply **replies,
		   size_t max_reply_bytes)
{
	bool fresh;
	bool ok;

	for (int i = 0; i < ncmds; i++)
	{
		const char *argv[2] = {names[i], "cache_ext:k"};
		size_t argvlen[2] = {strlen(names[i]), 11};

		CHECK(format_command(2, argv, argvlen));
	}
	ok = exec_once(S, ncmds, replies, max_reply_bytes, &fresh);
	if (!ok && !fresh && connection_was_closed(S))
	{
		disconnect(S);
		ok = exec_once(S, ncmds, replies, max_reply_bytes, &fresh);
	}
	if (!ok)
	{
		disconnect(S);
		return false;
	}
	for (int i = 0; i < ncmds; i++)
		CHECK(replies[i] != NULL);
	return true;
}

/* ---- the callers' interpretation ---------------------------------------------- */

static char *
xstrndup(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	CHECK(d != NULL);
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

static bool
is_gen_value(const redisReply *e)
{
	return e->type == REDIS_REPLY_STRING && e->len >= 1 && e->len <= 255;
}

static const int64_t max_entry_sizes[4] = {1024, 4096, 65536, 1024 * 1024};

/*
 * init_generations(): SET NX for each missing generation, then MGET them.
 * Returns false when Redis failed or the values are not usable.
 */
static bool
init_generations(Session *S, int nmissing)
{
	const char **names = malloc(sizeof(char *) * (nmissing + 1));
	redisReply **replies = calloc(nmissing + 1, sizeof(redisReply *));
	bool ok = true;
	bool spec;
	redisReply *r;

	CHECK(names != NULL && replies != NULL);
	for (int j = 0; j < nmissing; j++)
		names[j] = "SET";
	names[nmissing] = "MGET";
	if (!redis_exec(S, nmissing + 1, names, replies, 64 * 1024))
	{
		free(names);
		free(replies);
		return false;
	}
	r = replies[nmissing];
	ok = StoreReplyInitGens(r, nmissing);
	for (int j = 0; ok && j < nmissing; j++)
		free(xstrndup(r->element[j]->str, r->element[j]->len));
	/* the spec: an array of nmissing strings of 1..255 bytes */
	spec = r->type == REDIS_REPLY_ARRAY && r->elements == (size_t) nmissing;
	for (size_t j = 0; spec && j < r->elements; j++)
		spec = is_gen_value(r->element[j]);
	if (ok != spec)
		FAIL("init_generations: accepted %d, the spec says %d", ok, spec);
	free_replies(nmissing + 1, replies);
	free(names);
	free(replies);
	return ok;
}

/*
 * The spec of a lookup's verdict, read independently of store_reply.c:
 * what cached_query and cache_explain must both conclude from the
 * GETRANGE reply r and the MGET reply g of n generations.
 */
static void
check_lookup_spec(const redisReply *r, const redisReply *g, int n, int64_t mes,
				  const StoreLookup *sl, const redisReply *error)
{
	bool r_ok = r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_ERROR;
	bool wrongtype = r->type == REDIS_REPLY_ERROR && r->len >= 9 &&
		memcmp(r->str, "WRONGTYPE", 9) == 0;
	bool g_shape = g->type == REDIS_REPLY_ARRAY && g->elements == (size_t) n;
	int nils = 0;
	bool g_vals = g_shape;

	for (size_t i = 0; g_shape && i < g->elements; i++)
	{
		if (g->element[i]->type == REDIS_REPLY_NIL)
			nils++;
		else if (!is_gen_value(g->element[i]))
			g_vals = false;
	}
	if (g->type == REDIS_REPLY_ERROR ||
		(r->type == REDIS_REPLY_ERROR && !wrongtype))
	{
		/* the server is not serving: reported, MGET's error first */
		CHECK(sl->verdict == STORE_LOOKUP_DOWN);
		CHECK(error == (g->type == REDIS_REPLY_ERROR ? g : r));
		return;
	}
	CHECK(sl->verdict != STORE_LOOKUP_DOWN && error == NULL);
	/* generations usable: n strings of 1..255 bytes or nil */
	CHECK((sl->gens != STORE_GENS_INVALID) == g_vals);
	if (g_vals)
		CHECK((sl->gens == STORE_GENS_MISSING) == (nils > 0) &&
			  sl->nmissing == nils);
	if (!r_ok || wrongtype)
		CHECK(sl->verdict == STORE_LOOKUP_CORRUPT &&
			  sl->entry == STORE_ENTRY_BAD_TYPE && sl->problem != NULL);
	else if (r->len == 0)
		CHECK(sl->verdict == STORE_LOOKUP_MISS && sl->entry == STORE_ENTRY_ABSENT);
	else if (r->len > (size_t) mes)
		CHECK(sl->verdict == STORE_LOOKUP_CORRUPT &&
			  sl->entry == STORE_ENTRY_TOO_LARGE && sl->entry_bytes == r->len &&
			  sl->problem != NULL);
	else
		CHECK(sl->verdict == ((g_vals && nils == 0) ? STORE_LOOKUP_DECODE : STORE_LOOKUP_STALE) &&
			  sl->entry == STORE_ENTRY_PRESENT && sl->entry_bytes == r->len);
}

/*
 * StoreLookupEntry's use of the verdict: report the error reply, keep the
 * usable generation values (as store.c copies them), hand the entry to the
 * decoder.  Returns the number of values kept.
 */
static int
use_lookup(Session *S, const redisReply *r, const redisReply *g, int n,
		   const StoreLookup *sl, const redisReply *error, char **vals)
{
	int kept = 0;

	if (error != NULL)
	{
		report_error(S, error->str, error->len);
		return 0;
	}
	if (sl->gens != STORE_GENS_INVALID)
		for (int i = 0; i < n; i++)
			if (g->element[i]->type == REDIS_REPLY_STRING)
			{
				vals[i] = xstrndup(g->element[i]->str, g->element[i]->len);
				kept++;
			}
	if (sl->verdict == STORE_LOOKUP_DECODE)
	{
		/* EntryOpen / EntryLoad(r->str, r->len, ...): fuzz_entry's business */
		uint64_t h = 0;

		for (size_t i = 0; i < r->len; i++)
			h += (unsigned char) r->str[i];
		sink += h;
	}
	return kept;
}

/* lookup(): GETRANGE + MGET, then UNLINK a corrupt entry, init missing gens. */
static void
op_lookup(Session *S, uint8_t param)
{
	int n = 2 + (param & 15);
	int64_t mes = max_entry_sizes[(param >> 4) & 3];
	const char *names[2] = {"GETRANGE", "MGET"};
	redisReply *replies[2] = {NULL, NULL};
	StoreLookup sl;
	const redisReply *error = NULL;
	int kept;
	char **vals = calloc(n, sizeof(char *));

	CHECK(vals != NULL);
	if (!redis_exec(S, 2, names, replies, (size_t) mes + 1024 + 300 * (size_t) n))
	{
		free(vals);
		return;
	}
	memset(&sl, 0, sizeof(sl));
	StoreReplyLookup(replies[0], replies[1], n, (size_t) mes, &sl, &error);
	check_lookup_spec(replies[0], replies[1], n, mes, &sl, error);
	kept = use_lookup(S, replies[0], replies[1], n, &sl, error, vals);
	if (sl.gens != STORE_GENS_INVALID && sl.verdict != STORE_LOOKUP_DOWN)
		CHECK(kept == n - sl.nmissing);
	free_replies(2, replies);

	if (sl.verdict == STORE_LOOKUP_DOWN)
		CHECK(!S->connected);
	if (sl.verdict == STORE_LOOKUP_CORRUPT)
	{
		const char *del[1] = {"UNLINK"};
		redisReply *r = NULL;

		if (redis_exec(S, 1, del, &r, 1024))
		{
			walk_reply(r, 0);
			free_replies(1, &r);
		}
	}
	if (sl.gens == STORE_GENS_MISSING && sl.verdict != STORE_LOOKUP_DOWN)
	{
		CHECK(sl.nmissing > 0);
		(void) init_generations(S, sl.nmissing);
	}
	for (int i = 0; i < n; i++)
		free(vals[i]);
	free(vals);
}

/*
 * explain_entry(): GETRANGE + PTTL + MGET, judged by the very verdict (and
 * spec) of the lookup: cache_explain and cached_query see an entry alike.
 */
static void
op_explain(Session *S, uint8_t param)
{
	int n = 2 + (param & 15);
	int64_t mes = max_entry_sizes[(param >> 4) & 3];
	const char *names[3] = {"GETRANGE", "PTTL", "MGET"};
	redisReply *replies[3] = {NULL, NULL, NULL};
	StoreLookup sl;
	const redisReply *error = NULL;
	char **vals = calloc(n, sizeof(char *));
	char buf[512];
	int off = 0;

	CHECK(vals != NULL);
	if (!redis_exec(S, 3, names, replies, (size_t) mes + 1024 + 300 * (size_t) n))
	{
		free(vals);
		return;
	}
	memset(&sl, 0, sizeof(sl));
	StoreReplyLookup(replies[0], replies[2], n, (size_t) mes, &sl, &error);
	check_lookup_spec(replies[0], replies[2], n, mes, &sl, error);
	(void) use_lookup(S, replies[0], replies[2], n, &sl, error, vals);
	if (error == NULL)
	{
		long long ttl = 0;
		bool has_ttl = StoreReplyInteger(replies[1], &ttl);

		CHECK(has_ttl == (replies[1]->type == REDIS_REPLY_INTEGER));
		CHECK(!has_ttl || ttl == replies[1]->integer);
		off += snprintf(buf + off, sizeof(buf) - off, "{\"exists\":%s",
						sl.entry != STORE_ENTRY_ABSENT ? "true" : "false");
		if (sl.entry != STORE_ENTRY_ABSENT)
		{
			off += snprintf(buf + off, sizeof(buf) - off, ",\"valid\":%s",
							sl.verdict == STORE_LOOKUP_DECODE ? "true" : "false");
			if (sl.entry == STORE_ENTRY_PRESENT || sl.entry == STORE_ENTRY_TOO_LARGE)
				off += snprintf(buf + off, sizeof(buf) - off, ",\"bytes\":%zu",
								sl.entry_bytes);
			if (has_ttl)
				off += snprintf(buf + off, sizeof(buf) - off, ",\"ttl_ms\":%lld", ttl);
		}
		CHECK(off > 0 && (size_t) off < sizeof(buf));
	}
	else
		CHECK(!S->connected);
	free_replies(3, replies);
	for (int i = 0; i < n; i++)
		free(vals[i]);
	free(vals);
}

/* cache_purge(): SCAN, UNLINK the keys found, until the cursor is "0". */
static void
op_purge(Session *S, uint8_t param)
{
	char cursor[32] = "0";
	long long deleted = 0;
	int rounds = 1 + (param & 15);

	do
	{
		const char *scan[1] = {"SCAN"};
		redisReply *reply = NULL;
		const redisReply *keys = NULL;
		bool ok;
		bool spec;
		StoreStatus st = STORE_BAD_REPLY;

		{
			const char *argv[6] = {"SCAN", cursor, "MATCH", "cache_ext:e:1:*", "COUNT", "1000"};
			size_t argvlen[6] = {4, strlen(cursor), 5, 15, 5, 4};

			CHECK(format_command(6, argv, argvlen));
		}
		ok = redis_exec(S, 1, scan, &reply, 16 * 1024 * 1024);
		if (ok)
		{
			/* the spec: [cursor string of at most 31 bytes, array] */
			spec = reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
				reply->element[0]->type == REDIS_REPLY_STRING &&
				reply->element[0]->len <= 31 &&
				reply->element[1]->type == REDIS_REPLY_ARRAY;
			st = StoreReplyScan(reply, cursor, &keys);
		}
		if (st != STORE_OK)
		{
			if (ok)
			{
				CHECK(!spec && keys == NULL);
				CHECK((st == STORE_REFUSED) == (reply->type == REDIS_REPLY_ERROR));
				free_replies(1, &reply);
			}
			return; /* ereport(ERROR) */
		}
		CHECK(spec && keys == reply->element[1]);
		CHECK(strlen(cursor) == reply->element[0]->len ||
			  memchr(reply->element[0]->str, '\0', reply->element[0]->len) != NULL);
		if (keys->elements > 0)
		{
			const char *del[1] = {"UNLINK"};
			redisReply *dreply = NULL;
			const char **argv = malloc(sizeof(char *) * (keys->elements + 1));
			size_t *argvlen = malloc(sizeof(size_t) * (keys->elements + 1));
			int argc = 1;

			CHECK(argv != NULL && argvlen != NULL);
			argv[0] = "UNLINK";
			argvlen[0] = 6;
			for (size_t i = 0; i < keys->elements; i++)
				if (keys->element[i]->type == REDIS_REPLY_STRING)
				{
					argv[argc] = keys->element[i]->str;
					argvlen[argc] = keys->element[i]->len;
					argc++;
				}
			CHECK(format_command(argc, argv, argvlen));
			free(argv);
			free(argvlen);
			{
				size_t nsent = keys->elements;
				int64 d = -1;

				ok = redis_exec(S, 1, del, &dreply, 4096);
				free_replies(1, &reply);
				if (!ok)
					return; /* ereport(ERROR) */
				st = StoreReplyUnlinkCount(dreply, nsent, &d);
				/* an untrusted count: 0..nsent, so that the sum cannot overflow */
				CHECK(d >= 0 && (uint64_t) d <= nsent);
				if (dreply->type == REDIS_REPLY_INTEGER)
					CHECK(st == STORE_OK &&
						  d == (dreply->integer <= 0 ? 0 : (uint64_t) dreply->integer > nsent ? (int64) nsent :
																								dreply->integer));
				else
					CHECK(d == 0 && (st == STORE_REFUSED) == (dreply->type == REDIS_REPLY_ERROR) && st != STORE_OK);
				free_replies(1, &dreply);
				if (st != STORE_OK)
					return; /* ereport(ERROR) */
				CHECK(!__builtin_add_overflow(deleted, d, &deleted));
			}
		}
		else
			free_replies(1, &reply);
	} while (strcmp(cursor, "0") != 0 && --rounds > 0);
	sink += (uint64_t) deleted;
}

/* store.c's info_field(): StoreReplyInfoField into 201 bytes, or NULL. */
static char *
info_field(const char *info, const char *field)
{
	char *out = malloc(201);

	CHECK(out != NULL);
	memset(out, 0x7f, 201);
	if (StoreReplyInfoField(info, field, out, 201))
		return out;
	free(out);
	return NULL;
}

/* The same, read independently: the first line "field:value". */
static void
check_info_field(const char *info, const char *field)
{
	char *got = info_field(info, field);
	size_t flen = strlen(field);
	size_t n = strlen(info);
	const char *want = NULL;
	size_t wlen = 0;

	for (size_t ls = 0; ls < n;)
	{
		const char *nl = memchr(info + ls, '\n', n - ls);
		size_t le = nl ? (size_t) (nl - info) : n;

		if (le - ls > flen && memcmp(info + ls, field, flen) == 0 &&
			info[ls + flen] == ':')
		{
			want = info + ls + flen + 1;
			while (want + wlen < info + le && want[wlen] != '\r')
				wlen++;
			break;
		}
		ls = le + 1;
	}
	char *esc = NULL;

	if (want)
	{
		/* shown escaped: as RedisSafeText makes it */
		esc = malloc(201);
		CHECK(esc != NULL);
		wlen = RedisSafeText(esc, 201, want, wlen);
		want = esc;
	}
	check_printable(got);
	if ((got == NULL) != (want == NULL) ||
		(got && (strlen(got) != wlen || memcmp(got, want, wlen) != 0)))
		FAIL("info_field(\"%s\") gave %s%s%s", field, got ? "\"" : "",
			 got ? got : "NULL", got ? "\"" : "");
	if (got)
	{
		char *end;
		long long v;

		errno = 0;
		v = strtoll(got, &end, 10);
		sink += (uint64_t) v + (end != got);
	}
	free(got);
	free(esc);
}

/* cache_health(): PING, then INFO everything. */
static void
op_health(Session *S, uint8_t param)
{
	const char *ping[1] = {"PING"};
	const char *infocmd[1] = {"INFO"};
	redisReply *reply = NULL;

	(void) param;
	if (!redis_exec(S, 1, ping, &reply, 1024))
		return;
	sink += reply->type == REDIS_REPLY_STATUS;
	free_replies(1, &reply);
	if (!redis_exec(S, 1, infocmd, &reply, 1024 * 1024))
		return;
	if (reply->type == REDIS_REPLY_STRING)
	{
		char *info = xstrndup(reply->str, reply->len);
		static const char *const fields[] = {
			"redis_version", "role", "maxmemory_policy", "maxmemory",
			"aof_enabled", "used_memory"};

		for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
			check_info_field(info, fields[i]);
		free(info);
	}
	else if (reply->type == REDIS_REPLY_ERROR)
	{
		char msg[200];
		char safe[81];

		RedisSafeText(safe, sizeof(safe), reply->str, reply->len);
		snprintf(msg, sizeof(msg), "INFO refused (%s): grant the cache_ext ACL user +info",
				 safe);
		check_printable(msg);
		sink += strlen(msg);
	}
	free_replies(1, &reply);
}

/* Every write verdict: +OK is OK, an error REFUSED, the rest BAD_REPLY. */
static StoreStatus
write_verdict(const redisReply *r)
{
	StoreStatus st = StoreReplyWrite(r);
	bool ok = r->type == REDIS_REPLY_STATUS && r->len == 2 && r->str[0] == 'O' && r->str[1] == 'K';

	CHECK(st == (ok ? STORE_OK : r->type == REDIS_REPLY_ERROR ? STORE_REFUSED :
																STORE_BAD_REPLY));
	return st;
}

/* StoreSwapToken's SET ... GET, against an independent reading. */
static void
op_token(Session *S, uint8_t param)
{
	const char *set[1] = {"SET"};
	const char *token = "0123456789abcdef0123456789abcdef";
	const char *file_token = (param & 4) ? "" : "fedcba9876543210fedcba9876543210";
	redisReply *r = NULL;
	StoreTokenPrev prev;
	StoreStatus st;

	if (!redis_exec(S, 1, set, &r, 4096))
		return;
	st = StoreReplyToken(r, token, file_token, &prev);
	if (r->type == REDIS_REPLY_NIL)
		CHECK(st == STORE_OK && prev == STORE_TOKEN_NONE);
	else if (r->type == REDIS_REPLY_STRING)
	{
		bool known = r->len == strlen(file_token) && memcmp(r->str, file_token, r->len) == 0;
		bool mine = r->len == 32 && memcmp(r->str, token, 32) == 0;

		/* our own token back: an earlier swap's reply was lost: not known */
		CHECK(st == STORE_OK &&
			  prev == (known ? STORE_TOKEN_KNOWN : mine ? STORE_TOKEN_MINE :
														  STORE_TOKEN_OTHER));
	}
	else
		CHECK(st == (r->type == REDIS_REPLY_ERROR ? STORE_REFUSED : STORE_BAD_REPLY));
	if (st == STORE_REFUSED)
	{
		report_error(S, r->str, r->len);
		CHECK(!S->connected);
	}
	free_replies(1, &r);
}

/*
 * store()'s SET (param & 1), else the incarnation token's SET ... GET
 * (param & 2), else the bumps' MSET.
 */
static void
op_write(Session *S, uint8_t param)
{
	redisReply *reply = NULL;

	if (param & 1)
	{
		const char *set[1] = {"SET"};
		char problem[200] = "";
		StoreStatus st;

		if (!redis_exec(S, 1, set, &reply, 4096))
			return;
		st = write_verdict(reply);
		if (st == STORE_REFUSED)
		{
			/* StorePutEntry: RedisSafeText into 121 */
			char shown[121];

			RedisSafeText(shown, sizeof(shown), reply->str, reply->len);
			check_safe_text((const uint8_t *) reply->str, reply->len, sizeof(shown));
			snprintf(problem, sizeof(problem), "redis refused it: %s", shown);
		}
		else if (st != STORE_OK)
			snprintf(problem, sizeof(problem), "unexpected reply from redis");
		sink += strlen(problem);
		free_replies(1, &reply);
	}
	else if (param & 2)
		op_token(S, param);
	else
	{
		const char *mset[1] = {"MSET"};

		if (!redis_exec(S, 1, mset, &reply, 4096))
			return;
		if (write_verdict(reply) == STORE_REFUSED)
		{
			report_error(S, reply->str, reply->len);
			CHECK(!S->connected);
		}
		free_replies(1, &reply);
	}
}

/* A pipeline of n replies nobody looks into (beyond the walk). */
static void
op_generic(Session *S, uint8_t param)
{
	int n = 1 + (param & 7);
	size_t cap = (size_t) 64 << ((param >> 3) & 15);
	const char *names[8] = {"GET", "GET", "GET", "GET", "GET", "GET", "GET", "GET"};
	redisReply *replies[8];

	if (!redis_exec(S, n, names, replies, cap))
		return;
	for (int i = 0; i < n; i++)
	{
		uint64 mark;
		bool has = StoreReplyMark(replies[i], &mark);

		walk_reply(replies[i], 0);
		/* a standby's watermark: 1 to 20 digits, no overflow, the same value */
		if (replies[i]->type == REDIS_REPLY_STRING && replies[i]->len >= 1 &&
			replies[i]->len <= 20)
		{
			char buf[21];
			bool digits = true;
			unsigned long long v;

			memcpy(buf, replies[i]->str, replies[i]->len);
			buf[replies[i]->len] = '\0';
			for (size_t k = 0; k < replies[i]->len; k++)
				digits = digits && isdigit((unsigned char) buf[k]);
			errno = 0;
			v = strtoull(buf, NULL, 10);
			CHECK(has == (digits && errno == 0));
			CHECK(!has || v == mark);
		}
		else
			CHECK(!has);
		CHECK(has || mark == 0);
	}
	free_replies(n, replies);
}

/*
 * One operation, kind % 8:
 *	 0, 1  lookup: n = 2 + (param & 15) generations, max_entry_size
 *		   max_entry_sizes[(param >> 4) & 3] (the byte cap follows from both)
 *	 2	   init_generations of 1 + (param & 7) generations
 *	 3	   explain, parameter as for lookup
 *	 4	   purge: at most 1 + (param & 15) SCAN rounds
 *	 5	   health
 *	 6	   param & 1: store's SET, else param & 2: the incarnation token's
 *		   SET ... GET (param & 4: with no file token), else the bumps' MSET
 *	 7	   1 + (param & 7) replies, byte cap 64 << ((param >> 3) & 15)
 */
static void
run_op(Session *S, uint8_t kind, uint8_t param)
{
	switch (kind % 8)
	{
		case 0:
		case 1:
			op_lookup(S, param);
			break;
		case 2:
			(void) init_generations(S, 1 + (param & 7));
			break;
		case 3:
			op_explain(S, param);
			break;
		case 4:
			op_purge(S, param);
			break;
		case 5:
			op_health(S, param);
			break;
		case 6:
			op_write(S, param);
			break;
		case 7:
			op_generic(S, param);
			break;
	}
}

static uint32_t
chunk_size(uint8_t v)
{
	if (v == 0)
		return RECV_CHUNK;
	if (v < 192)
		return v;
	return (uint32_t) (v - 191) * 1024;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Session S;
	size_t p = 0;
	uint8_t flags;
	int nops;
	uint8_t ops[8][2];

#define NEXT() (p < size ? data[p++] : 0)

	memset(&S, 0, sizeof(S));
	flags = NEXT();
	S.connect_cmds = Min(flags & 3, 2);
	nops = 1 + ((flags >> 2) & 7);
	S.nchunks = NEXT() % 8;
	for (int i = 0; i < S.nchunks; i++)
		S.chunks[i] = chunk_size(NEXT());
	for (int i = 0; i < nops; i++)
	{
		ops[i][0] = NEXT();
		ops[i][1] = NEXT();
	}
#undef NEXT
	S.s = data + p;
	S.slen = size - p;

	check_safe_text(S.s, S.slen, 0);
	check_safe_text(S.s, S.slen, 1);
	check_safe_text(S.s, S.slen, 5);
	check_safe_text(S.s, S.slen, 160);
	check_safe_text(S.s, S.slen, 300);

	for (int i = 0; i < nops; i++)
	{
		run_op(&S, ops[i][0], ops[i][1]);
		check_printable(S.last_error);
		/* the stream is over: every further call would fail the same way */
		if (S.spos >= S.slen && !S.connected)
			break;
	}
	disconnect(&S);
	return 0;
}
