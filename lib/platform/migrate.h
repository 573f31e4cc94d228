/* SPDX-License-Identifier: MIT */
/*
 * Forward-only migrations: files sql/NNNN_<what>.sql applied in order, each
 * in its own transaction, under an advisory lock (several hosts may run it
 * at once: one applies, the others wait then find nothing to do), recorded
 * in schema_migrations with the file's SHA-256; a recorded file whose
 * content changed is refused.
 */
#ifndef BW_MIGRATE_H
#define BW_MIGRATE_H

#include <json-c/json.h>

#include "core/db.h"
#include "core/err.h"

/* Applies pending files of dir; *applied (new array, caller puts) lists
 * their names. */
enum bw_err
migrate_run(struct db *, const char *dir, struct json_object **applied);

#endif
