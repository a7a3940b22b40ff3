/*-------------------------------------------------------------------------
 *
 * entry.c
 *	  Encode query results into the stored entry format and decode stored
 *	  entries (untrusted bytes) back into rows.
 *
 * Decoding is two-step: CeEntryParse() (entry_format.c) validates the whole
 * structure first; only then are values turned into Datums.  Fixed-width
 * values of a few built-in types whose every bit pattern is a valid value
 * are copied raw; text is checked for valid encoding; every other type goes
 * through its own receive (or input) function, which validates its input as
 * it does for bytes from a client.  Which of those a column uses is decided
 * from pg_type when the query is prepared: send/receive when the type and
 * everything nested in it round-trips through them, else output/input; a
 * type whose input always raises (pg_node_tree, ...) cannot be stored.
 *
 * A value outside what the writer produces is "corrupt"; a bad-input ERROR
 * raised by a type's own function on a well-formed, current entry is
 * "undecodable" (ENTRY_UNDECODABLE): the type does not read back what it
 * wrote, and storing the query again would only repeat that.  Types defined
 * by users are decoded in a subtransaction, since their functions may run
 * arbitrary code.  Raw date/time values are range-checked.
 *
 * Encoding and decoding never depend on client_encoding (encoding_off).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/guc.h"

#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/fmgroids.h"
#include "utils/resowner.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "cache_ext.h"
#include "entry.h"
#include "keys.h"
#include "subxact.h"

/*
 * Built-in types stored as raw fixed-width bytes.  Their values have no
 * invalid bit patterns that could hurt (at worst an out-of-range date prints
 * as an error), so no validation is needed beyond the width.
 */
static uint8
fixed_codec(Oid typid)
{
	switch (typid)
	{
		case BOOLOID:
			return CE_CODEC_FIXED1;
		case INT2OID:
			return CE_CODEC_FIXED2;
		case INT4OID:
		case FLOAT4OID:
		case OIDOID:
		case DATEOID:
			return CE_CODEC_FIXED4;
		case INT8OID:
		case FLOAT8OID:
		case TIMEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			return FLOAT8PASSBYVAL ? CE_CODEC_FIXED8 : 0;
		default:
			return 0;
	}
}

/*
 * What walk_type found in a type and every type nested in it (array
 * elements, domain base types, composite attributes, range subtypes).
 */
#define TW_NO_BINARY  0x01 /* some part cannot round-trip through send/receive */
#define TW_UNREADABLE 0x02 /* some part can never be read back at all */
#define TW_USER_CODE  0x04 /* decoding may run code not built in (or a domain's CHECK) */

/*
 * Built-in types whose input and receive functions always raise: values of
 * them can be produced by queries but never read back (PostgreSQL 15).
 */
static bool
input_always_raises(Oid typinput)
{
	switch (typinput)
	{
		case F_PG_NODE_TREE_IN:
		case F_PG_NDISTINCT_IN:
		case F_PG_DEPENDENCIES_IN:
		case F_PG_MCV_LIST_IN:
		case F_PG_DDL_COMMAND_IN:
		case F_BRIN_BLOOM_SUMMARY_IN:
		case F_BRIN_MINMAX_MULTI_SUMMARY_IN:
		case F_GTSVECTORIN:
			return true;
		default:
			return false;
	}
}

/*
 * Walk typid and the types nested in it, straight from pg_type (no
 * lsyscache helper that raises on a missing function).  *unreadable gets
 * the first type that can never be read back.  Returns TW_* bits.
 */
