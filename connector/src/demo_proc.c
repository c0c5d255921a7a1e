/*
 * demo_proc.c: spawning and stopping the demo's child processes.
 *
 * Design:
 *  - Everything the child needs (argv, envp, file descriptors) is prepared
 *    before fork(), so the child only calls async-signal-safe functions
 *    until execve(): the demo may have libcurl or librdkafka threads alive.
 *  - The child gets its own process group (set by both sides of the fork,
 *    so there is no window where a signal to the group misses it), default
 *    signal dispositions and an empty signal mask (the demo blocks nothing,
 *    but its SIGINT handler must not be inherited as "ignored" either), and
 *    PR_SET_PDEATHSIG(SIGTERM) so it cannot outlive the demo. The
 *    getppid() check after prctl closes the race where the demo dies
 *    between fork() and prctl().
 *  - stderr goes to a log file (appended, so a restart keeps the history);
 *    stdout to a pipe when the caller wants the start-up line (tikv-sim
 *    prints its addresses there), else to the same log. Only the first
 *    lines of the pipe are ever read: tikv-sim writes nothing after its
 *    start-up line, so the pipe never fills.
 *  - Exit codes follow the shell: 128 + signal number when killed by one.
 */
#include "demo_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/mem.h"

extern char **environ;

struct tkc_demo_proc_s {
    pid_t pid;
    int out_fd;  /* stdout pipe, -1 without */
    bool exited;
    int code;
    char buf[4096]; /* unread stdout bytes */
    size_t buf_len;
};

static int status_code(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -1;
}

/* The environment with env_add on top: an entry of env_add replaces the
 * inherited variable of the same name. The strings are borrowed. */
static char **build_env(const char *const env_add[])
{
    size_t n_env = 0, n_add = 0;
    while (environ[n_env])
        n_env++;
    while (env_add && env_add[n_add])
        n_add++;
    char **envp = tkc_calloc(n_env + n_add + 1, sizeof(char *));
    size_t n = 0;
    for (size_t i = 0; i < n_add; i++)
        envp[n++] = (char *)env_add[i];
    for (size_t i = 0; i < n_env; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t name_len = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        bool replaced = false;
        for (size_t j = 0; j < n_add && !replaced; j++)
            replaced = strncmp(env_add[j], environ[i], name_len) == 0 &&
                       env_add[j][name_len] == '=';
        if (!replaced)
            envp[n++] = environ[i];
    }
    return envp;
}

