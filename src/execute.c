/*-------------------------------------------------------------------------
 *
 * execute.c
 *	  Running a cached_query's statement: through the executor with a fresh
 *	  snapshot, into the caller's tuplestore and, on a miss, into the entry
 *	  being encoded (a DestReceiver of our own).  An error raised while a
 *	  value is encoded is caught in a subtransaction and the statement runs
 *	  again unstored; the query's own errors are raised as they were.
 *
 * State: encoding_row (backend-local), set while a row is being encoded.
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
#include "subxact.h"

/* Receives the executor's rows: into the tuplestore, and into the entry. */
typedef struct CacheDest
{
	DestReceiver pub;
	Tuplestorestate *ts;
	EntryWriter *writer; /* NULL when the result is not stored */
} CacheDest;

/* set while a row is being encoded: an error then is the encoder's */
static bool encoding_row = false;

static bool
cachedest_receive(TupleTableSlot *slot, DestReceiver *self)
{
	CacheDest *d = (CacheDest *) self;

	tuplestore_puttupleslot(d->ts, slot);
	if (d->writer)
	{
		encoding_row = true;
		EntryWriterAddRow(d->writer, slot);
		encoding_row = false;
	}
	return true;
}

static void
cachedest_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
}

static void
cachedest_noop(DestReceiver *self)
{
}

/*
 * Run the prepared query with its parameters, sending every row to ts and,
 * when writer is not NULL, to writer.  The query sees a fresh snapshot and
 * the transaction's earlier commands, as a statement of a volatile function
 * does.
 */
static void
run_plan(PreparedQuery *pq, const CallParams *params, Tuplestorestate *ts,
		 EntryWriter *writer)
{
	ParamListInfo pli = NULL;
	CachedPlan *cplan;
	PlannedStmt *stmt;
	QueryDesc *qd;
	CacheDest dest;

	if (params->n > 0)
	{
		pli = makeParamList(params->n);
		for (int i = 0; i < params->n; i++)
		{
			pli->params[i].value = params->values[i];
			pli->params[i].isnull = params->nulls[i];
			pli->params[i].pflags = PARAM_FLAG_CONST;
			pli->params[i].ptype = params->types[i];
		}
	}

	memset(&dest, 0, sizeof(dest));
	dest.pub.receiveSlot = cachedest_receive;
	dest.pub.rStartup = cachedest_startup;
	dest.pub.rShutdown = cachedest_noop;
	dest.pub.rDestroy = cachedest_noop;
	dest.pub.mydest = DestNone;
	dest.ts = ts;
	dest.writer = writer;

	CommandCounterIncrement();
	PushActiveSnapshot(GetTransactionSnapshot());

	cplan = GetCachedPlan(pq->plansource, pli, CurrentResourceOwner, NULL);
	stmt = linitial_node(PlannedStmt, cplan->stmt_list);
	qd = CreateQueryDesc(stmt, pq->plansource->query_string,
						 GetActiveSnapshot(), InvalidSnapshot,
						 &dest.pub, pli, NULL, 0);
	ExecutorStart(qd, 0);
	ExecutorRun(qd, ForwardScanDirection, 0, true);
	ExecutorFinish(qd);
	ExecutorEnd(qd);
	FreeQueryDesc(qd);
	ReleaseCachedPlan(cplan, CurrentResourceOwner);

	PopActiveSnapshot();
}

/* run_plan's arguments, for RunInSubtransaction */
typedef struct RunPlanArgs
{
	PreparedQuery *pq;
	const CallParams *params;
	Tuplestorestate *ts;
	EntryWriter *writer;
} RunPlanArgs;

static void
run_plan_fn(void *arg)
{
	RunPlanArgs *a = (RunPlanArgs *) arg;

	run_plan(a->pq, a->params, a->ts, a->writer);
}

/*
 * Run the query (run_plan).  With a writer, in a subtransaction and into a
 * tuplestore of its own: a value its type cannot encode (an output or send
 * function that raises, as for a malformed oidvector a relabelling cast
 * made) must not fail a statement that works without the cache.  Then the
 * query runs again without the writer, and the reason it is not stored is
 * returned; an error of the query itself is raised as it was.  Returns
 * NULL when nothing went wrong.
 */
char *
run_query(PreparedQuery *pq, const CallParams *params, Tuplestorestate *ts,
		  EntryWriter *writer)
{
	Tuplestorestate *mine;
	RunPlanArgs a;
	ErrorData *edata;
	char *problem;

	if (writer == NULL)
	{
		run_plan(pq, params, ts, NULL);
		return NULL;
	}
	if (IsInParallelMode())
	{
		/* no subtransaction here: run it, store nothing */
		run_plan(pq, params, ts, NULL);
		return pstrdup("inside a parallel operation");
	}
	mine = tuplestore_begin_heap(false, false, work_mem);
	encoding_row = false;
	a.pq = pq;
	a.params = params;
	a.ts = mine;
	a.writer = writer;
	PG_TRY();
	{
		edata = RunInSubtransaction(run_plan_fn, &a);
	}
	PG_CATCH();
	{
		/* a cancel: whatever was encoding is over */
		encoding_row = false;
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (edata != NULL)
	{
		bool in_encoder = encoding_row;

		encoding_row = false;
		/* the query's own error: not a property of a value */
		if (!in_encoder)
			ReThrowError(edata);
		problem = psprintf("a value could not be encoded (%s)", edata->message);
		FreeErrorData(edata);
		/* its spill files, if any, went with the subtransaction */
		run_plan(pq, params, ts, NULL);
		return problem;
	}
	{
		TupleTableSlot *slot = MakeSingleTupleTableSlot(pq->resultdesc, &TTSOpsMinimalTuple);

		while (tuplestore_gettupleslot(mine, true, false, slot))
			tuplestore_puttupleslot(ts, slot);
		ExecDropSingleTupleTableSlot(slot);
		tuplestore_end(mine);
	}
	return NULL;
}

/*
 * The rows of ts as a sorted array of their text forms (each column's
 * output function, length-prefixed, NULL marked), for comparing two results
 * as multisets.  ts is rewound afterwards.
 */
char **
rows_as_sorted_text(Tuplestorestate *ts, TupleDesc desc, int64 *nrows)
{
	TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	FmgrInfo *out = palloc(sizeof(FmgrInfo) * Max(desc->natts, 1));
	int64 n = tuplestore_tuple_count(ts);
	char **rows = palloc(sizeof(char *) * Max(n, 1));
	int64 i = 0;

	for (int a = 0; a < desc->natts; a++)
	{
		Oid fn;
		bool isvarlena;

		getTypeOutputInfo(TupleDescAttr(desc, a)->atttypid, &fn, &isvarlena);
		fmgr_info(fn, &out[a]);
	}
	tuplestore_rescan(ts);
	while (i < n && tuplestore_gettupleslot(ts, true, false, slot))
	{
		StringInfoData b;

		initStringInfo(&b);
		slot_getallattrs(slot);
		for (int a = 0; a < desc->natts; a++)
		{
			if (slot->tts_isnull[a])
				appendStringInfoString(&b, "N;");
			else
			{
				char *v = OutputFunctionCall(&out[a], slot->tts_values[a]);

				appendStringInfo(&b, "%zu:%s;", strlen(v), v);
			}
		}
		rows[i++] = b.data;
	}
	tuplestore_rescan(ts);
	ExecDropSingleTupleTableSlot(slot);
	qsort(rows, i, sizeof(char *), pg_qsort_strcmp);
	*nrows = i;
	return rows;
}
