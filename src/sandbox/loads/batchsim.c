/*
 * batchsim: the batch case of the SchedCP paper. `--tasks` processes start together: all but one
 * are short, one is long. Each burns a fixed amount of CPU; the mean completion time (start of
 * the batch to each task's end) is what a scheduler can improve by ordering the tasks.
 * The long task calls itself "batch-long" and the others "batch-short" (visible in comm).
 *
 *   batchsim --tasks=40 --short-ms=50 --long-ms=1000
 *   -> SCHEDCTL-RESULT {"load":"batchsim","tasks":40,"mean_completion_ms":..,"makespan_ms":..,...}
 */
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include "loadgen.h"

int main(int argc, char **argv)
{
	long tasks = arg_long(argc, argv, "tasks", 40);
	long short_ms = arg_long(argc, argv, "short-ms", 50);
	long long_ms = arg_long(argc, argv, "long-ms", 1000);
	if (tasks < 1) {
		fprintf(stderr, "--tasks must be >= 1\n");
		return 2;
	}
	/*
	 * Each task stamps its own end in shared memory: the parent may be scheduled late to reap
	 * it, and that delay is not the task's completion.
	 */
	uint64_t *ends = mmap(NULL, tasks * sizeof *ends, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ends == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	uint64_t start = now_ns();
	for (long i = 0; i < tasks; i++) {
		/* The long task starts in the middle, so neither fork order favours it. */
		int is_long = i == tasks / 2;
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			prctl(PR_SET_NAME, is_long ? "batch-long" : "batch-short");
			burn_us((uint64_t)(is_long ? long_ms : short_ms) * 1000);
			ends[i] = now_ns();
			_exit(0);
		}
	}
	while (wait(NULL) > 0)
		;
	double sum_ms = 0, short_sum_ms = 0, long_ms_done = 0, makespan_ms = 0;
	for (long i = 0; i < tasks; i++) {
		double at_ms = (ends[i] - start) / 1e6;
		sum_ms += at_ms;
		makespan_ms = at_ms > makespan_ms ? at_ms : makespan_ms;
		if (i == tasks / 2)
			long_ms_done = at_ms;
		else
			short_sum_ms += at_ms;
	}
	printf(RESULT_MARKER "{\"load\":\"batchsim\",\"tasks\":%ld,\"short_ms\":%ld,\"long_ms\":%ld,"
			     "\"mean_completion_ms\":%.1f,\"mean_short_ms\":%.1f,\"long_completion_ms\":%.1f,"
			     "\"makespan_ms\":%.1f}\n",
	       tasks, short_ms, long_ms, sum_ms / tasks, tasks > 1 ? short_sum_ms / (tasks - 1) : 0.0,
	       long_ms_done, makespan_ms);
	return 0;
}