tkc_demo_proc_t *tkc_demo_proc_spawn(const char *const argv[], const char *const env_add[],
                                     const char *log_path, bool pipe_stdout, char *errstr,
                                     size_t errstr_size)
{
    int log_fd = -1, null_fd = -1, pipe_fds[2] = {-1, -1};
    char **envp = NULL;
    tkc_demo_proc_t *p = NULL;

    log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) {
        snprintf(errstr, errstr_size, "%s: %s", log_path, strerror(errno));
        goto err;
    }
    null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0) {
        snprintf(errstr, errstr_size, "/dev/null: %s", strerror(errno));
        goto err;
    }
    if (pipe_stdout && pipe2(pipe_fds, O_CLOEXEC) != 0) {
        snprintf(errstr, errstr_size, "pipe: %s", strerror(errno));
        goto err;
    }
    envp = build_env(env_add);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(errstr, errstr_size, "fork: %s", strerror(errno));
        goto err;
    }
    if (pid == 0) {
        /* Child: async-signal-safe calls only. */
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(126);
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_DFL;
        sigemptyset(&sa.sa_mask);
        for (int s = 1; s < NSIG; s++)
            if (s != SIGKILL && s != SIGSTOP)
                sigaction(s, &sa, NULL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        dup2(null_fd, STDIN_FILENO);
        dup2(pipe_stdout ? pipe_fds[1] : log_fd, STDOUT_FILENO);
        dup2(log_fd, STDERR_FILENO);
        execve(argv[0], (char *const *)argv, envp);
        static const char msg[] = "demo: exec failed: ";
        const char *why = strerror(errno);
        (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
        (void)!write(STDERR_FILENO, argv[0], strlen(argv[0]));
        (void)!write(STDERR_FILENO, ": ", 2);
        (void)!write(STDERR_FILENO, why, strlen(why));
        (void)!write(STDERR_FILENO, "\n", 1);
        _exit(127);
    }
    setpgid(pid, pid); /* also here: no window where kill(-pid) misses it */
    p = tkc_calloc(1, sizeof(*p));
    p->pid = pid;
    p->out_fd = pipe_fds[0];
    pipe_fds[0] = -1;
    if (pipe_fds[1] >= 0)
        close(pipe_fds[1]);
    pipe_fds[1] = -1;
    tkc_free(envp);
    close(log_fd);
    close(null_fd);
    return p;

err:
    tkc_free(envp);
    if (log_fd >= 0)
        close(log_fd);
    if (null_fd >= 0)
        close(null_fd);
    if (pipe_fds[0] >= 0)
        close(pipe_fds[0]);
    if (pipe_fds[1] >= 0)
        close(pipe_fds[1]);
    return NULL;
}

int tkc_demo_proc_read_line(tkc_demo_proc_t *p, char *buf, size_t size, int timeout_ms)
{
    if (p->out_fd < 0 || size == 0)
        return -1;
    int64_t deadline = tkc_clock_mono_ms() + timeout_ms;
    for (;;) {
        char *nl = memchr(p->buf, '\n', p->buf_len);
        if (nl) {
            size_t len = (size_t)(nl - p->buf);
            size_t n = len < size - 1 ? len : size - 1;
            memcpy(buf, p->buf, n);
            buf[n] = '\0';
            memmove(p->buf, nl + 1, p->buf_len - len - 1);
            p->buf_len -= len + 1;
            return 0;
        }
        if (p->buf_len == sizeof(p->buf))
            p->buf_len = 0; /* a line longer than the buffer: not ours, drop it */
        int64_t left = deadline - tkc_clock_mono_ms();
        if (left <= 0)
            return -1;
        struct pollfd pfd = {.fd = p->out_fd, .events = POLLIN};
        int r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno == EINTR)
            return -1; /* a signal: let the caller look at it */
        if (r <= 0)
            return -1;
        ssize_t got = read(p->out_fd, p->buf + p->buf_len, sizeof(p->buf) - p->buf_len);
        if (got <= 0)
            return -1;
        p->buf_len += (size_t)got;
    }
}

bool tkc_demo_proc_running(tkc_demo_proc_t *p, int *code)
{
    if (!p->exited) {
        int st;
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid) {
            p->exited = true;
            p->code = status_code(st);
        } else if (r < 0 && errno == ECHILD) {
            p->exited = true;
            p->code = -1;
        }
    }
    if (p->exited && code)
        *code = p->code;
    return !p->exited;
}

void tkc_demo_proc_signal(tkc_demo_proc_t *p, int sig)
{
    if (!p->exited)
        kill(-p->pid, sig);
}

int tkc_demo_proc_stop(tkc_demo_proc_t *p, int sig, int timeout_ms)
{
    int code;
    if (!tkc_demo_proc_running(p, &code))
        return code;
    kill(-p->pid, sig);
    int64_t deadline = tkc_clock_mono_ms() + timeout_ms;
    while (tkc_demo_proc_running(p, &code)) {
        if (tkc_clock_mono_ms() >= deadline) {
            kill(-p->pid, SIGKILL);
            int st;
            while (waitpid(p->pid, &st, 0) < 0 && errno == EINTR)
                ;
            p->exited = true;
            p->code = -1;
            return -1;
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return code;
}

pid_t tkc_demo_proc_pid(const tkc_demo_proc_t *p)
{
    return p->pid;
}

void tkc_demo_proc_destroy(tkc_demo_proc_t *p)
{
    if (!p)
        return;
    if (tkc_demo_proc_running(p, NULL)) {
        kill(-p->pid, SIGKILL);
        int st;
        while (waitpid(p->pid, &st, 0) < 0 && errno == EINTR)
            ;
    }
    if (p->out_fd >= 0)
        close(p->out_fd);
    tkc_free(p);
}
