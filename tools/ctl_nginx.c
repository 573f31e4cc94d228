/* SPDX-License-Identifier: MIT */
/*
 * bulwarkctl nginx-conf [--output FILE] [--template-dir DIR]: the nginx
 * site of this host, rendered from the config. The template is the dev
 * stack's own, nginx/bulwark.conf.in (installed in PKGDATADIR/nginx): only
 * its lines between "# bulwark-site: begin" and "# bulwark-site: end" (the
 * http-level part: maps, zones, upstreams, the server), each @VAR@ taken
 * from a config key (docs/operations.md, "The nginx site"), and each
 * `include @NGINX_DIR@/x.conf;` replaced by the rendered snippet, so the
 * site is one file. With --output the file is written beside FILE and
 * renamed over it (0644), else the site goes to stdout.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "ctl.h"

#ifndef BW_PKGDATADIR
#define BW_PKGDATADIR "/usr/share/bulwark"
#endif

#ifndef BW_VERSION
#define BW_VERSION "unknown"
#endif

#define CTL_NGINX_MAX	     (1024 * 1024) /* the rendered site */
#define CTL_NGINX_LINE	     4096
#define CTL_NGINX_DEPTH	     3 /* snippet includes snippet */
#define CTL_NGINX_BEGIN	     "# bulwark-site: begin"
#define CTL_NGINX_END	     "# bulwark-site: end"
#define CTL_NGINX_INC_PREFIX "include @NGINX_DIR@/"

struct ctl_nginx_var {
	const char *name; /* "@SOCKET@" */
	const char *value;
	/*
	 * An upstream's socket: the template writes "unix:@SOCKET@"; a
	 * host:port value (no leading '/') takes the "unix:" away.
	 */
	int upstream;
};

/*
 * Appends line with each @VAR@ of vars replaced; an @NAME@ that is not in
 * the table is an error (a template newer than this bulwarkctl). Returns
 * 0, or 1 after a message.
 */
