/*
 * cpuhog: N CPU-bound workers for a fixed time, each counting the work units it completed, so a
 * harness can tell that every worker made progress (no starvation) and how evenly.
 *
 *   cpuhog --workers=4 --seconds=5
 *   -> SCHEDCTL-RESULT {"load":"cpuhog","workers":4,"seconds":5.00,"units":[...],"min":..,"max":..,"total":..}
 */
#include <pthread.h>
#include <stdatomic.h>
#include "loadgen.h"

#define MAX_WORKERS 256

static atomic_int stop;
static uint64_t units[MAX_WORKERS];

static void *worker(void *arg)
{
	uint64_t *count = arg;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		burn_us(100);
		(*count)++;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	long workers = arg_long(argc, argv, "workers", 2);
	long seconds = arg_long(argc, argv, "seconds", 5);
	if (workers < 1 || workers > MAX_WORKERS) {
		fprintf(stderr, "--workers must be 1..%d\n", MAX_WORKERS);
		return 2;
	}
	pthread_t threads[MAX_WORKERS];
	uint64_t start = now_ns();
	for (long i = 0; i < workers; i++)
		pthread_create(&threads[i], NULL, worker, &units[i]);
	struct timespec nap = { .tv_sec = seconds };
	nanosleep(&nap, NULL);
	atomic_store(&stop, 1);
	for (long i = 0; i < workers; i++)
		pthread_join(threads[i], NULL);
	double elapsed = (now_ns() - start) / 1e9;

	uint64_t min = UINT64_MAX, max = 0, total = 0;
	printf(RESULT_MARKER "{\"load\":\"cpuhog\",\"workers\":%ld,\"seconds\":%.2f,\"units\":[", workers, elapsed);
	for (long i = 0; i < workers; i++) {
		printf("%s%llu", i ? "," : "", (unsigned long long)units[i]);
		min = units[i] < min ? units[i] : min;
		max = units[i] > max ? units[i] : max;
		total += units[i];
	}
	printf("],\"min\":%llu,\"max\":%llu,\"total\":%llu}\n", (unsigned long long)min, (unsigned long long)max,
	       (unsigned long long)total);
	return 0;
}
