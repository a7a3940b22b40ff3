/*-------------------------------------------------------------------------
 *
 * sql_api.c
 *	  The SQL entry points of the query cache: cached_query(),
 *	  cached_query_with(), cached_query_json(), cached_query_json_with()
 *	  and cache_status(); reading their arguments (parameters, cache_opts()
 *	  options).  The work is the call pipeline's (pipeline.c).
 *
 * No state of its own.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/tstoreReceiver.h"
#include "common/hashfn.h"
#include "common/pg_prng.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "parser/parse_coerce.h"
#include "portability/instr_time.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "catalog/pg_inherits.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/typcache.h"
#include "tsearch/ts_cache.h"
#include "executor/functions.h"
#include "optimizer/optimizer.h"
#include "parser/analyze.h"

#include "cache_ext.h"
#include "entry.h"
#include "invalidate.h"
#include "keys.h"
#include "call.h"

/*
 * Collect the parameters from arguments first..nargs-1, or from the array
 * of an explicit VARIADIC call.  Unknown literals become text.
 */
void
collect_params(FunctionCallInfo fcinfo, int first, CallParams *p)
{
	int nargs = PG_NARGS();

	if (nargs > first && get_fn_expr_variadic(fcinfo->flinfo))
	{
		ArrayType *arr;
		Oid elemtype;
		int16 typlen;
		bool typbyval;
		char typalign;

		if (PG_ARGISNULL(first))
		{
			p->n = 0;
			return;
		}
		arr = PG_GETARG_ARRAYTYPE_P(first);
		elemtype = ARR_ELEMTYPE(arr);
		get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
		deconstruct_array(arr, elemtype, typlen, typbyval, typalign,
						  &p->values, &p->nulls, &p->n);
		p->types = palloc(sizeof(Oid) * Max(p->n, 1));
		for (int i = 0; i < p->n; i++)
			p->types[i] = elemtype;
	}
	else
	{
		p->n = Max(nargs - first, 0);
		p->types = palloc(sizeof(Oid) * Max(p->n, 1));
		p->values = palloc(sizeof(Datum) * Max(p->n, 1));
		p->nulls = palloc(sizeof(bool) * Max(p->n, 1));
		for (int i = 0; i < p->n; i++)
		{
			Oid t = get_fn_expr_argtype(fcinfo->flinfo, first + i);

			p->nulls[i] = PG_ARGISNULL(first + i);
			p->values[i] = p->nulls[i] ? (Datum) 0 : PG_GETARG_DATUM(first + i);
			if (t == UNKNOWNOID)
			{
				t = TEXTOID;
				if (!p->nulls[i])
					p->values[i] = CStringGetTextDatum(DatumGetCString(p->values[i]));
			}
			p->types[i] = t;
		}
	}

	for (int i = 0; i < p->n; i++)
	{
		if (!OidIsValid(p->types[i]))
			ereport(ERROR,
					(errcode(ERRCODE_INDETERMINATE_DATATYPE),
					 errmsg("could not determine the type of parameter $%d", i + 1)));
		if (p->types[i] == RECORDOID || get_typtype(p->types[i]) == TYPTYPE_PSEUDO)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("parameter $%d has type %s, which cached_query cannot use",
							i + 1, format_type_be(p->types[i])),
					 errhint("Cast the parameter to a named type.")));
	}
}

/* Read a cache_options value (NULL fields mean the defaults). */
void
parse_options(HeapTupleHeader opts, CallOptions *o)
{
	bool isnull;
	Datum d;

	o->ttl_ms = (int64) Min(cache_ext_default_ttl, cache_ext_max_ttl) * 1000;
	o->namespace = "";
	o->ntags = 0;
	o->tags = NULL;
	o->has_depends_on = false;
	o->depends_on = NIL;
	o->meaning = NULL;
	o->lookup_only = false;
	o->fill_only = false;
	if (opts == NULL)
		return;

	d = GetAttributeByNum(opts, 1, &isnull);
	if (!isnull)
	{
		Interval *iv = DatumGetIntervalP(d);
		int64 us = -1;

		/* bounds first, so the arithmetic below cannot overflow */
		if (iv->month >= 0 && iv->month <= 12 && iv->day >= 0 && iv->day <= 366 &&
			iv->time >= 0 && iv->time <= (int64) 366 * USECS_PER_DAY)
			us = iv->time + (int64) iv->day * USECS_PER_DAY +
				(int64) iv->month * DAYS_PER_MONTH * USECS_PER_DAY;
		if (us < 1000 || us > (int64) 365 * USECS_PER_DAY)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("ttl must be between 1 millisecond and 365 days")));
		/* a superuser's ceiling: no role stores an entry for longer */
		o->ttl_ms = Min(us / 1000, (int64) cache_ext_max_ttl * 1000);
	}

	d = GetAttributeByNum(opts, 2, &isnull);
	if (!isnull)
	{
		ArrayType *arr = DatumGetArrayTypeP(d);
		Datum *tags;
		bool *tagnulls;
		int ntags;

		deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT,
						  &tags, &tagnulls, &ntags);
		if (ntags > 64)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("at most 64 tags may be given, not %d", ntags)));
		for (int i = 0; i < ntags; i++)
			if (tagnulls[i] || VARSIZE_ANY_EXHDR(DatumGetPointer(tags[i])) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("tags must be non-empty and not null")));
		o->ntags = ntags;
		o->tags = palloc(sizeof(char *) * Max(ntags, 1));
		for (int i = 0; i < ntags; i++)
			o->tags[i] = TextDatumGetCString(tags[i]);
	}

	if (HeapTupleHeaderGetNatts(opts) >= 4)
	{
		d = GetAttributeByNum(opts, 4, &isnull);
		if (!isnull)
		{
			ArrayType *arr = DatumGetArrayTypeP(d);
			Datum *rels;
			bool *relnulls;
			int nrels;

			deconstruct_array(arr, REGCLASSOID, sizeof(Oid), true, TYPALIGN_INT,
							  &rels, &relnulls, &nrels);
			o->has_depends_on = true;
			for (int i = 0; i < nrels; i++)
			{
				if (relnulls[i])
					ereport(ERROR,
							(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
							 errmsg("depends_on must not contain NULL")));
				o->depends_on = list_append_unique_oid(o->depends_on,
													   DatumGetObjectId(rels[i]));
			}
		}
	}

	d = GetAttributeByNum(opts, 3, &isnull);
	if (!isnull)
		o->namespace = TextDatumGetCString(d);
}

