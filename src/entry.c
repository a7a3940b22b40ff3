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
 * it does for bytes from a client.  A bad-input ERROR raised by one of
 * those is caught here and turned into "corrupt entry"; types defined by
 * users are decoded in a subtransaction, since their functions may run
 * arbitrary code.  Raw date/time values are range-checked.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/resowner.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "entry.h"
#include "keys.h"

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

char *
EntryCodecsInit(TupleDesc desc, EntryColumnCodec *codecs, MemoryContext fn_mcxt)
{
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		EntryColumnCodec *c = &codecs[i];
		Oid			sendfn,
					recvfn,
					outfn,
					infn;
		bool		isvarlena;

		c->typid = att->atttypid;
		c->typmod = att->atttypmod;
		if (att->attisdropped)
			return psprintf("the result has a dropped column");
		if (c->typid == RECORDOID || get_typtype(c->typid) == TYPTYPE_PSEUDO)
			return psprintf("column \"%s\" has the anonymous type %s",
							NameStr(att->attname), format_type_be(c->typid));

		c->codec = fixed_codec(c->typid);
		if (c->codec != 0)
			continue;
		if (c->typid == TEXTOID || c->typid == VARCHAROID || c->typid == BPCHAROID)
		{
			c->codec = CE_CODEC_TEXT;
			continue;
		}
		if (c->typid == BYTEAOID)
		{
			c->codec = CE_CODEC_BYTES;
			continue;
		}
		if (c->typid == NUMERICOID)
		{
			c->codec = CE_CODEC_NUMERIC;
			continue;
		}

		getTypeBinaryOutputInfo(c->typid, &sendfn, &isvarlena);
		getTypeBinaryInputInfo(c->typid, &recvfn, &c->ioparam);
		if (OidIsValid(sendfn) && OidIsValid(recvfn))
		{
			c->codec = CE_CODEC_BINARY;
			fmgr_info_cxt(sendfn, &c->out, fn_mcxt);
			fmgr_info_cxt(recvfn, &c->in, fn_mcxt);
			continue;
		}
		getTypeOutputInfo(c->typid, &outfn, &isvarlena);
		getTypeInputInfo(c->typid, &infn, &c->ioparam);
		c->codec = CE_CODEC_TEXTIO;
		fmgr_info_cxt(outfn, &c->out, fn_mcxt);
		fmgr_info_cxt(infn, &c->in, fn_mcxt);
	}
	return NULL;
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

	/* header, filled in by EntryWriterFinish */
	appendStringInfoSpaces(&w->buf, CE_HEADER_SIZE);
	for (int i = 0; i < gens->n; i++)
	{
		uint8		len = (uint8) gens->lens[i];

		Assert(gens->lens[i] >= 1 && gens->lens[i] <= 255);
		appendBinaryStringInfo(&w->buf, (char *) &len, 1);
		appendBinaryStringInfo(&w->buf, gens->vals[i], len);
	}
	w->gens_len = w->buf.len - CE_HEADER_SIZE;
	if (w->gens_len > CE_MAX_GENS_LEN)
		w->overflow = true;
	for (int i = 0; i < natts; i++)
	{
		uint8		pad[4] = {codecs[i].codec, 0, 0, 0};

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
	uint32		len32 = (uint32) len;

	if ((size_t) w->buf.len + 4 + len > w->limit)
	{
		w->overflow = true;
		return;
	}
	appendBinaryStringInfo(&w->buf, (const char *) &len32, 4);
	appendBinaryStringInfo(&w->buf, data, len);
}

/*
 * Append the row in slot.  Once the entry would exceed the limit, the
 * writer stops encoding (overflow) and frees what it had.
 */
