/*
 * test_registry_main.c: the `test-registry` binary, the test registry of
 * test_registry.h as a process for integration tests and manual use.
 *
 *   test-registry [--port N] [--auth USER:PASSWORD] [--level LEVEL]
 *
 * Binds 127.0.0.1 (port 0: any free one) and prints its URL as the first
 * line of stdout, then serves until SIGINT or SIGTERM (exit 0). Faults are
 * injected over HTTP: POST /_test/fail {"count": N, "status": 500}.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/test_registry.h"

static void usage(void)
{
    fprintf(stderr, "usage: test-registry [--port N] [--auth USER:PASSWORD] "
                    "[--level NONE|BACKWARD|FORWARD|FULL|*_TRANSITIVE]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    unsigned long port = 0;
    const char *auth = NULL, *level_name = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            char *end;
            errno = 0;
            port = strtoul(argv[++i], &end, 10);
            if (errno || *end || port > 65535)
                usage();
        } else if (strcmp(argv[i], "--auth") == 0 && i + 1 < argc) {
            auth = argv[++i];
        } else if (strcmp(argv[i], "--level") == 0 && i + 1 < argc) {
            level_name = argv[++i];
        } else {
            usage();
        }
    }
    tkc_registry_compat_level_t level = TKC_REGISTRY_COMPAT_BACKWARD;
    if (level_name && tkc_registry_compat_level_parse(level_name, &level) != 0)
        usage();

    /* Block the stop signals before the server thread starts, then wait for them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    char err[256];
    tkc_test_registry_t *r = tkc_test_registry_start((uint16_t)port, err, sizeof(err));
    if (!r) {
        fprintf(stderr, "test-registry: %s\n", err);
        return 1;
    }
    tkc_test_registry_set_level(r, NULL, level);
    if (auth) {
        const char *colon = strchr(auth, ':');
        if (!colon)
            usage();
        char *user = strndup(auth, (size_t)(colon - auth));
        tkc_test_registry_set_auth(r, user, colon + 1);
        free(user);
    }
    printf("%s\n", tkc_test_registry_url(r));
    fflush(stdout);
    int sig = 0;
    sigwait(&stop, &sig);
    tkc_test_registry_stop(r);
    return 0;
}