static int
walk_type(Oid typid, int depth, Oid *unreadable)
{
	HeapTuple tup;
	Form_pg_type t;
	int bits = 0;

	check_stack_depth();
	if (depth > 32)
		return TW_NO_BINARY | TW_USER_CODE;
	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
	if (!HeapTupleIsValid(tup))
	{
		*unreadable = typid;
		return TW_UNREADABLE;
	}
	t = (Form_pg_type) GETSTRUCT(tup);

	if (!OidIsValid(t->typinput) || !OidIsValid(t->typoutput) ||
		input_always_raises(t->typinput) || t->typtype == TYPTYPE_PSEUDO)
	{
		if (!OidIsValid(*unreadable))
			*unreadable = typid;
		bits |= TW_UNREADABLE;
	}
	if (!OidIsValid(t->typsend) || !OidIsValid(t->typreceive))
		bits |= TW_NO_BINARY;

	/*
	 * int2vector and oidvector send an empty value as a zero-dimension
	 * array, which their receive functions reject; their text forms
	 * round-trip.
	 */
	if (typid == INT2VECTOROID || typid == OIDVECTOROID)
		bits |= TW_NO_BINARY;
	if (typid >= FirstGenbkiObjectId || t->typtype == TYPTYPE_DOMAIN)
		bits |= TW_USER_CODE;

	if (t->typtype == TYPTYPE_DOMAIN)
		bits |= walk_type(t->typbasetype, depth + 1, unreadable);
	else if (OidIsValid(t->typelem) && IsTrueArrayType(t))
		bits |= walk_type(t->typelem, depth + 1, unreadable);
	else if (t->typtype == TYPTYPE_RANGE)
		bits |= walk_type(get_range_subtype(typid), depth + 1, unreadable);
	else if (t->typtype == TYPTYPE_MULTIRANGE)
		bits |= walk_type(get_multirange_range(typid), depth + 1, unreadable);
	else if (t->typtype == TYPTYPE_COMPOSITE)
	{
		TupleDesc desc = lookup_rowtype_tupdesc_noerror(typid, -1, true);

		if (desc == NULL)
			bits |= TW_NO_BINARY | TW_USER_CODE;
		else
		{
			for (int i = 0; i < desc->natts; i++)
				if (!TupleDescAttr(desc, i)->attisdropped)
					bits |= walk_type(TupleDescAttr(desc, i)->atttypid,
									  depth + 1, unreadable);
			ReleaseTupleDesc(desc);
		}
	}
	ReleaseSysCache(tup);
	return bits;
}

/*
 * The codec of one column, decided from pg_type: a few built-in types have
 * their own; then send/receive when the type and everything nested in it
 * has them and round-trips through them; then output/input.  Returns NULL,
 * or why values of the type cannot be stored.
 */
static char *
column_codec(Form_pg_attribute att, EntryColumnCodec *c, MemoryContext fn_mcxt)
{
	HeapTuple tup;
	Form_pg_type t;
	Oid unreadable = InvalidOid;
	int bits;

	c->typid = att->atttypid;
	c->typmod = att->atttypmod;
	c->user_code = false;
	if (att->attisdropped)
		return psprintf("the result has a dropped column");
	if (c->typid == RECORDOID || get_typtype(c->typid) == TYPTYPE_PSEUDO)
		return psprintf("column \"%s\" has the anonymous type %s",
						NameStr(att->attname), format_type_be(c->typid));

	c->codec = fixed_codec(c->typid);
	if (c->codec == 0 && (c->typid == TEXTOID || c->typid == VARCHAROID || c->typid == BPCHAROID))
		c->codec = CE_CODEC_TEXT;
	else if (c->codec == 0 && c->typid == BYTEAOID)
		c->codec = CE_CODEC_BYTES;
	else if (c->codec == 0 && c->typid == NUMERICOID)
		c->codec = CE_CODEC_NUMERIC;
	if (c->codec != 0)
		return NULL;

	bits = walk_type(c->typid, 0, &unreadable);
	if (bits & TW_UNREADABLE)
		return psprintf("values of type %s cannot be read back",
						format_type_extended(OidIsValid(unreadable) ? unreadable : c->typid,
											 -1, FORMAT_TYPE_ALLOW_INVALID));
	c->user_code = (bits & TW_USER_CODE) != 0;

	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(c->typid));
	if (!HeapTupleIsValid(tup))
		return psprintf("type %u does not exist", c->typid);
	t = (Form_pg_type) GETSTRUCT(tup);
	c->ioparam = getTypeIOParam(tup);
	if (!(bits & TW_NO_BINARY))
	{
		c->codec = CE_CODEC_BINARY;
		fmgr_info_cxt(t->typsend, &c->out, fn_mcxt);
		fmgr_info_cxt(t->typreceive, &c->in, fn_mcxt);
	}
	else
	{
		c->codec = CE_CODEC_TEXTIO;
		fmgr_info_cxt(t->typoutput, &c->out, fn_mcxt);
		fmgr_info_cxt(t->typinput, &c->in, fn_mcxt);
	}
	ReleaseSysCache(tup);
	return NULL;
}

