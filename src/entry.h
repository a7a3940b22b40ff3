/*-------------------------------------------------------------------------
 *
 * entry.h
 *	  Encoding query results into stored entries and decoding them back.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_ENTRY_H
#define CACHE_EXT_ENTRY_H

#include "postgres.h"

#include "executor/tuptable.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/tuplestore.h"

#include "entry_format.h"

/* How one result column is encoded; chosen from its type. */
typedef struct EntryColumnCodec
{
	Oid typid;
	int32 typmod;
	uint8 codec; /* CeCodec */
	Oid ioparam;
	bool user_code; /* decoding may run code that is not built in */
	FmgrInfo out;	/* send or output function */
	FmgrInfo in;	/* receive or input function */
} EntryColumnCodec;

/*
 * Fill codecs[] for desc, deciding from pg_type (never raising for a type
 * without binary I/O); fn_mcxt is where the FmgrInfos live.  Returns NULL,
 * or a palloc'd reason why results of this row type cannot be stored (an
 * anonymous record column; "values of type X cannot be read back" for a
 * type whose input always raises, such as pg_node_tree, or one nested in
 * it).
 */
extern char *EntryCodecsInit(TupleDesc desc, EntryColumnCodec *codecs,
							 MemoryContext fn_mcxt);

/*
 * Whether decoding these columns may run code that is not built in (user
 * types, domains and their CHECKs, composites and anything nested): then
 * EntryDecode must be called with in_subxact.
 */
extern bool EntryCodecsRunUserCode(int natts, const EntryColumnCodec *codecs);

/*
 * The values of the generations an entry depends on, in the order of its
 * scopes (see invalidate.h).  Each value is 1..255 bytes.
 */
typedef struct EntryGens
{
	int n;
	char **vals;
	size_t *lens;
} EntryGens;

typedef struct EntryWriter
{
	StringInfoData buf;
	int natts;
	const EntryColumnCodec *codecs;
	uint32 nrows;
	size_t limit;
	bool overflow;	 /* abandoned: the entry would exceed limit, or
								 * problem is set */
	char *problem;	 /* NULL, or why a value cannot be stored */
	bool has_binary; /* some column uses send/receive */
	uint32 gens_len; /* bytes of the generations section */
} EntryWriter;

extern void EntryWriterInit(EntryWriter *w, int natts,
							const EntryColumnCodec *codecs,
							const EntryGens *gens, size_t limit);
extern void EntryWriterAddRow(EntryWriter *w, TupleTableSlot *slot);
extern void EntryWriterFinish(EntryWriter *w, const uint8 *fingerprint);

typedef enum EntryDecodeResult
{
	ENTRY_VALID,	  /* rows are in ts */
	ENTRY_STALE,	  /* well-formed, but a generation has changed */
	ENTRY_CORRUPT,	  /* *why says what is wrong; ts may hold rows */
	ENTRY_UNDECODABLE /* well-formed and current, but a value's type
								 * refused it: *why is "values of type X cannot
								 * be read back"; ts may hold rows.  Storing
								 * this query again would only repeat it. */
} EntryDecodeResult;

/*
 * EntryLoad: decode buf (untrusted) into ts, whose rows have the types of
 * codecs, provided the generations stored in it equal gens (the current
 * ones); with gens NULL (an L1 entry, whose validity the local tier
 * decided) they are not compared.
 * buf must be writable and have one byte after len that may be modified
 * temporarily (hiredis replies end in a NUL).
 *
 * With in_subxact, decoding runs in a subtransaction, so that receive and
 * input functions of user-defined types (which may run user code, such as
 * a domain's CHECK) can fail safely; EntryCodecsRunUserCode() says when it
 * is needed.  Without it, only the data errors that
 * built-in receive functions raise on bad input are caught.  Cancels and
 * other errors are re-thrown either way.
 *
 * Values are decoded independently of client_encoding.  *why may be
 * palloc'd in the current context.
 */
extern EntryDecodeResult EntryLoad(char *buf, size_t len,
								   const uint8 *fingerprint,
								   const EntryGens *gens,
								   int natts, const EntryColumnCodec *codecs,
								   TupleDesc desc, bool in_subxact,
								   Tuplestorestate *ts, const char **why);

/*
 * AES-256-GCM (cache_ext.encryption_key_file).  EntrySeal encrypts an
 * entry for the Redis key rkey into out (palloc'd); EntryOpen checks and
 * decrypts one (untrusted), returning the entry (palloc'd, NUL after it)
 * or NULL with *why.
 */
extern bool EntryIsSealed(const char *buf, size_t len);
extern void EntrySeal(const char *plain, size_t len, const char *rkey,
					  StringInfo out);
extern char *EntryOpen(const char *buf, size_t len, const char *rkey,
					   size_t *plen, const char **why);

#endif /* CACHE_EXT_ENTRY_H */