static int
ctl_nginx_subst(const char *line, const struct ctl_nginx_var *vars,
    size_t nvars, struct buf *out, const char *where)
{
	const char *p = line, *at, *end;
	size_t	    i, n;

	while ((at = strchr(p, '@')) != NULL) {
		end = strchr(at + 1, '@');
		n = end != NULL ? (size_t)(end - at) + 1 : 0;
		for (i = 0; n > 2 && i < nvars; i++)
			if (strlen(vars[i].name) == n &&
			    strncmp(at, vars[i].name, n) == 0)
				break;
		if (n <= 2 ||
		    strspn(at + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") != n - 2) {
			/* A lone '@' ("location @e400"): copied as is. */
			if (buf_add(out, p, (size_t)(at - p) + 1) != BW_OK)
				return ctl_fail("nginx-conf", BW_ETOOBIG);
			p = at + 1;
			continue;
		}
		if (i == nvars) {
			fprintf(stderr,
			    "bulwarkctl: nginx-conf: %s: unknown template "
			    "variable %.*s\n",
			    where, (int)n, at);
			return 1;
		}
		if (buf_add(out, p, (size_t)(at - p)) != BW_OK)
			return ctl_fail("nginx-conf", BW_ETOOBIG);
		if (vars[i].upstream && vars[i].value[0] != '/' &&
		    out->len >= 5 &&
		    memcmp(out->p + out->len - 5, "unix:", 5) == 0) {
			out->len -= 5;
			out->p[out->len] = '\0';
		}
		if (buf_add(out, vars[i].value, strlen(vars[i].value)) != BW_OK)
			return ctl_fail("nginx-conf", BW_ETOOBIG);
		p = at + n;
	}
	if (buf_add(out, p, strlen(p)) != BW_OK)
		return ctl_fail("nginx-conf", BW_ETOOBIG);
	return 0;
}

/*
 * Renders the lines of dir/name into out: all of them (a snippet, whole
 * is 0), or only the site part of the template (whole is 1 for the
 * template: between the markers). Snippet includes are rendered in place
 * with the include's indent. Returns 0 or an exit status.
 */
static int
ctl_nginx_file(const char *dir, const char *name, int site, const char *indent,
    const struct ctl_nginx_var *vars, size_t nvars, struct buf *out, int depth)
{
	char	    path[1024], line[CTL_NGINX_LINE], ind[64], inc[256];
	char	    where[320];
	const char *t;
	FILE	   *f;
	int	    in = !site, seen = 0, rc = 0, lineno = 0;
	size_t	    k;

	if (depth > CTL_NGINX_DEPTH) {
		fprintf(stderr,
		    "bulwarkctl: nginx-conf: %s: includes nest "
		    "too deep\n",
		    name);
		return 1;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    sizeof(path)) {
		fprintf(stderr, "bulwarkctl: nginx-conf: path too long\n");
		return 2;
	}
	f = fopen(path, "re");
	if (f == NULL) {
		fprintf(stderr, "bulwarkctl: nginx-conf: %s: %s\n", path,
		    strerror(errno));
		return 1;
	}
	while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		t = line + strspn(line, " \t");
		if (site &&
		    strncmp(t, CTL_NGINX_BEGIN, strlen(CTL_NGINX_BEGIN)) == 0) {
			in = seen = 1;
			continue;
		}
		if (site &&
		    strncmp(t, CTL_NGINX_END, strlen(CTL_NGINX_END)) == 0) {
			in = 0;
			continue;
		}
		if (!in)
			continue;
		/* A snippet's own comments (SPDX, what it is) are left out. */
		if (!site && *t == '#')
			continue;
		if (strncmp(t, CTL_NGINX_INC_PREFIX,
			strlen(CTL_NGINX_INC_PREFIX)) == 0) {
			k = strcspn(t + strlen(CTL_NGINX_INC_PREFIX), ";/\n");
			if (k == 0 || k >= sizeof(inc) ||
			    t[strlen(CTL_NGINX_INC_PREFIX) + k] != ';') {
				fprintf(stderr,
				    "bulwarkctl: nginx-conf: %s:%d: bad "
				    "include\n",
				    path, lineno);
				rc = 1;
				break;
			}
			memcpy(inc, t + strlen(CTL_NGINX_INC_PREFIX), k);
			inc[k] = '\0';
			snprintf(ind, sizeof(ind), "%s%.*s", indent,
			    (int)(t - line), line);
			rc = ctl_nginx_file(dir, inc, 0, ind, vars, nvars, out,
			    depth + 1);
			continue;
		}
		if (*t != '\n' && *t != '\0' &&
		    buf_add(out, indent, strlen(indent)) != BW_OK) {
			rc = ctl_fail("nginx-conf", BW_ETOOBIG);
			break;
		}
		snprintf(where, sizeof(where), "%s:%d", name, lineno);
		rc = ctl_nginx_subst(line, vars, nvars, out, where);
	}
	fclose(f);
	if (rc == 0 && site && !seen) {
		fprintf(stderr, "bulwarkctl: nginx-conf: %s: no \"%s\" line\n",
		    path, CTL_NGINX_BEGIN);
		rc = 1;
	}
	return rc;
}

/* Writes b to path through a temporary file and rename(). 0 or 1. */
static int
ctl_nginx_write(const char *path, const struct buf *b)
{
	char  tmp[1100];
	FILE *f;
	int   ok;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path,
		(long)getpid()) >= sizeof(tmp)) {
		fprintf(stderr, "bulwarkctl: nginx-conf: path too long\n");
		return 1;
	}
	f = fopen(tmp, "we");
	if (f == NULL) {
		fprintf(stderr, "bulwarkctl: nginx-conf: %s: %s\n", tmp,
		    strerror(errno));
		return 1;
	}
	ok = fwrite(b->p, 1, b->len, f) == b->len;
	ok = fchmod(fileno(f), 0644) == 0 && ok;
	ok = fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
	ok = fclose(f) == 0 && ok;
	if (!ok || rename(tmp, path) != 0) {
		fprintf(stderr, "bulwarkctl: nginx-conf: %s: %s\n", path,
		    strerror(errno));
		(void)unlink(tmp);
		return 1;
	}
	return 0;
}