char *
EntryCodecsInit(TupleDesc desc, EntryColumnCodec *codecs, MemoryContext fn_mcxt)
{
	for (int i = 0; i < desc->natts; i++)
	{
		char *problem = column_codec(TupleDescAttr(desc, i), &codecs[i],
									 fn_mcxt);

		if (problem)
			return problem;
	}
	return NULL;
}

bool
EntryCodecsRunUserCode(int natts, const EntryColumnCodec *codecs)
{
	for (int i = 0; i < natts; i++)
		if (codecs[i].user_code)
			return true;
	return false;
}

/*
 * Send and receive functions of text-like types (text inside arrays and
 * records, json, xml, ...) convert between the database and the client
 * encoding, as they do for the wire protocol.  An entry is not on the wire:
 * it must hold the database encoding whatever client_encoding is, or a
 * value the client encoding lacks would fail a MISS (and an entry stored by
 * a LATIN1 session would decode differently in a UTF8 one).  So conversion
 * is switched off around those calls: SetClientEncoding() to the database
 * encoding needs no conversion function and cannot fail, and switching
 * back finds the conversion the session set up (PrepareClientEncoding
 * cached it when client_encoding was set), so both cost a few assignments.
 * Nothing is sent to the client while the switch is on, except a NOTICE a
 * user type's function might raise (it would arrive unconverted).
 */
typedef struct EncodingSwitch
{
	int saved; /* -1: nothing to restore */
} EncodingSwitch;

static inline void
encoding_off(EncodingSwitch *sw)
{
	sw->saved = -1;
	if (pg_get_client_encoding() != GetDatabaseEncoding())
	{
		sw->saved = pg_get_client_encoding();
		(void) SetClientEncoding(GetDatabaseEncoding());
	}
}

static inline void
encoding_restore(EncodingSwitch *sw)
{
	if (sw->saved >= 0 && SetClientEncoding(sw->saved) < 0)
		elog(WARNING, "cache_ext could not restore client_encoding %s",
			 pg_encoding_to_char(sw->saved));
	sw->saved = -1;
}

void
EntryWriterInit(EntryWriter *w, int natts, const EntryColumnCodec *codecs,
				const EntryGens *gens, size_t limit)
{
	initStringInfo(&w->buf);
	w->natts = natts;
	w->codecs = codecs;
	w->nrows = 0;
	w->limit = limit;
	w->overflow = false;
	w->problem = NULL;
	w->has_binary = false;
	for (int i = 0; i < natts; i++)
		if (codecs[i].codec == CE_CODEC_BINARY)
			w->has_binary = true;

	/* header, filled in by EntryWriterFinish */
	appendStringInfoSpaces(&w->buf, CE_HEADER_SIZE);
	for (int i = 0; i < gens->n; i++)
	{
		uint8 len = (uint8) gens->lens[i];

		Assert(gens->lens[i] >= 1 && gens->lens[i] <= 255);
		appendBinaryStringInfo(&w->buf, (char *) &len, 1);
		appendBinaryStringInfo(&w->buf, gens->vals[i], len);
	}
	w->gens_len = w->buf.len - CE_HEADER_SIZE;
	if (w->gens_len > CE_MAX_GENS_LEN)
		w->overflow = true;
	for (int i = 0; i < natts; i++)
	{
		uint8 pad[4] = {codecs[i].codec, 0, 0, 0};

		appendBinaryStringInfo(&w->buf, (char *) &codecs[i].typid, 4);
		appendBinaryStringInfo(&w->buf, (char *) &codecs[i].typmod, 4);
		appendBinaryStringInfo(&w->buf, (char *) pad, 4);
	}
}

