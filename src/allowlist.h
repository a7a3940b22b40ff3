/*-------------------------------------------------------------------------
 *
 * allowlist.h
 *	  The reviewed lists of built-in functions deps.c trusts or refuses.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_ALLOWLIST_H
#define CACHE_EXT_ALLOWLIST_H

/* what else must hold for a call of an allowed STABLE built-in */
typedef enum AllowKind
{
	ALLOW_PLAIN,	   /* nothing: arguments and keyed settings only */
	ALLOW_ARG_OUTPUT,  /* the output functions of its arguments' types
								 * (element, column, subtype) must be cacheable */
	ALLOW_RESULT_INPUT /* the input functions of its result type's
								 * parts must be cacheable */
} AllowKind;

typedef struct AllowEntry
{
	Oid funcid;
	AllowKind kind;
	const char *note; /* what the result depends on */
} AllowEntry;

typedef struct DenyEntry
{
	Oid funcid;
	const char *note; /* what it reads that nothing invalidates */
} DenyEntry;

/* NULL if funcid is not on the list */
extern const AllowEntry *AllowListFind(Oid funcid);
extern const DenyEntry *DenyListFind(Oid funcid);

#endif /* CACHE_EXT_ALLOWLIST_H */
