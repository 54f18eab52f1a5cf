/* SPDX-License-Identifier: MIT */
/* common/pool: every item once, on several threads; the first error stops
 * the hand-out and is the pool's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "common/pool.h"
#include "testutil.h"

#define N 200

typedef struct counts {
        atomic_int runs[N];
        atomic_int running, most_running, total;
        pthread_mutex_t lock;
        pthread_t seen[64];
        size_t n_seen;
        size_t fail_at; /* N: none */
        bool company;   /* item 0 waits (10 s at most) until another runs too */
} counts;

static int work(void *ctx, size_t i, forge_error **err)
{
        counts *c = ctx;
        int now = atomic_fetch_add(&c->running, 1) + 1;
        int most = atomic_load(&c->most_running);
        bool known = false;

        while (now > most && !atomic_compare_exchange_weak(&c->most_running, &most, now))
                ;
        pthread_mutex_lock(&c->lock);
        for (size_t k = 0; k < c->n_seen; k++)
                known = known || pthread_equal(c->seen[k], pthread_self());
        if (!known && c->n_seen < 64)
                c->seen[c->n_seen++] = pthread_self();
        pthread_mutex_unlock(&c->lock);
        for (int t = 0; c->company && i == 0 && atomic_load(&c->most_running) < 2 && t < 10000; t++)
                usleep(1000);
        usleep(200);
        atomic_fetch_add(&c->runs[i], 1);
        atomic_fetch_add(&c->total, 1);
        atomic_fetch_sub(&c->running, 1);
        if (i == c->fail_at)
                return forge_error_make(err, EBADMSG, "item %zu is bad", i);
        return 0;
}

static void init(counts *c, size_t fail_at)
{
        memset(c, 0, sizeof(*c));
        pthread_mutex_init(&c->lock, NULL);
        c->fail_at = fail_at;
}

static void every_item_once_on_several_threads(void **state)
{
        forge_error *err = NULL;
        counts c;

        (void)state;
        init(&c, N);
        c.company = true;
        assert_int_equal(pool_run(N, 4, work, &c, &err), 0);
        assert_null(err);
        for (size_t i = 0; i < N; i++)
                assert_int_equal(atomic_load(&c.runs[i]), 1);
        assert_true(c.n_seen >= 2 && c.n_seen <= 4);
        assert_true(atomic_load(&c.most_running) >= 2 && atomic_load(&c.most_running) <= 4);
}

static void one_thread_is_the_caller(void **state)
{
        forge_error *err = NULL;
        counts c;

        (void)state;
        init(&c, N);
        assert_int_equal(pool_run(10, 1, work, &c, &err), 0);
        assert_int_equal(c.n_seen, 1);
        assert_true(pthread_equal(c.seen[0], pthread_self()));
        assert_int_equal(atomic_load(&c.total), 10);
        /* no items: nothing runs */
        assert_int_equal(pool_run(0, 4, work, &c, &err), 0);
        assert_int_equal(atomic_load(&c.total), 10);
}

static void threads_are_capped(void **state)
{
        forge_error *err = NULL;
        counts c;

        (void)state;
        init(&c, N);
        assert_int_equal(pool_run(N, 1000, work, &c, &err), 0);
        assert_true(c.n_seen <= POOL_MAX_THREADS);
        assert_true(atomic_load(&c.most_running) <= POOL_MAX_THREADS);
        for (size_t i = 0; i < N; i++)
                assert_int_equal(atomic_load(&c.runs[i]), 1);
}

static void first_error_stops_the_hand_out(void **state)
{
        forge_error *err = NULL;
        counts c;

        (void)state;
        /* one thread: items in order, none after the failing one */
        init(&c, 5);
        assert_int_equal(pool_run(N, 1, work, &c, &err), -1);
        assert_non_null(err);
        assert_int_equal(err->errnum, EBADMSG);
        assert_non_null(strstr(err->msg, "item 5 is bad"));
        assert_int_equal(atomic_load(&c.total), 6);
        forge_error_release(&err);
        /* several: the failing item's error, no item twice */
        init(&c, 5);
        assert_int_equal(pool_run(N, 4, work, &c, &err), -1);
        assert_non_null(strstr(err->msg, "item 5 is bad"));
        assert_int_equal(atomic_load(&c.runs[5]), 1);
        for (size_t i = 0; i < N; i++)
                assert_true(atomic_load(&c.runs[i]) <= 1);
        forge_error_release(&err);
}

TU_TEST_MAIN(NULL, NULL, cmocka_unit_test(every_item_once_on_several_threads),
             cmocka_unit_test(one_thread_is_the_caller), cmocka_unit_test(threads_are_capped),
             cmocka_unit_test(first_error_stops_the_hand_out))
