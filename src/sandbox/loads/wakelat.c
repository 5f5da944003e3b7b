/*
 * wakelat: a request/response service. A messenger thread posts a request to each of N worker
 * threads and wakes them; each worker computes briefly and reports back. The time from a wake-up
 * to the worker running (the scheduler's wake-up latency) of every request goes into a histogram.
 * All threads are SCHED_OTHER, so a sched_ext policy schedules them.
 *
 *   wakelat --seconds=5 --workers=4 --work-us=500 --sleep-us=1000
 *   -> SCHEDCTL-RESULT {"load":"wakelat","p50_us":..,"p90_us":..,"p99_us":..,"p999_us":..,"rps":..}
 */
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "loadgen.h"

#define MAX_WORKERS 256
#define HIST_US 200000 /* 1 us buckets up to 200 ms; longer waits land in the last one */

struct worker {
	_Alignas(64) atomic_uint seq; /* bumped by the messenger for each request */
	uint64_t posted_ns;            /* when the current request was posted */
	pthread_t thread;
};

static struct worker workers[MAX_WORKERS];
static atomic_uint pending; /* workers still busy with the current round */
static atomic_int stop;
static atomic_uint_fast64_t hist[HIST_US + 1];
static atomic_uint_fast64_t max_us;
static long work_us;

static void futex_wait(atomic_uint *addr, unsigned int val)
{
	syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake(atomic_uint *addr)
{
	syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void record(uint64_t us)
{
	atomic_fetch_add_explicit(&hist[us < HIST_US ? us : HIST_US], 1, memory_order_relaxed);
	uint64_t m = atomic_load(&max_us);
	while (us > m && !atomic_compare_exchange_weak(&max_us, &m, us))
		;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	unsigned int seen = 0;
	for (;;) {
		unsigned int seq;
		while ((seq = atomic_load(&w->seq)) == seen)
			futex_wait(&w->seq, seen);
		seen = seq;
		if (atomic_load(&stop))
			return NULL;
		record((now_ns() - w->posted_ns) / 1000);
		burn_us(work_us);
		if (atomic_fetch_sub(&pending, 1) == 1)
			futex_wake(&pending);
	}
}

static uint64_t percentile(uint64_t total, double p)
{
	uint64_t want = (uint64_t)(total * p + 0.5), seen = 0;
	for (uint64_t us = 0; us <= HIST_US; us++) {
		seen += atomic_load(&hist[us]);
		if (seen >= want && seen > 0)
			return us;
	}
	return HIST_US;
}

int main(int argc, char **argv)
{
	long seconds = arg_long(argc, argv, "seconds", 5);
	long n = arg_long(argc, argv, "workers", 4);
	long sleep_us = arg_long(argc, argv, "sleep-us", 1000);
	work_us = arg_long(argc, argv, "work-us", 500);
	if (n < 1 || n > MAX_WORKERS) {
		fprintf(stderr, "--workers must be 1..%d\n", MAX_WORKERS);
		return 2;
	}
	for (long i = 0; i < n; i++)
		pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);

	uint64_t start = now_ns(), end = start + (uint64_t)seconds * 1000000000ull, requests = 0;
	while (now_ns() < end) {
		atomic_store(&pending, (unsigned int)n);
		for (long i = 0; i < n; i++) {
			workers[i].posted_ns = now_ns();
			atomic_fetch_add(&workers[i].seq, 1);
			futex_wake(&workers[i].seq);
		}
		unsigned int left;
		while ((left = atomic_load(&pending)) != 0)
			futex_wait(&pending, left);
		requests += n;
		if (sleep_us)
			usleep(sleep_us);
	}
	double elapsed = (now_ns() - start) / 1e9;
	atomic_store(&stop, 1);
	for (long i = 0; i < n; i++) {
		atomic_fetch_add(&workers[i].seq, 1);
		futex_wake(&workers[i].seq);
		pthread_join(workers[i].thread, NULL);
	}

	uint64_t total = 0, sum_us = 0;
	for (uint64_t us = 0; us <= HIST_US; us++) {
		total += atomic_load(&hist[us]);
		sum_us += us * atomic_load(&hist[us]);
	}
	printf(RESULT_MARKER "{\"load\":\"wakelat\",\"workers\":%ld,\"work_us\":%ld,\"seconds\":%.2f,"
			     "\"requests\":%llu,\"rps\":%.1f,\"mean_us\":%.1f,\"p50_us\":%llu,\"p90_us\":%llu,"
			     "\"p99_us\":%llu,\"p999_us\":%llu,\"max_us\":%llu}\n",
	       n, work_us, elapsed, (unsigned long long)requests, requests / elapsed,
	       total ? (double)sum_us / total : 0.0, (unsigned long long)percentile(total, 0.50),
	       (unsigned long long)percentile(total, 0.90), (unsigned long long)percentile(total, 0.99),
	       (unsigned long long)percentile(total, 0.999), (unsigned long long)atomic_load(&max_us));
	return 0;
}
