/*-------------------------------------------------------------------------
 *
 * l1_rows.h
 *	  The form a result takes in the local tier: its rows as minimal
 *	  tuples (l1_rows.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_L1_ROWS_H
#define CACHE_EXT_L1_ROWS_H

#include "postgres.h"

#include "lib/stringinfo.h"
#include "utils/tuplestore.h"

#include "entry.h"

typedef enum L1RowsResult
{
	L1ROWS_OK,		/* the rows are in ts */
	L1ROWS_TOO_BIG, /* the entry is over the given limit: nothing put */
	L1ROWS_CORRUPT	/* not the local tier's form: ts may hold rows */
} L1RowsResult;

/*
 * Decode the entry buf (len bytes; writable, with one spare byte after
 * it, as EntryLoad wants) into out (initialised here): the local tier's
 * form.  False when the entry does not decode, or its rows would take more
 * than max_bytes (decoding stops there; out is then undefined);
 * errors other than a type refusing its bytes propagate, as in EntryLoad.
 */
extern bool L1RowsFromEntry(char *buf, size_t len, const uint8 *fingerprint,
							int natts, const EntryColumnCodec *codecs,
							TupleDesc desc, bool in_subxact, size_t max_bytes, StringInfo out);

/*
 * Put the rows of data (len bytes of the local tier's form, of natts
 * columns) into ts, unless the entry they came from was larger than
 * max_entry_len; *entry_len is its size.
 */
extern L1RowsResult L1RowsPut(const char *data, size_t len, int natts,
							  size_t max_entry_len, Tuplestorestate *ts,
							  size_t *entry_len);

#endif /* CACHE_EXT_L1_ROWS_H */
