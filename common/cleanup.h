/* SPDX-License-Identifier: MIT */
#pragma once

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Resources released when the variable goes out of scope; hand ownership on
 * with take_ptr()/take_fd(). */

static inline void cleanup_free_fn(void *p)
{
        free(*(void **)p);
}
static inline void cleanup_close_fn(int *fd)
{
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}
static inline void cleanup_fclose_fn(FILE **f)
{
        if (*f != NULL)
                fclose(*f);
}
static inline void cleanup_closedir_fn(DIR **d)
{
        if (*d != NULL)
                closedir(*d);
}
static inline void cleanup_strv_fn(char ***v)
{
        if (*v == NULL)
                return;
        for (char **p = *v; *p != NULL; p++)
                free(*p);
        free(*v);
}

#define cleanup_free __attribute__((cleanup(cleanup_free_fn)))
#define cleanup_close __attribute__((cleanup(cleanup_close_fn)))
#define cleanup_fclose __attribute__((cleanup(cleanup_fclose_fn)))
#define cleanup_closedir __attribute__((cleanup(cleanup_closedir_fn)))
#define cleanup_strv __attribute__((cleanup(cleanup_strv_fn)))

#define take_ptr(p)                                                                                \
        ({                                                                                         \
                __typeof__(p) _p = (p);                                                            \
                (p) = NULL;                                                                        \
                _p;                                                                                \
        })
#define take_fd(fd)                                                                                \
        ({                                                                                         \
                int _fd = (fd);                                                                    \
                (fd) = -1;                                                                         \
                _fd;                                                                               \
        })

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
