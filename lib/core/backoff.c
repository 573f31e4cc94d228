/* SPDX-License-Identifier: MIT */
/* Shared retry rules of provider clients; see lib/core/backoff.h. */
#include "core/backoff.h"
#include "core/sec.h"

int
backoff_status_retryable(int status)
{
	switch (status) {
	case 408:
	case 429:
	case 500:
	case 502:
	case 503:
	case 504:
		return 1;
	default:
		return 0;
	}
}

int64_t
backoff_ms(int n, int64_t base_ms, int jitter_ms)
{
	if (n < 1)
		n = 1;
	if (n > 10)
		n = 10;
	return (base_ms << (n - 1)) + jitter_ms;
}

int
backoff_jitter_ms(int max_ms)
{
	uint8_t b[2];

	if (max_ms <= 0)
		return 0;
	if (sec_random(b, sizeof(b)) != BW_OK)
		return max_ms / 2;
	return (int)(((unsigned)b[0] << 8 | b[1]) % (unsigned)(max_ms + 1));
}
