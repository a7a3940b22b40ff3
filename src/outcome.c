/*-------------------------------------------------------------------------
 *
 * outcome.c
 *	  Rendering a call's outcome (outcome.h) as cache_status() shows it,
 *	  and keeping the last one.
 *
 * State (backend-local): the last call's outcome, its strings copied into
 * a memory context of its own, so that no status is ever truncated.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "utils/memutils.h"

#include "outcome.h"

static CallOutcome last;
static bool last_valid = false;
static MemoryContext last_cxt = NULL;

CallReason *
MakeReason(QueryStatsReason kind, const char *detail)
{
	CallReason *r = palloc(sizeof(CallReason));

	r->kind = kind;
	r->detail = detail;
	return r;
}

/* Append note to b, separated from what is there by "; ". */
static void
add_note(StringInfo b, const char *fmt, const char *arg)
{
	if (b->len > 0)
		appendStringInfoString(b, "; ");
	appendStringInfo(b, fmt, arg);
}

char *
OutcomeRender(const CallOutcome *o)
{
	StringInfoData notes;

	if (o->text != NULL)
		return pstrdup(o->text);
	switch (o->status)
	{
		case CALL_BYPASS:
			return psprintf("BYPASS: %s", o->bypass.detail);
		case CALL_HIT:
			if (o->waited)
				return o->ttl_only ?
					psprintf("HIT (after waiting for a concurrent fill; ttl-only: %s)", o->ttl_only) :
					pstrdup("HIT (after waiting for a concurrent fill)");
			if (o->ttl_only)
				return psprintf("HIT (%sttl-only: %s)",
								o->local ? "local; " : "", o->ttl_only);
			return pstrdup(o->local ? "HIT (local)" : "HIT");
		case CALL_MISS:
			break;
	}
	if (o->verify_mismatch)
		return pstrdup("MISS (cache_ext.verify_rate: the stored result differed from the direct one and was deleted)");
	initStringInfo(&notes);
	if (o->waited)
		add_note(&notes, "%s", "waited for a concurrent fill");
	if (o->early_refresh)
		add_note(&notes, "%s", "early refresh");
	if (o->invalidated)
		add_note(&notes, "%s", "invalidated");
	else if (o->corrupt)
		add_note(&notes, "corrupt entry replaced: %s", o->corrupt);
	if (o->not_stored)
		add_note(&notes, "not stored: %s", o->not_stored);
	if (o->ttl_only)
		add_note(&notes, "ttl-only: %s", o->ttl_only);
	if (notes.len == 0)
		return pstrdup("MISS");
	return psprintf("MISS (%s)", notes.data);
}

static const char *
copy_or_null(const char *s)
{
	return s ? pstrdup(s) : NULL;
}

void
OutcomeSetLast(const CallOutcome *o)
{
	MemoryContext old;

	if (last_cxt == NULL)
		last_cxt = AllocSetContextCreate(TopMemoryContext,
										 "cache_ext last outcome",
										 ALLOCSET_SMALL_SIZES);
	MemoryContextReset(last_cxt);
	old = MemoryContextSwitchTo(last_cxt);
	last = *o;
	last.bypass.detail = copy_or_null(o->bypass.detail);
	last.ttl_only = copy_or_null(o->ttl_only);
	last.corrupt = copy_or_null(o->corrupt);
	last.not_stored = copy_or_null(o->not_stored);
	last.text = copy_or_null(o->text);
	MemoryContextSwitchTo(old);
	last_valid = true;
}

void
OutcomeClearLast(void)
{
	last_valid = false;
}

const CallOutcome *
OutcomeLast(void)
{
	return last_valid ? &last : NULL;
}