/*
 * Append a length-prefixed value, unless it would take the entry past the
 * limit (checked first, so that one huge value is never copied).
 */
static inline void
append_len_bytes(EntryWriter *w, const char *data, size_t len)
{
	uint32 len32 = (uint32) len;

	if ((size_t) w->buf.len + 4 + len > w->limit)
	{
		w->overflow = true;
		return;
	}
	appendBinaryStringInfo(&w->buf, (const char *) &len32, 4);
	appendBinaryStringInfo(&w->buf, data, len);
}

/* EntryWriterAddRow without the encoding switch. */
static void
add_row(EntryWriter *w, TupleTableSlot *slot)
{
	StringInfo buf = &w->buf;
	int bitmap_at;

	slot_getallattrs(slot);
	bitmap_at = buf->len;
	appendStringInfoSpaces(buf, w->natts / 8 + 1);
	memset(buf->data + bitmap_at, 0, w->natts / 8 + 1);

	for (int i = 0; i < w->natts; i++)
	{
		const EntryColumnCodec *c = &w->codecs[i];
		Datum d = slot->tts_values[i];

		if (slot->tts_isnull[i])
		{
			buf->data[bitmap_at + i / 8] |= (1 << (i % 8));
			continue;
		}
		switch (c->codec)
		{
			case CE_CODEC_FIXED1:
				{
					uint8 v = DatumGetBool(d) ? 1 : 0;

					appendBinaryStringInfo(buf, (char *) &v, 1);
					break;
				}
			case CE_CODEC_FIXED2:
				{
					int16 v = DatumGetInt16(d);

					appendBinaryStringInfo(buf, (char *) &v, 2);
					break;
				}
			case CE_CODEC_FIXED4:
				{
					uint32 v = DatumGetUInt32(d);

					appendBinaryStringInfo(buf, (char *) &v, 4);
					break;
				}
			case CE_CODEC_FIXED8:
				{
					uint64 v = (uint64) d;

					appendBinaryStringInfo(buf, (char *) &v, 8);
					break;
				}
			case CE_CODEC_TEXT:
			case CE_CODEC_BYTES:
			case CE_CODEC_NUMERIC:
				{
					struct varlena *v = PG_DETOAST_DATUM_PACKED(d);

					/*
					 * Text that is not valid in the database encoding (it
					 * can be made, if rarely) would be rejected as corrupt
					 * by every decode: do not store it.
					 */
					if (c->codec == CE_CODEC_TEXT &&
						!pg_verifymbstr(VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v), true))
					{
						w->overflow = true;
						w->problem = psprintf("a value of type %s is not valid in the database encoding",
											  format_type_be(c->typid));
					}
					else
						append_len_bytes(w, VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v));
					if ((Pointer) v != DatumGetPointer(d))
						pfree(v);
					break;
				}
			case CE_CODEC_BINARY:
				{
					bytea *v = SendFunctionCall((FmgrInfo *) &c->out, d);

					append_len_bytes(w, VARDATA(v), VARSIZE(v) - VARHDRSZ);
					pfree(v);
					break;
				}
			case CE_CODEC_TEXTIO:
				{
					char *v = OutputFunctionCall((FmgrInfo *) &c->out, d);

					append_len_bytes(w, v, strlen(v));
					pfree(v);
					break;
				}
		}
		if (w->overflow || (size_t) buf->len > w->limit)
			break;
	}

	w->nrows++;
	if (w->overflow || (size_t) buf->len > w->limit || w->nrows == PG_UINT32_MAX)
	{
		w->overflow = true;
		pfree(buf->data);
		buf->data = NULL;
		buf->len = 0;
	}
}

/*
 * Append the row in slot.  Once the entry would exceed the limit, or a
 * value cannot be stored (w->problem says why), the writer stops encoding
 * (overflow) and frees what it had.  Values are encoded independently of
 * client_encoding (see encoding_off).
 */
