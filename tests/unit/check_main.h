/*
 * check_main.h: the main() every check test executable shares.
 *
 * TKC_CHECK_MAIN(suite_fn, ...) runs each named suite in one SRunner with
 * check's fork mode left on (a crash fails one test, not the run) and
 * returns non-zero when any test failed.
 */
#ifndef TKC_CHECK_MAIN_H
#define TKC_CHECK_MAIN_H

#include <check.h>
#include <stdlib.h>

#define TKC_CHECK_MAIN(first_suite, ...)                                     \
    int main(void)                                                           \
    {                                                                        \
        Suite *(*suites[])(void) = {first_suite, ##__VA_ARGS__};             \
        SRunner *sr = srunner_create(suites[0]());                           \
        for (size_t i = 1; i < sizeof(suites) / sizeof(suites[0]); i++)      \
            srunner_add_suite(sr, suites[i]());                              \
        srunner_run_all(sr, CK_ENV);                                         \
        int failed = srunner_ntests_failed(sr);                              \
        srunner_free(sr);                                                    \
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;                    \
    }

#endif
