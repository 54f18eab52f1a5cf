/* SPDX-License-Identifier: MIT */
#include "common/pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>

#define DEFAULT_THREADS 4

typedef struct pool {
        pthread_mutex_t lock; /* guards next and first_err */
        size_t n, next;
        forge_error *first_err;
        pool_fn fn;
        void *ctx;
} pool;

/* The next item to work on, or n when all are handed out or one failed. */
static size_t take(pool *p)
{
        size_t i;

        pthread_mutex_lock(&p->lock);
        i = p->first_err == NULL && p->next < p->n ? p->next++ : p->n;
        pthread_mutex_unlock(&p->lock);
        return i;
}

static void *worker(void *arg)
{
        pool *p = arg;

        for (size_t i = take(p); i < p->n; i = take(p)) {
                forge_error *e = NULL;

                if (p->fn(p->ctx, i, &e) == 0)
                        continue;
                if (e == NULL)
                        forge_error_make(&e, EIO, "item %zu", i + 1);
                pthread_mutex_lock(&p->lock);
                if (p->first_err == NULL)
                        p->first_err = e;
                else
                        forge_error_release(&e);
                pthread_mutex_unlock(&p->lock);
        }
        return NULL;
}

int pool_run(size_t n, unsigned threads, pool_fn fn, void *ctx, forge_error **err)
{
        pool p = {.n = n, .fn = fn, .ctx = ctx};
        pthread_t th[POOL_MAX_THREADS];
        unsigned want = threads ? threads : DEFAULT_THREADS, started = 0;

        if (n == 0)
                return 0;
        if (want > POOL_MAX_THREADS)
                want = POOL_MAX_THREADS;
        if (want > n)
                want = (unsigned)n;
        pthread_mutex_init(&p.lock, NULL);
        for (unsigned t = 1; t < want; t++) {
                if (pthread_create(&th[started], NULL, worker, &p) != 0)
                        break;
                started++;
        }
        worker(&p);
        for (unsigned t = 0; t < started; t++)
                pthread_join(th[t], NULL);
        pthread_mutex_destroy(&p.lock);
        if (p.first_err != NULL) {
                *err = p.first_err;
                return -1;
        }
        return 0;
}
