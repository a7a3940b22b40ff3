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
 * it does for bytes from a client.  An ERROR raised by one of those is
 * caught here and turned into "corrupt entry".
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "entry.h"

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
				size_t limit)
{
	initStringInfo(&w->buf);
	w->natts = natts;
	w->codecs = codecs;
	w->nrows = 0;
	w->limit = limit;
	w->overflow = false;

	/* header, filled in by EntryWriterFinish */
	appendStringInfoSpaces(&w->buf, CE_HEADER_SIZE);
	for (int i = 0; i < natts; i++)
	{
		uint8		pad[4] = {codecs[i].codec, 0, 0, 0};

		appendBinaryStringInfo(&w->buf, (char *) &codecs[i].typid, 4);
		appendBinaryStringInfo(&w->buf, (char *) &codecs[i].typmod, 4);
		appendBinaryStringInfo(&w->buf, (char *) pad, 4);
	}
}

static inline void
append_len_bytes(StringInfo buf, const char *data, uint32 len)
{
	appendBinaryStringInfo(buf, (char *) &len, 4);
	appendBinaryStringInfo(buf, data, len);
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
				{
					struct varlena *v = PG_DETOAST_DATUM_PACKED(d);

					append_len_bytes(buf, VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v));
					if ((Pointer) v != DatumGetPointer(d))
						pfree(v);
					break;
				}
			case CE_CODEC_BINARY:
				{
					bytea	   *v = SendFunctionCall((FmgrInfo *) &c->out, d);

					append_len_bytes(buf, VARDATA(v), VARSIZE(v) - VARHDRSZ);
					pfree(v);
					break;
				}
			case CE_CODEC_TEXTIO:
				{
					char	   *v = OutputFunctionCall((FmgrInfo *) &c->out, d);

					append_len_bytes(buf, v, strlen(v));
					pfree(v);
					break;
				}
		}
		if ((size_t) buf->len > w->limit)
			break;
	}

	w->nrows++;
	if ((size_t) buf->len > w->limit || w->nrows == PG_UINT32_MAX)
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
	uint32		zero = 0;
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
	memcpy(h + 44, &zero, 4);
	crc = CeEntryChecksum(h, total);
	memcpy(h + 12, &crc, 4);
}

/*
 * Turn one value at p (len bytes, already bounds-checked) into a Datum.
 * May ereport on invalid input (caught by EntryDecode).  Returns false for
 * invalid values detected here.
 */
static bool
decode_value(const EntryColumnCodec *c, char *p, uint32 len, Datum *out)
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
				return true;
			}
		case CE_CODEC_FIXED8:
			{
				uint64		v;

				memcpy(&v, p, 8);
				*out = (Datum) v;
				return true;
			}
		case CE_CODEC_TEXT:
		case CE_CODEC_BYTES:
			{
				text	   *v;

				if (c->codec == CE_CODEC_TEXT && !pg_verifymbstr(p, len, true))
					return false;
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
					/*
					 * Only the type's receive or input function can throw
					 * here.  Those validate client input and hold no locks or
					 * buffers, so dropping their error without a
					 * subtransaction is safe.
					 */
					MemoryContextSwitchTo(cxt);
					FlushErrorState();
					valid = false;
				}
				PG_END_TRY();
				p[len] = saved;
				return valid;
			}
	}
	return false;
}

bool
EntryDecode(char *buf, size_t len, const uint8 *fingerprint, int natts,
			const EntryColumnCodec *codecs, TupleDesc desc,
			Tuplestorestate *ts, const char **why)
{
	CeEntryView view;
	MemoryContext rowcxt;
	MemoryContext oldcxt = CurrentMemoryContext;
	Datum	   *values;
	bool	   *nulls;
	bool		ok = true;

	*why = CeEntryParse((const uint8 *) buf, len, &view);
	if (*why)
		return false;
	if (memcmp(view.fingerprint, fingerprint, CE_FINGERPRINT_LEN) != 0)
	{
		*why = "entry belongs to another key";
		return false;
	}
	if (view.natts != natts)
	{
		*why = "column count differs from the query's";
		return false;
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
			return false;
		}
	}

	values = palloc(sizeof(Datum) * (natts + 1));
	nulls = palloc(sizeof(bool) * (natts + 1));
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "cache_ext decode",
								   ALLOCSET_DEFAULT_SIZES);

	{
		char	   *p = (char *) view.rows;

		for (uint32 r = 0; r < view.nrows && ok; r++)
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
				if (!decode_value(&codecs[i], p, vlen, &values[i]))
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
		if (!ok)
			*why = "invalid value";
	}

	MemoryContextDelete(rowcxt);
	pfree(values);
	pfree(nulls);
	return ok;
}
