/* SPDX-License-Identifier: MIT */
/*
 * The one error enum of libbulwark. Fallible functions return it and leave
 * their out-parameters untouched on failure (like curl's CURLcode).
 */
#ifndef BW_ERR_H
#define BW_ERR_H

#ifdef BW_TESTING
#define STATIC
#else
#define STATIC static
#endif

enum bw_err {
	BW_OK = 0,
	BW_ENOMEM,    /* allocation failed */
	BW_EINVAL,    /* bad argument or malformed input */
	BW_ETOOBIG,   /* a bound in limits.h was hit */
	BW_ENOTFOUND, /* no such row, key or file */
	BW_EEXISTS,   /* unique violation / already there */
	BW_EDB,	      /* PostgreSQL error (logged where found) */
	BW_ERETRY,    /* serialization failure or deadlock: retry the tx */
	BW_EREDIS,    /* Redis error or unreachable */
	BW_EIO,	      /* file or socket I/O error */
	BW_ETIMEOUT,  /* a deadline passed */
	BW_EUPSTREAM, /* an outside provider failed */
	BW_EBUSY,     /* lock not acquired, cap reached */
	BW_EAUTH,     /* credentials invalid */
	BW_ECONFIG,   /* configuration invalid */
	BW_ECRYPTO,   /* OpenSSL failure or bad signature */
	BW_ESTATE,    /* operation not allowed in the current state */
	BW_EAMBIG,    /* COMMIT sent, no answer: it may have committed */
	BW_ERR__MAX
};

/* Static text for an error; never NULL. */
const char *bw_strerror(enum bw_err);

#endif
