/* Shared bits of the sandbox's load generators: clocks, argument parsing, the result marker. */
#ifndef SCHEDCTL_LOADGEN_H
#define SCHEDCTL_LOADGEN_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Must match RESULT_MARKER in src/sandbox/types.ts. */
#define RESULT_MARKER "SCHEDCTL-RESULT "

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * Burns `us` microseconds of this thread's CPU time: a fixed amount of work, so that time spent
 * waiting for a CPU shows up in what the caller measures instead of shortening the work.
 */
static inline void burn_us(uint64_t us)
{
	uint64_t end = thread_cpu_ns() + us * 1000;
	volatile uint64_t x = 0;
	while (thread_cpu_ns() < end)
		for (int i = 0; i < 256; i++)
			x += i;
}

/* `--name=value` (integer) from argv, else the default; a malformed value is fatal. */
static inline long arg_long(int argc, char **argv, const char *name, long dflt)
{
	size_t len = strlen(name);
	for (int i = 1; i < argc; i++) {
		if (strncmp(argv[i], "--", 2) || strncmp(argv[i] + 2, name, len) || argv[i][2 + len] != '=')
			continue;
		char *end;
		long v = strtol(argv[i] + 3 + len, &end, 10);
		if (*end || v < 0) {
			fprintf(stderr, "bad value for --%s: %s\n", name, argv[i] + 3 + len);
			exit(2);
		}
		return v;
	}
	return dflt;
}

#endif