text *
query_arg(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the query must not be null")));
	return PG_GETARG_TEXT_PP(argno);
}

HeapTupleHeader
options_arg(FunctionCallInfo fcinfo, int argno)
{
	return PG_ARGISNULL(argno) ? NULL : PG_GETARG_HEAPTUPLEHEADER(argno);
}

/* cached_query[_with] as a set-returning function with a column list. */
static Datum
cached_query_srf(FunctionCallInfo fcinfo, bool with_options)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int qarg = with_options ? 1 : 0;
	CallParams params;
	CallOptions opts;
	text *query = query_arg(fcinfo, qarg);

	parse_options(with_options ? options_arg(fcinfo, 0) : NULL, &opts);
	collect_params(fcinfo, qarg + 1, &params);

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		!(rsinfo->allowedModes & SFRM_Materialize) ||
		rsinfo->expectedDesc == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cached_query must be called in FROM with a column definition list"),
				 errhint("Write SELECT * FROM cached_query('...') AS t(col type, ...).")));

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	(void) cached_query_common(query, &params, &opts, rsinfo->setDesc,
							   rsinfo->setResult);
	return (Datum) 0;
}

/* cached_query_json[_with]: the result as a jsonb array of objects. */
static Datum
cached_query_json_common(FunctionCallInfo fcinfo, bool with_options)
{
	int qarg = with_options ? 1 : 0;
	CallParams params;
	CallOptions opts;
	text *query = query_arg(fcinfo, qarg);
	Tuplestorestate *ts;
	TupleDesc desc;
	TupleTableSlot *slot;
	StringInfoData json;
	bool first = true;
	MemoryContext rowcxt;

	parse_options(with_options ? options_arg(fcinfo, 0) : NULL, &opts);
	collect_params(fcinfo, qarg + 1, &params);

	ts = tuplestore_begin_heap(false, false, work_mem);
	desc = CreateTupleDescCopy(cached_query_common(query, &params, &opts,
												   NULL, ts));
	BlessTupleDesc(desc);
	slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);

	initStringInfo(&json);
	appendStringInfoChar(&json, '[');
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "cache_ext json row",
								   ALLOCSET_DEFAULT_SIZES);
	while (tuplestore_gettupleslot(ts, true, false, slot))
	{
		MemoryContext old;
		HeapTuple tup;
		Datum row;
		text *js;

		/* a large result: cancellable, and only the text is kept per row */
		CHECK_FOR_INTERRUPTS();
		old = MemoryContextSwitchTo(rowcxt);
		tup = ExecCopySlotHeapTuple(slot);
		row = heap_copy_tuple_as_datum(tup, desc);
		js = DatumGetTextPP(DirectFunctionCall1(row_to_json, row));
		MemoryContextSwitchTo(old);
		if (!first)
			appendStringInfoChar(&json, ',');
		first = false;
		appendBinaryStringInfo(&json, VARDATA_ANY(js), VARSIZE_ANY_EXHDR(js));
		MemoryContextReset(rowcxt);
	}
	MemoryContextDelete(rowcxt);
	appendStringInfoChar(&json, ']');
	ExecDropSingleTupleTableSlot(slot);
	tuplestore_end(ts);

	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(json.data)));
}

PG_FUNCTION_INFO_V1(cached_query);

Datum
cached_query(PG_FUNCTION_ARGS)
{
	return cached_query_srf(fcinfo, false);
}

PG_FUNCTION_INFO_V1(cached_query_with);

Datum
cached_query_with(PG_FUNCTION_ARGS)
{
	return cached_query_srf(fcinfo, true);
}

PG_FUNCTION_INFO_V1(cached_query_json);

Datum
cached_query_json(PG_FUNCTION_ARGS)
{
	return cached_query_json_common(fcinfo, false);
}

PG_FUNCTION_INFO_V1(cached_query_json_with);

Datum
cached_query_json_with(PG_FUNCTION_ARGS)
{
	return cached_query_json_common(fcinfo, true);
}

PG_FUNCTION_INFO_V1(cache_status);

Datum
cache_status(PG_FUNCTION_ARGS)
{
	char *status = CallLastStatus();

	if (status == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(status));
}
