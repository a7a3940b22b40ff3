/*-------------------------------------------------------------------------
 *
 * rules_internal.h
 *	  What rules_exec.c (the executor hooks) and rules_serve.c (serving a
 *	  statement) share.  Nothing else includes it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_RULES_INTERNAL_H
#define CACHE_EXT_RULES_INTERNAL_H

#include "postgres.h"

#include "executor/execdesc.h"

#include "rules.h"

/*
 * How deep in utility statements, planning and execution this backend is
 * (only level 0 is served).  Backend-local, rules_exec.c's.
 */
extern int RulesNesting;

/* rules_serve.c */
extern void ServeStart(QueryDesc *qd, RuleDef *rule, bool prepared, bool cursor,
					   char *text);
extern bool ServeRun(QueryDesc *qd, ScanDirection direction, uint64 count);
extern void ServeEnd(QueryDesc *qd);

#endif /* CACHE_EXT_RULES_INTERNAL_H */