void
EntryWriterAddRow(EntryWriter *w, TupleTableSlot *slot)
{
	EncodingSwitch sw;

	if (w->overflow)
		return;
	if (!w->has_binary || pg_get_client_encoding() == GetDatabaseEncoding())
	{
		add_row(w, slot);
		return;
	}
	encoding_off(&sw);
	PG_TRY();
	{
		add_row(w, slot);
	}
	PG_FINALLY();
	{
		encoding_restore(&sw);
	}
	PG_END_TRY();
}

/* Fill in the header; the entry is then w->buf.data, w->buf.len bytes. */
void
EntryWriterFinish(EntryWriter *w, const uint8 *fingerprint)
{
	uint8 *h = (uint8 *) w->buf.data;
	uint32 magic = CE_ENTRY_MAGIC;
	uint16 natts = w->natts;
	uint32 total = w->buf.len;
	int64 now = GetCurrentTimestamp();
	uint32 gens_len = w->gens_len;
	uint32 crc;

	Assert(!w->overflow);
	memcpy(h, &magic, 4);
	h[4] = CE_ENTRY_VERSION;
	h[5] = 0;
	memcpy(h + 6, &natts, 2);
	memcpy(h + 8, &total, 4);
	memcpy(h + 16, fingerprint, CE_FINGERPRINT_LEN);
	memcpy(h + 32, &now, 8);
	memcpy(h + 40, &w->nrows, 4);
	memcpy(h + 44, &gens_len, 4);
	crc = CeEntryChecksum(h, total);
	memcpy(h + 12, &crc, 4);
}

/*
 * Errors a built-in receive or input function raises on bad input.  Class
 * 08 is pq_getmsg*()'s "insufficient data left in message" (08P01): receive
 * functions read from a StringInfo and do no real I/O.
 */
static bool
is_bad_input_error(int sqlerrcode)
{
	int category = ERRCODE_TO_CATEGORY(sqlerrcode);

	return category == ERRCODE_DATA_EXCEPTION ||
		category == ERRCODE_CONNECTION_EXCEPTION ||
		category == ERRCODE_FEATURE_NOT_SUPPORTED ||
		category == ERRCODE_SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION ||
		category == ERRCODE_PROGRAM_LIMIT_EXCEEDED ||
		category == ERRCODE_INTERNAL_ERROR;
}

/* Raw values of the date/time types must be in their types' ranges. */
static bool
fixed_value_valid(Oid typid, int64 v)
{
	switch (typid)
	{
		case DATEOID:
			return DATE_NOT_FINITE((DateADT) v) || IS_VALID_DATE((DateADT) v);
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			return TIMESTAMP_NOT_FINITE(v) || IS_VALID_TIMESTAMP(v);
		case TIMEOID:
			return v >= 0 && v <= USECS_PER_DAY;
		default:
			return true;
	}
}

/* What became of a value or an entry's rows */
typedef enum DecodeOutcome
{
	DV_OK,
	DV_CORRUPT,	   /* bytes cache_ext's writer never produces */
	DV_UNDECODABLE /* the type's receive or input function refused
								 * them */
} DecodeOutcome;

/*
 * Memory for the varlena values of one row, reused from row to row: their
 * datums are copied into the row's tuple before the next row is decoded,
 * so a palloc per value and a context reset per row are not needed.  A
 * value that does not fit is palloc'd (in the row's context) instead.
 */
typedef struct RowScratch
{
	char *buf;
	Size used;
	Size size;
	MemoryContext rowcxt; /* where a value that does not fit goes */
	bool spilled;		  /* one did, this row: rowcxt needs a reset */
} RowScratch;

#define ROW_SCRATCH_SIZE 8192

static void *
scratch_alloc(RowScratch *s, Size n)
{
	Size off = MAXALIGN(s->used);

	if (off + n > s->size)
	{
		s->spilled = true;
		return MemoryContextAlloc(s->rowcxt, n);
	}
	s->used = off + n;
	return s->buf + off;
}

/*
 * Turn one value at p (len bytes, already bounds-checked) into a Datum; a
 * varlena copied raw goes into scratch.  With catch_errors, bad-input
 * errors of the type's functions are caught and reported as
 * DV_UNDECODABLE; other errors (cancel, out of memory) propagate.
 */