void
EntryWriterAddRow(EntryWriter *w, TupleTableSlot *slot)
{
	StringInfo	buf = &w->buf;
	int			bitmap_at;

	if (w->overflow)
		return;

	slot_getallattrs(slot);
	bitmap_at = buf->len;
	appendStringInfoSpaces(buf, w->natts / 8 + 1);
	memset(buf->data + bitmap_at, 0, w->natts / 8 + 1);

	for (int i = 0; i < w->natts; i++)
	{
		const EntryColumnCodec *c = &w->codecs[i];
		Datum		d = slot->tts_values[i];

		if (slot->tts_isnull[i])
		{
			buf->data[bitmap_at + i / 8] |= (1 << (i % 8));
			continue;
		}
		switch (c->codec)
		{
			case CE_CODEC_FIXED1:
				{
					uint8		v = DatumGetBool(d) ? 1 : 0;

					appendBinaryStringInfo(buf, (char *) &v, 1);
					break;
				}
			case CE_CODEC_FIXED2:
				{
					int16		v = DatumGetInt16(d);

					appendBinaryStringInfo(buf, (char *) &v, 2);
					break;
				}
			case CE_CODEC_FIXED4:
				{
					uint32		v = DatumGetUInt32(d);

					appendBinaryStringInfo(buf, (char *) &v, 4);
					break;
				}
			case CE_CODEC_FIXED8:
				{
					uint64		v = (uint64) d;

					appendBinaryStringInfo(buf, (char *) &v, 8);
					break;
				}
			case CE_CODEC_TEXT:
			case CE_CODEC_BYTES:
			case CE_CODEC_NUMERIC:
				{
					struct varlena *v = PG_DETOAST_DATUM_PACKED(d);

					append_len_bytes(w, VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v));
					if ((Pointer) v != DatumGetPointer(d))
						pfree(v);
					break;
				}
			case CE_CODEC_BINARY:
				{
					bytea	   *v = SendFunctionCall((FmgrInfo *) &c->out, d);

					append_len_bytes(w, VARDATA(v), VARSIZE(v) - VARHDRSZ);
					pfree(v);
					break;
				}
			case CE_CODEC_TEXTIO:
				{
					char	   *v = OutputFunctionCall((FmgrInfo *) &c->out, d);

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

/* Fill in the header; the entry is then w->buf.data, w->buf.len bytes. */
void
EntryWriterFinish(EntryWriter *w, const uint8 *fingerprint)
{
	uint8	   *h = (uint8 *) w->buf.data;
	uint32		magic = CE_ENTRY_MAGIC;
	uint16		natts = w->natts;
	uint32		total = w->buf.len;
	int64		now = GetCurrentTimestamp();
	uint32		gens_len = w->gens_len;
	uint32		crc;

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

/* Errors a built-in receive or input function raises on bad input. */
static bool
is_bad_input_error(int sqlerrcode)
{
	int			category = ERRCODE_TO_CATEGORY(sqlerrcode);

	return category == ERRCODE_DATA_EXCEPTION ||
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

/*
 * Turn one value at p (len bytes, already bounds-checked) into a Datum.
 * Returns false for an invalid value.  With catch_errors, bad-input errors
 * of the type's functions are caught and reported as false; other errors
 * (cancel, out of memory) propagate.
 */
static bool
decode_value(const EntryColumnCodec *c, char *p, uint32 len, Datum *out,
			 bool catch_errors)
{
	switch (c->codec)
	{
		case CE_CODEC_FIXED1:
			if ((uint8) p[0] > 1)
				return false;
			*out = BoolGetDatum(p[0] != 0);
			return true;
		case CE_CODEC_FIXED2:
			{
				int16		v;

				memcpy(&v, p, 2);
				*out = Int16GetDatum(v);
				return true;
			}
		case CE_CODEC_FIXED4:
			{
				int32		v;

				memcpy(&v, p, 4);
				*out = Int32GetDatum(v);
				return fixed_value_valid(c->typid, v);
			}
		case CE_CODEC_FIXED8:
			{
				int64		v;

				memcpy(&v, p, 8);
				*out = Int64GetDatum(v);
				return fixed_value_valid(c->typid, v);
			}
		case CE_CODEC_TEXT:
		case CE_CODEC_BYTES:
		case CE_CODEC_NUMERIC:
			{
				text	   *v;

				if (c->codec == CE_CODEC_TEXT && !pg_verifymbstr(p, len, true))
					return false;
				/* numeric values were validated by CeEntryParse */
				v = (text *) palloc(len + VARHDRSZ);
				SET_VARSIZE(v, len + VARHDRSZ);
				memcpy(VARDATA(v), p, len);
				*out = PointerGetDatum(v);
				return true;
			}
		case CE_CODEC_BINARY:
		case CE_CODEC_TEXTIO:
			{
				/* the functions expect a NUL after the data, as in bind */
				char		saved = p[len];
				MemoryContext cxt = CurrentMemoryContext;
				StringInfoData si;
				volatile bool valid = true;

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
						valid = (si.cursor == si.len);
					}
					else if (strlen(p) != len)
						valid = false;
					else
						*out = InputFunctionCall((FmgrInfo *) &c->in, p,
												 c->ioparam, c->typmod);
				}
				PG_CATCH();
				{
					ErrorData  *edata;

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
					valid = false;
				}
				PG_END_TRY();
				p[len] = saved;
				return valid;
			}
	}
	return false;
}

/* Decode every row of a parsed entry into ts; false at the first bad value. */
static bool
decode_rows(const CeEntryView *view, int natts, const EntryColumnCodec *codecs,
			TupleDesc desc, bool catch_errors, Tuplestorestate *ts)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	MemoryContext rowcxt;
	Datum	   *values = palloc(sizeof(Datum) * (natts + 1));
	bool	   *nulls = palloc(sizeof(bool) * (natts + 1));
	char	   *p = (char *) view->rows;
	bool		ok = true;

	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "cache_ext decode",
								   ALLOCSET_DEFAULT_SIZES);
	for (uint32 r = 0; r < view->nrows && ok; r++)
	{
		const uint8 *bitmap = (const uint8 *) p;

		p += natts / 8 + 1;
		MemoryContextSwitchTo(rowcxt);
		for (int i = 0; i < natts; i++)
		{
			int			width;
			uint32		vlen;

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
			if (!decode_value(&codecs[i], p, vlen, &values[i], catch_errors))
			{
				ok = false;
				break;
			}
			p += vlen;
		}
		MemoryContextSwitchTo(oldcxt);
		if (ok)
			tuplestore_putvalues(ts, desc, values, nulls);
		MemoryContextReset(rowcxt);
	}
	MemoryContextDelete(rowcxt);
	pfree(values);
	pfree(nulls);
	return ok;
}

EntryDecodeResult
EntryDecode(char *buf, size_t len, const uint8 *fingerprint,
			const EntryGens *gens, int natts,
			const EntryColumnCodec *codecs, TupleDesc desc, bool in_subxact,
			Tuplestorestate *ts, const char **why)
{
	CeEntryView view;
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile bool ok = true;

	*why = CeEntryParse((const uint8 *) buf, len, &view);
	if (*why)
		return ENTRY_CORRUPT;
	if (memcmp(view.fingerprint, fingerprint, CE_FINGERPRINT_LEN) != 0)
	{
		*why = "entry belongs to another key";
		return ENTRY_CORRUPT;
	}
	/* stale unless every generation is the one it was computed under */
	if (view.ngens != (uint32) gens->n)
		return ENTRY_STALE;
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
		uint32		typid;
		int32		typmod;
		uint8		codec;

		CeEntryColumn(&view, i, &typid, &typmod, &codec);
		if (typid != codecs[i].typid || typmod != codecs[i].typmod ||
			codec != codecs[i].codec)
		{
			*why = "row type differs from the query's";
			return ENTRY_CORRUPT;
		}
	}

	if (!in_subxact)
		ok = decode_rows(&view, natts, codecs, desc, true, ts);
	else
	{
		/* as PL/pgSQL does for an exception block */
		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(oldcxt);
		PG_TRY();
		{
			ok = decode_rows(&view, natts, codecs, desc, false, ts);
			ReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(oldcxt);
			CurrentResourceOwner = oldowner;
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(oldcxt);
			edata = CopyErrorData();
			FlushErrorState();
			RollbackAndReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(oldcxt);
			CurrentResourceOwner = oldowner;
			/* a cancel or shutdown is not a property of the entry */
			if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_OPERATOR_INTERVENTION)
				ReThrowError(edata);
			FreeErrorData(edata);
			ok = false;
		}
		PG_END_TRY();
	}
	if (!ok)
	{
		*why = "invalid value";
		return ENTRY_CORRUPT;
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
	uint32		id;
	const uint8 *key = KeyCurrentEncryptionKey(&id);
	uint8		nonce[12];

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
	char	   *plain = palloc(len + 1);

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
