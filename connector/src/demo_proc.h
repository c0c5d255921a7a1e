/*
 * demo_proc.h: the child processes of `tikv-kafka-cdc demo` (tikv-sim and
 * `tikv-kafka-cdc run`): spawn with stderr into a log file, read the start-up
 * line from stdout, stop with a signal and a deadline, never leave orphans.
 *
 * Every child runs in its own process group, so a Ctrl-C on the terminal
 * reaches only the demo, which then stops the children in order (connector
 * first: its final watermark and checkpoint need the simulated cluster).
 * Each child also asks the kernel for SIGTERM when the demo dies
 * (PR_SET_PDEATHSIG), so even a SIGKILLed demo leaves nothing behind.
 */
#ifndef TKC_DEMO_PROC_H
#define TKC_DEMO_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct tkc_demo_proc_s tkc_demo_proc_t;

/**
 * @brief Starts @p argv[0] (a path) with the environment plus @p env_add.
 *
 * @param argv NULL-terminated; argv[0] is the executable path. Copied.
 * @param env_add NULL-terminated "NAME=value" entries that replace or extend
 *                the demo's environment; may be NULL.
 * @param log_path stderr (and stdout unless @p pipe_stdout) is appended here.
 * @param pipe_stdout true: stdout goes to a pipe read by tkc_demo_proc_read_line().
 * @returns the child, owned by the caller (tkc_demo_proc_destroy()), or NULL
 *          with @p errstr (log file, pipe or fork failed). A failed exec
 *          shows up as exit code 127 with the reason in the log.
 * @locality main thread (forks; no other thread may be in a fork-unsafe state)
 */
tkc_demo_proc_t *tkc_demo_proc_spawn(const char *const argv[], const char *const env_add[],
                                     const char *log_path, bool pipe_stdout, char *errstr,
                                     size_t errstr_size);

/**
 * @brief Reads one line of the child's stdout (without the newline).
 * @returns 0; -1 on EOF, on timeout or without a stdout pipe.
 * @locality main thread
 */
int tkc_demo_proc_read_line(tkc_demo_proc_t *p, char *buf, size_t size, int timeout_ms);

/**
 * @brief True while the child runs; once it has exited, false and its exit
 *        code in @p *code (128 + signal when killed by one).
 * @locality main thread
 */
bool tkc_demo_proc_running(tkc_demo_proc_t *p, int *code);

/**
 * @brief Sends @p sig to the child's process group and waits up to
 *        @p timeout_ms for it to exit, then sends SIGKILL.
 * @returns the exit code (128 + signal when killed by one), or -1 if it had
 *          to be killed after the timeout.
 * @locality main thread
 */
int tkc_demo_proc_stop(tkc_demo_proc_t *p, int sig, int timeout_ms);

/** Sends @p sig to the child's process group (no wait). @locality any */
void tkc_demo_proc_signal(tkc_demo_proc_t *p, int sig);

pid_t tkc_demo_proc_pid(const tkc_demo_proc_t *p);

/** Kills (SIGKILL) and reaps a child still running, then frees. NULL is a no-op. */
void tkc_demo_proc_destroy(tkc_demo_proc_t *p);

#endif