static DecodeOutcome
decode_value(const EntryColumnCodec *c, char *p, uint32 len, Datum *out,
			 bool catch_errors, RowScratch *scratch)
{
	switch (c->codec)
	{
		case CE_CODEC_FIXED1:
			if ((uint8) p[0] > 1)
				return DV_CORRUPT;
			*out = BoolGetDatum(p[0] != 0);
			return DV_OK;
		case CE_CODEC_FIXED2:
			{
				int16 v;

				memcpy(&v, p, 2);
				*out = Int16GetDatum(v);
				return DV_OK;
			}
		case CE_CODEC_FIXED4:
			{
				int32 v;

				memcpy(&v, p, 4);
				*out = Int32GetDatum(v);
				return fixed_value_valid(c->typid, v) ? DV_OK : DV_CORRUPT;
			}
		case CE_CODEC_FIXED8:
			{
				int64 v;

				memcpy(&v, p, 8);
				*out = Int64GetDatum(v);
				return fixed_value_valid(c->typid, v) ? DV_OK : DV_CORRUPT;
			}
		case CE_CODEC_TEXT:
		case CE_CODEC_BYTES:
		case CE_CODEC_NUMERIC:
			{
				text *v;

				if (c->codec == CE_CODEC_TEXT && !pg_verifymbstr(p, len, true))
					return DV_CORRUPT;
				/* numeric values were validated by CeEntryParse */
				v = (text *) scratch_alloc(scratch, (Size) len + VARHDRSZ);
				SET_VARSIZE(v, len + VARHDRSZ);
				memcpy(VARDATA(v), p, len);
				*out = PointerGetDatum(v);
				return DV_OK;
			}
		case CE_CODEC_BINARY:
		case CE_CODEC_TEXTIO:
			{
				/* the functions expect a NUL after the data, as in bind */
				char saved = p[len];
				MemoryContext cxt = CurrentMemoryContext;
				StringInfoData si;
				volatile DecodeOutcome result = DV_OK;

				p[len] = '\0';
				si.data = p;
				si.len = len;
				si.maxlen = len + 1;
				si.cursor = 0;
				PG_TRY();
				{
					if (c->codec == CE_CODEC_BINARY)
					{
						*out = ReceiveFunctionCall((FmgrInfo *) &c->in, &si,
												   c->ioparam, c->typmod);
						if (si.cursor != si.len)
							result = DV_UNDECODABLE;
					}
					else if (strlen(p) != len)
						result = DV_CORRUPT; /* output functions write no NUL */
					else
						*out = InputFunctionCall((FmgrInfo *) &c->in, p,
												 c->ioparam, c->typmod);
				}
				PG_CATCH();
				{
					ErrorData *edata;

					p[len] = saved;
					MemoryContextSwitchTo(cxt);
					edata = CopyErrorData();

					/*
					 * Built-in receive and input functions hold no locks or
					 * buffers when they reject their input, so dropping such
					 * an error without a subtransaction is safe.
					 */
					if (!catch_errors || !is_bad_input_error(edata->sqlerrcode))
						PG_RE_THROW();
					FlushErrorState();
					FreeErrorData(edata);
					result = DV_UNDECODABLE;
				}
				PG_END_TRY();
				p[len] = saved;
				return result;
			}
	}
	return DV_CORRUPT;
}

/*
 * Decode every row of a parsed entry into ts; stops at the first bad value.
 * *col is kept at the column being decoded, so that after an error the
 * caller knows which type raised it.
 */