int
ctl_nginx_conf(struct ctl *c, int argc, char **argv)
{
	static const char *const names[] = { "output", "template-dir" };
	const char		*v[2] = { NULL, NULL };
	char			 burst[16], conn[16], sock[1024], chat[1024];
	struct buf		 out;
	const char		*dir;
	int			 rc;

	if ((rc = ctl_flags(argc, argv, names, v, 2)) != 0)
		return rc;
	dir = v[1] != NULL ? v[1] : BW_PKGDATADIR "/nginx";
	if (strcmp(c->cfg.fcgi_chat_socket, "none") == 0) {
		/* No chat pool: the api pool serves the chat routes too. */
		snprintf(chat, sizeof(chat), "%s", c->cfg.fcgi_socket);
	} else
		snprintf(chat, sizeof(chat), "%s", c->cfg.fcgi_chat_socket);
	snprintf(sock, sizeof(sock), "%s", c->cfg.fcgi_socket);
	snprintf(burst, sizeof(burst), "%d", c->cfg.nginx_burst);
	snprintf(conn, sizeof(conn), "%d", c->cfg.nginx_conn);
	{
		const struct ctl_nginx_var vars[] = {
			{ "@SERVER_NAME@", c->cfg.nginx_server_name, 0 },
			{ "@LISTEN@", c->cfg.nginx_listen, 0 },
			{ "@TLS_CERT@", c->cfg.nginx_tls_certificate, 0 },
			{ "@TLS_KEY@", c->cfg.nginx_tls_certificate_key, 0 },
			{ "@ACCESS_LOG@", c->cfg.nginx_access_log, 0 },
			{ "@RATE@", c->cfg.nginx_rate, 0 },
			{ "@BURST@", burst, 0 },
			{ "@CONN@", conn, 0 },
			{ "@SOCKET@", sock, 1 },
			{ "@CHAT_SOCKET@", chat, 1 },
			{ "@STORAGE_DIR@", c->cfg.storage_dir, 0 },
			{ "@CONSOLE_DIR@", c->cfg.console_dir, 0 },
		};

		size_t i, nv = sizeof(vars) / sizeof(vars[0]);

		/* The keys nginx_* are checked by config_load(); these not. */
		for (i = 0; i < nv; i++)
			if (strcmp(vars[i].name, "@SERVER_NAME@") != 0 &&
			    (vars[i].value[0] == '\0' ||
				strpbrk(vars[i].value, " \t\n;{}\"'\\#$") !=
				    NULL)) {
				fprintf(stderr,
				    "bulwarkctl: nginx-conf: the value of %s "
				    "is empty or not one nginx word: '%s'\n",
				    vars[i].name, vars[i].value);
				return 1;
			}
		buf_init(&out, CTL_NGINX_MAX);
		if (buf_printf(&out,
			"# The nginx site of Bulwark, rendered by `bulwarkctl "
			"nginx-conf` (version %s)\n# from the configuration "
			"(bulwark.conf(5), nginx_* keys) and "
			"%s/bulwark.conf.in."
			"\n# Edit the configuration and render it again rather "
			"than this file.\n",
			BW_VERSION, dir) != BW_OK) {
			buf_free(&out);
			return ctl_fail("nginx-conf", BW_ENOMEM);
		}
		rc = ctl_nginx_file(dir, "bulwark.conf.in", 1, "", vars, nv,
		    &out, 0);
	}
	if (rc == 0) {
		if (v[0] != NULL)
			rc = ctl_nginx_write(v[0], &out);
		else if (fwrite(out.p, 1, out.len, stdout) != out.len ||
		    fflush(stdout) != 0)
			rc = 1;
	}
	buf_free(&out);
	return rc;
}
