/*-------------------------------------------------------------------------
 *
 * warm.c
 *	  Warming: cache_warm() and cache_warm_with() make one cached_query
 *	  call and return its status instead of its rows; cache_warm_list()
 *	  warms a list of queries, each in its own subtransaction, with
 *	  progress NOTICEs and a summary (docs/warming.md).
 *
 * A warming call is a cached_query call: the same analysis, privileges,
 * bypass rules and key, under the caller's role, search_path and
 * settings.  So it stores nothing a normal call would not, and it warms
 * the entry that the same call made the same way will find.
 *
 * No state of its own.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/resowner.h"
#include "utils/tuplestore.h"

#include "cache_ext.h"
#include "call.h"

/* seconds between two progress NOTICEs of cache_warm_list */
#define WARM_PROGRESS_SECONDS 5

/* What became of the queries of one cache_warm_list call. */
typedef struct WarmTally
{
	int done;
	int stored;
	int cached;
	int bypassed;
	int not_stored;
	int failed;
} WarmTally;

/*
 * Make the call, drop its rows, and return its status (palloc'd; a call
 * that records none, as none does today, says so).
 */
static char *
warm_call(text *query, const CallParams *params, const CallOptions *opts)
{
	Tuplestorestate *ts = tuplestore_begin_heap(false, false, work_mem);
	char *status;

	(void) cached_query_common(query, params, opts, NULL, ts);
	tuplestore_end(ts);
	status = CallLastStatus();
	return status ? status : pstrdup("no status");
}

/* cache_warm[_with](...): the status of one call. */
static Datum
warm_one(FunctionCallInfo fcinfo, bool with_options)
{
	int qarg = with_options ? 1 : 0;
	CallParams params;
	CallOptions opts;
	text *query = query_arg(fcinfo, qarg);

	parse_options(with_options ? options_arg(fcinfo, 0) : NULL, &opts);
	collect_params(fcinfo, qarg + 1, &params);
	PG_RETURN_TEXT_P(cstring_to_text(warm_call(query, &params, &opts)));
}

PG_FUNCTION_INFO_V1(cache_warm);

Datum
cache_warm(PG_FUNCTION_ARGS)
{
	return warm_one(fcinfo, false);
}

PG_FUNCTION_INFO_V1(cache_warm_with);

Datum
cache_warm_with(PG_FUNCTION_ARGS)
{
	return warm_one(fcinfo, true);
}

/* Count a status in the tally. */
static void
tally_status(WarmTally *t, const char *status)
{
	if (strncmp(status, "HIT", 3) == 0)
		t->cached++;
	else if (strncmp(status, "MISS", 4) == 0)
	{
		if (strstr(status, "not stored") != NULL)
			t->not_stored++;
		else
			t->stored++;
	}
	else if (strncmp(status, "BYPASS", 6) == 0)
		t->bypassed++;
	else
		t->failed++;
}

static void
report_tally(const WarmTally *t, int total, bool final)
{
	ereport(NOTICE,
			(errmsg("cache_warm_list: %s%d of %d queries: %d stored, %d already cached, %d not stored, %d bypassed, %d failed or skipped",
					final ? "done, " : "", t->done, total, t->stored,
					t->cached, t->not_stored, t->bypassed, t->failed)));
}

/*
 * Warm one query of a list in a subtransaction: its status, or
 * "ERROR: ..." when it failed (a query that needs parameters is
 * "skipped: ...").  A cancel or a shutdown is not a failure of the query:
 * it ends the whole call.
 */
static char *
warm_in_subxact(text *query, const CallOptions *opts)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	CallParams none = {0};
	char *status = NULL;

	/* as every caller makes them: types never NULL (memcpy of 0 bytes) */
	none.types = palloc0(sizeof(Oid));
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		status = warm_call(query, &none, opts);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData *e;

		MemoryContextSwitchTo(cxt);
		e = CopyErrorData();
		FlushErrorState();
		/* closed before any rethrow: the caller's transaction goes on */
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (e->sqlerrcode == ERRCODE_QUERY_CANCELED ||
			e->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN)
			ReThrowError(e);
		if (e->sqlerrcode == ERRCODE_UNDEFINED_PARAMETER)
			status = psprintf("skipped: the query takes parameters (%s)", e->message);
		else
			status = psprintf("ERROR: %s", e->message);
		FreeErrorData(e);
	}
	PG_END_TRY();
	return status;
}

PG_FUNCTION_INFO_V1(cache_warm_list);

/*
 * cache_warm_list(queries text[], options cache_options DEFAULT NULL)
 * RETURNS TABLE (query text, status text): each query in order, one row
 * each; a NOTICE every WARM_PROGRESS_SECONDS and one at the end.
 */
Datum
cache_warm_list(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ArrayType *arr;
	Datum *queries;
	bool *nulls;
	int n;
	CallOptions opts;
	WarmTally tally = {0};
	instr_time last, now;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the list of queries must not be null")));
	arr = PG_GETARG_ARRAYTYPE_P(0);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("the list of queries must be a one-dimensional array")));
	parse_options(PG_NARGS() > 1 ? options_arg(fcinfo, 1) : NULL, &opts);
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT,
					  &queries, &nulls, &n);
	InitMaterializedSRF(fcinfo, 0);

	INSTR_TIME_SET_CURRENT(last);
	for (int i = 0; i < n; i++)
	{
		Datum values[2];
		bool isnull[2] = {false, false};
		char *status;

		CHECK_FOR_INTERRUPTS();
		if (nulls[i])
		{
			status = pstrdup("skipped: null");
			isnull[0] = true;
			tally.failed++;
		}
		else
		{
			status = warm_in_subxact(DatumGetTextPP(queries[i]), &opts);
			tally_status(&tally, status);
			values[0] = queries[i];
		}
		values[1] = CStringGetTextDatum(status);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, isnull);
		tally.done++;

		INSTR_TIME_SET_CURRENT(now);
		INSTR_TIME_SUBTRACT(now, last);
		if (INSTR_TIME_GET_DOUBLE(now) >= WARM_PROGRESS_SECONDS && i + 1 < n)
		{
			report_tally(&tally, n, false);
			INSTR_TIME_SET_CURRENT(last);
		}
	}
	report_tally(&tally, n, true);
	return (Datum) 0;
}
