/*-------------------------------------------------------------------------
 *
 * deps_internal.h
 *	  What the files of the plan analysis share: deps.c (the plan walker)
 *	  and deps_expr.c (the checks of expressions, functions, operators and
 *	  types).  Nothing else includes this header; the rest of the extension
 *	  uses cache_ext.h's AnalyzePlannedStmt and FindKeyEqualities.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_DEPS_INTERNAL_H
#define CACHE_EXT_DEPS_INTERNAL_H

#include "postgres.h"

#include "nodes/plannodes.h"

#include "cache_ext.h"

/* deeper type or domain nesting than this is refused, not followed */
#define MAX_NESTING 16

typedef struct DepsWalk
{
	QueryDeps *deps;
	bool acl;			/* the executor checks EXECUTE on the functions
								 * of the expression being walked */
	int depth;			/* of type and domain recursion */
	Node *coldef_call;	/* a FROM-clause call with a column definition
								 * list ... */
	List *coldef_types; /* ... and the types of that list */
} DepsWalk;

/* how check_operators judges a list of operators */
#define OPS_SORT   0
#define OPS_EQUAL  1
#define OPS_HASHED 2


/* deps_expr.c */
extern void not_cacheable(DepsWalk *w, char *reason);
extern void check_function(DepsWalk *w, Oid funcid, List *args, Oid resulttype, bool acl);
extern bool operator_types(Oid opno, Oid *lefttype, Oid *righttype);
extern void check_sort_operator(DepsWalk *w, Oid opno);
extern void check_equality_operator(DepsWalk *w, Oid opno, bool hashed);
extern void check_operators(DepsWalk *w, int n, Oid *opnos, int how);
extern void check_type_io(DepsWalk *w, Oid typid, bool input);
extern void check_opexpr(DepsWalk *w, Oid opno, Oid opfuncid, List *args, Oid resulttype);
extern void walk_exprs(void *node, DepsWalk *w);

#endif /* CACHE_EXT_DEPS_INTERNAL_H */
