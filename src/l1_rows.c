/*-------------------------------------------------------------------------
 *
 * l1_rows.c
 *	  The form a result takes in the local tier (L1): its rows as
 *	  PostgreSQL minimal tuples, decoded from the entry once, when it goes
 *	  into L1, so that an L1 hit copies tuples into the call's tuplestore
 *	  instead of parsing and decoding the entry again (which cost more than
 *	  half of a hit's CPU).
 *
 * The form: a header (L1RowsHeader), then the tuples back to back, each
 * t_len bytes of MinimalTupleData.  They are not aligned: they are only
 * ever copied (tuplestore_puttuple copies them into aligned memory).
 *
 * Why this is as safe as decoding on every hit: the tuples are exactly
 * what decoding the entry gave, once, through the same checks (EntryLoad:
 * structure, checksum, fingerprint, row type, every value through its
 * codec), and decoding is a function of the entry's bytes and of what the
 * key holds (row type, settings, definitions of the types' functions); an
 * L1 entry is found only by that key.  The bytes live in this server's
 * shared memory, written only by l1.c, never by Redis.  What is checked
 * here (header, lengths) guards against our own bugs only.
 *
 * No state of its own.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "executor/tuptable.h"
#include "miscadmin.h"

#include "l1_rows.h"

#define L1_ROWS_MAGIC 0x4c31726f /* "L1ro" */

typedef struct L1RowsHeader
{
	uint32 magic;
	uint32 natts;
	uint32 nrows;
	uint32 entry_len; /* bytes of the entry it was decoded from */
} L1RowsHeader;

/* MINIMAL_TUPLE_OFFSET bytes before the first tuple belong to the header */
StaticAssertDecl(sizeof(L1RowsHeader) >= MINIMAL_TUPLE_OFFSET,
				 "L1RowsHeader shorter than MINIMAL_TUPLE_OFFSET");

bool
L1RowsFromEntry(char *buf, size_t len, const uint8 *fingerprint, int natts,
				const EntryColumnCodec *codecs, TupleDesc desc,
				bool in_subxact, size_t max_bytes, StringInfo out)
{
	Tuplestorestate *ts = tuplestore_begin_heap(false, false, work_mem);
	TupleTableSlot *slot;
	L1RowsHeader h;
	const char *why;

	if (EntryLoad(buf, len, fingerprint, NULL, natts, codecs, desc,
				  in_subxact, ts, &why) != ENTRY_VALID)
	{
		tuplestore_end(ts);
		return false;
	}
	h.magic = L1_ROWS_MAGIC;
	h.natts = (uint32) natts;
	h.nrows = 0;
	h.entry_len = (uint32) len;
	initStringInfo(out);
	appendBinaryStringInfo(out, (const char *) &h, sizeof(h));
	slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	while (tuplestore_gettupleslot(ts, true, false, slot))
	{
		bool should_free;
		MinimalTuple mt = ExecFetchSlotMinimalTuple(slot, &should_free);

		/* more than L1 would take: stop now, never hold it all */
		if (out->len + (size_t) mt->t_len > max_bytes)
		{
			if (should_free)
				pfree(mt);
			ExecDropSingleTupleTableSlot(slot);
			tuplestore_end(ts);
			pfree(out->data);
			out->data = NULL;
			return false;
		}
		appendBinaryStringInfo(out, (const char *) mt, mt->t_len);
		if (should_free)
			pfree(mt);
		h.nrows++;
	}
	ExecDropSingleTupleTableSlot(slot);
	tuplestore_end(ts);
	memcpy(out->data, &h, sizeof(h));
	return true;
}

L1RowsResult
L1RowsPut(const char *data, size_t len, int natts, size_t max_entry_len,
		  Tuplestorestate *ts, size_t *entry_len)
{
	L1RowsHeader h;
	size_t off = sizeof(h);

	*entry_len = len;
	if (len < sizeof(h))
		return L1ROWS_CORRUPT;
	memcpy(&h, data, sizeof(h));
	if (h.magic != L1_ROWS_MAGIC || h.natts != (uint32) natts)
		return L1ROWS_CORRUPT;
	*entry_len = h.entry_len;
	if (h.entry_len > max_entry_len)
		return L1ROWS_TOO_BIG;
	for (uint32 r = 0; r < h.nrows; r++)
	{
		uint32 tlen;
		HeapTupleData htup;

		if (len - off < SizeofMinimalTupleHeader)
			return L1ROWS_CORRUPT;
		memcpy(&tlen, data + off, sizeof(tlen));
		if (tlen < SizeofMinimalTupleHeader || tlen > len - off)
			return L1ROWS_CORRUPT;
		/* a heap tuple's view of it: copied from t_data + the offset on */
		htup.t_len = tlen + MINIMAL_TUPLE_OFFSET;
		htup.t_data = (HeapTupleHeader) (data + off - MINIMAL_TUPLE_OFFSET);
		ItemPointerSetInvalid(&htup.t_self);
		htup.t_tableOid = InvalidOid;
		tuplestore_puttuple(ts, &htup);
		off += tlen;
	}
	return off == len ? L1ROWS_OK : L1ROWS_CORRUPT;
}
