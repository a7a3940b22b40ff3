/*-------------------------------------------------------------------------
 *
 * store_values.h
 *	  The store operations application values (values.c) need beyond
 *	  store.h's: reading generations alone, and deleting a value with a
 *	  count.  A value's lookup is store.h's StoreLookupEntry, its write
 *	  StoreInitGenerations and StorePutEntry, a namespace's bump StoreBump.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_STORE_VALUES_H
#define CACHE_EXT_STORE_VALUES_H

#include "store/store.h"

/*
 * MGET keys[0..n) in one round trip.  vals/lens (n each, zeroed by the
 * caller) receive the values that are usable (palloc'd).  STORE_OK with
 * *state, or STORE_UNAVAILABLE (the client recorded why) or STORE_REFUSED
 * (reported to the client: the breaker opens) or STORE_BAD_REPLY.
 */
extern StoreStatus StoreReadGenerations(char *const *keys, int n,
										char **vals, size_t *lens,
										StoreGensState *state);

/*
 * UNLINK one value: STORE_OK with *deleted (whether Redis held the key),
 * or why not.  Checks StoreUsable first.
 */
extern StoreStatus StoreValueDelete(const char *rkey, bool *deleted);

#endif /* CACHE_EXT_STORE_VALUES_H */
