/*-------------------------------------------------------------------------
 *
 * auth.c
 *	  The password a connection sends (AUTH): from a password file, read
 *	  at every connection so that a rotated password applies from the next
 *	  one, or from the URL.  Split from client.c (0.10).  No state.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>

#include "redis/client_internal.h"

char *cache_ext_redis_password_file = NULL;

/*
 * The first line of the password file named by setting (palloc'd), or
 * NULL with the failure noted.  The file must be readable by the server's
 * user only.  It is read at every connection, so a rotated password
 * applies from the next one.
 */
static char *
read_password_file(const char *path, const char *setting)
{
	struct stat st;
	FILE *f;
	char line[1024];
	size_t len;

	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
	{
		ClientSetFailure(REDIS_FAIL_CONFIG, "could not read %s: %s", setting,
						 errno ? strerror(errno) : "not a regular file");
		return NULL;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO))
	{
		ClientSetFailure(REDIS_FAIL_CONFIG,
						 "%s has group or world access; it must be readable by the server's user only",
						 setting);
		return NULL;
	}
	f = fopen(path, "r");
	if (f == NULL || fgets(line, sizeof(line), f) == NULL)
	{
		ClientSetFailure(REDIS_FAIL_CONFIG, "could not read %s: %s", setting,
						 f ? "it is empty" : strerror(errno));
		if (f)
			fclose(f);
		return NULL;
	}
	fclose(f);
	len = strcspn(line, "\r\n");
	line[len] = '\0';
	if (len == 0)
	{
		ClientSetFailure(REDIS_FAIL_CONFIG,
						 "could not read %s: its first line is empty", setting);
		return NULL;
	}
	{
		char *pw = pstrdup(line);

		explicit_bzero(line, sizeof(line));
		return pw;
	}
}

/* ClientAuthCommand (client_internal.h) */
bool
ClientAuthCommand(RedisCommand *cmds, int *n, const char *user,
				  const char *url_password, const char *password_file,
				  const char *setting, char **password)
{
	char *pw = NULL;

	*password = NULL;
	/* a password in a file is never in a setting, so never in the log */
	if (password_file && password_file[0])
	{
		pw = read_password_file(password_file, setting);
		if (pw == NULL)
			return false;
	}
	else if (url_password)
		pw = pstrdup(url_password);
	if (pw == NULL)
		return true;
	RedisCommandInit(&cmds[*n], "AUTH");
	if (user)
		RedisCommandArgStr(&cmds[*n], user);
	RedisCommandArgStr(&cmds[*n], pw);
	(*n)++;
	*password = pw;
	return true;
}

/*
 * ClientMasterHandshake (client_internal.h).  The replies are palloc'd,
 * never on the stack: a cancel mid-exchange frees what they hold later.
 */
bool
ClientMasterHandshake(RedisConn *c, RedisCommand *cmds, int n, char *password,
					  TimestampTz deadline, char *run_id, int *is_master,
					  bool *role_refused)
{
	redisReply **replies = palloc0(sizeof(redisReply *) * (n + 2));
	bool ok;

	RedisCommandInit(&cmds[n++], "ROLE");
	RedisCommandInit(&cmds[n], "INFO");
	RedisCommandArgStr(&cmds[n++], "server");
	ok = ClientRun(c, n, cmds, replies, 2 * 65536, deadline);
	if (password)
		explicit_bzero(password, strlen(password));
	if (!ok)
	{
		ClientClose(c);
		return false;
	}
	for (int i = 0; i < n - 2 && ok; i++)
		if (ClientErrorReply(replies[i], cmds[i].argv[0]))
			ok = false;
	*is_master = ok ? RespRoleIsMaster(replies[n - 2]) : 0;
	*role_refused = replies[n - 2]->type == REDIS_REPLY_ERROR;
	if (ok && *is_master == 1)
		(void) RespRunId(replies[n - 1], run_id);
	RedisFreeReplies(n, replies);
	if (!ok)
		ClientClose(c);
	return ok;
}