static DecodeOutcome
decode_rows(const CeEntryView *view, int natts, const EntryColumnCodec *codecs,
			TupleDesc desc, bool catch_errors, Tuplestorestate *ts,
			volatile int *col)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	MemoryContext rowcxt;
	Datum *values = palloc(sizeof(Datum) * (natts + 1));
	bool *nulls = palloc(sizeof(bool) * (natts + 1));
	char *p = (char *) view->rows;
	DecodeOutcome result = DV_OK;
	RowScratch scratch;
	bool resets = false;

	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "cache_ext decode",
								   ALLOCSET_DEFAULT_SIZES);
	/* only a type's own functions allocate; raw values go to scratch */
	for (int i = 0; i < natts; i++)
		resets |= codecs[i].codec == CE_CODEC_BINARY || codecs[i].codec == CE_CODEC_TEXTIO;
	scratch.buf = palloc(ROW_SCRATCH_SIZE);
	scratch.size = ROW_SCRATCH_SIZE;
	scratch.rowcxt = rowcxt;
	scratch.spilled = false;
	for (uint32 r = 0; r < view->nrows && result == DV_OK; r++)
	{
		const uint8 *bitmap = (const uint8 *) p;

		p += natts / 8 + 1;
		scratch.used = 0;
		if (resets)
			MemoryContextSwitchTo(rowcxt);
		for (int i = 0; i < natts; i++)
		{
			int width;
			uint32 vlen;

			nulls[i] = (bitmap[i / 8] & (1 << (i % 8))) != 0;
			values[i] = (Datum) 0;
			if (nulls[i])
				continue;
			width = CeCodecWidth(codecs[i].codec);
			if (width > 0)
				vlen = width;
			else
			{
				memcpy(&vlen, p, 4);
				p += 4;
			}
			*col = i;
			result = decode_value(&codecs[i], p, vlen, &values[i], catch_errors,
								  &scratch);
			if (result != DV_OK)
				break;
			p += vlen;
		}
		if (resets)
			MemoryContextSwitchTo(oldcxt);
		if (result == DV_OK)
			tuplestore_putvalues(ts, desc, values, nulls);
		if (resets || scratch.spilled)
			MemoryContextReset(rowcxt);
		scratch.spilled = false;
	}
	MemoryContextDelete(rowcxt);
	pfree(scratch.buf);
	pfree(values);
	pfree(nulls);
	return result;
}

/* decode_rows' arguments and result, for RunInSubtransaction */
typedef struct DecodeArgs
{
	const CeEntryView *view;
	int natts;
	const EntryColumnCodec *codecs;
	TupleDesc desc;
	Tuplestorestate *ts;
	volatile int *col;
	DecodeOutcome outcome;
} DecodeArgs;

static void
decode_fn(void *arg)
{
	DecodeArgs *a = (DecodeArgs *) arg;

	a->outcome = decode_rows(a->view, a->natts, a->codecs, a->desc, false,
							 a->ts, a->col);
}

/*
 * decode_rows in a subtransaction (as PL/pgSQL does for an exception
 * block), for types whose functions may run code that is not built in.
 * An error of the kind bad input raises (or a domain's CHECK) is the type
 * refusing the bytes; a cancel or shutdown is re-thrown; anything else
 * makes the entry corrupt.
 */
static DecodeOutcome
decode_in_subxact(const CeEntryView *view, int natts,
				  const EntryColumnCodec *codecs, TupleDesc desc,
				  Tuplestorestate *ts, volatile int *col)
{
	DecodeArgs a;
	ErrorData *edata;
	int category;

	a.view = view;
	a.natts = natts;
	a.codecs = codecs;
	a.desc = desc;
	a.ts = ts;
	a.col = col;
	a.outcome = DV_OK;
	edata = RunInSubtransaction(decode_fn, &a);
	if (edata == NULL)
		return a.outcome;
	category = ERRCODE_TO_CATEGORY(edata->sqlerrcode);
	a.outcome = (is_bad_input_error(edata->sqlerrcode) ||
				 category == ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION) ?
		DV_UNDECODABLE :
		DV_CORRUPT;
	FreeErrorData(edata);
	return a.outcome;
}

EntryDecodeResult
EntryLoad(char *buf, size_t len, const uint8 *fingerprint,
		  const EntryGens *gens, int natts,
		  const EntryColumnCodec *codecs, TupleDesc desc, bool in_subxact,
		  Tuplestorestate *ts, const char **why)
{
	CeEntryView view;
	EncodingSwitch sw;
	volatile DecodeOutcome outcome = DV_OK;
	volatile int col = 0;

	*why = CeEntryParse((const uint8 *) buf, len, &view);
	if (*why)
		return ENTRY_CORRUPT;
	if (memcmp(view.fingerprint, fingerprint, CE_FINGERPRINT_LEN) != 0)
	{
		*why = "entry belongs to another key";
		return ENTRY_CORRUPT;
	}
	/*
	 * Stale unless every generation is the one it was computed under; an
	 * L1 entry (gens NULL) was checked against the local counters instead.
	 */
	if (gens != NULL && view.ngens != (uint32) gens->n)
		return ENTRY_STALE;
	if (gens != NULL)
	{
		const uint8 *g = view.gens;

		for (int i = 0; i < gens->n; i++)
		{
			if (g[0] != gens->lens[i] || memcmp(g + 1, gens->vals[i], g[0]) != 0)
				return ENTRY_STALE;
			g += 1 + g[0];
		}
	}
	if (view.natts != natts)
	{
		*why = "column count differs from the query's";
		return ENTRY_CORRUPT;
	}
	for (int i = 0; i < natts; i++)
	{
		uint32 typid;
		int32 typmod;
		uint8 codec;

		CeEntryColumn(&view, i, &typid, &typmod, &codec);
		if (typid != codecs[i].typid || typmod != codecs[i].typmod ||
			codec != codecs[i].codec)
		{
			*why = "row type differs from the query's";
			return ENTRY_CORRUPT;
		}
	}

	encoding_off(&sw);
	PG_TRY();
	{
		if (!in_subxact)
			outcome = decode_rows(&view, natts, codecs, desc, true, ts, &col);
		else
			outcome = decode_in_subxact(&view, natts, codecs, desc, ts, &col);
	}
	PG_FINALLY();
	{
		encoding_restore(&sw);
	}
	PG_END_TRY();

	if (outcome == DV_CORRUPT)
	{
		*why = "invalid value";
		return ENTRY_CORRUPT;
	}
	if (outcome == DV_UNDECODABLE)
	{
		*why = psprintf("values of type %s cannot be read back",
						format_type_extended(codecs[col].typid, -1,
											 FORMAT_TYPE_ALLOW_INVALID));
		return ENTRY_UNDECODABLE;
	}
	return ENTRY_VALID;
}

/* ---- sealed entries (entry_format.h), with the server's keys ---- */

bool
EntryIsSealed(const char *buf, size_t len)
{
	return CeIsSealed((const uint8 *) buf, len);
}

void
EntrySeal(const char *plain, size_t len, const char *rkey, StringInfo out)
{
	uint32 id;
	const uint8 *key = KeyCurrentEncryptionKey(&id);
	uint8 nonce[12];

	if (!pg_strong_random(nonce, sizeof(nonce)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random nonce")));
	initStringInfo(out);
	enlargeStringInfo(out, len + CE_SEALED_OVERHEAD + 1);
	if (!CeSealedSeal((const uint8 *) plain, len, (const uint8 *) rkey,
					  strlen(rkey), key, id, nonce, (uint8 *) out->data))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not encrypt a cache entry")));
	out->len = len + CE_SEALED_OVERHEAD;
	out->data[out->len] = '\0';
}

static const uint8 *
lookup_key(uint32 id, void *arg)
{
	return KeyEncryptionOn() ? KeyFindEncryptionKey(id) : NULL;
}

char *
EntryOpen(const char *buf, size_t len, const char *rkey, size_t *plen,
		  const char **why)
{
	char *plain = palloc(len + 1);

	*why = CeSealedOpen((const uint8 *) buf, len, (const uint8 *) rkey,
						strlen(rkey), lookup_key, NULL, (uint8 *) plain, plen);
	if (*why)
	{
		pfree(plain);
		return NULL;
	}
	plain[*plen] = '\0';
	return plain;
}

int cache_ext_max_entry_size = 1024 * 1024;

/* cache_ext.max_entry_size. */
void
EntryDefineGucs(void)
{
	DefineCustomIntVariable("cache_ext.max_entry_size",
							"Largest result, in its stored form, that is stored in Redis.",
							"Larger results are returned uncached; larger replies from Redis are refused unread.",
							&cache_ext_max_entry_size,
							1024 * 1024, 1024, 512 * 1024 * 1024,
							PGC_SUSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);
}
