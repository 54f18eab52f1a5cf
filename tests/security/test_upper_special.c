/* SPDX-License-Identifier: MIT */
/*
 * A run step's upper directory is written by the image's own code: a file
 * the walk recorded that is then a FIFO (or a device) when the layer tar is
 * written must fail at once, never block the build or be read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "builder/builder-internal.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "store/store.h"
#include "testutil.h"

static void fifo_in_place_of_a_file(void **state)
{
        tu_store_fixture *f = *state;
        cleanup_free char *fifo = fs_path_join(f->dir, "f");
        forge_error *e = NULL;
        bentries es;
        store_layer l;
        bentry *en;

        assert_int_equal(mkfifo(fifo, 0644), 0);
        alarm(20); /* a blocked open fails the test instead of hanging it */
        bentries_init(&es);
        en = bentries_add(&es, "etc/passwd");
        assert_non_null(en);
        en->type = S_IFREG;
        en->perm = 0644;
        en->size = 10;
        en->host_path = strdup(fifo);
        assert_int_equal(bentries_finish(&es, 0, &e), 0);
        assert_int_equal(btar_write(f->s, &es, &l, &e), -1);
        assert_non_null(e);
        assert_non_null(strstr(e->msg, "replaced"));
        alarm(0);
        forge_error_release(&e);
        bentries_free(&es);
}

TU_TEST_MAIN(NULL, NULL, tu_store_test(fifo_in_place_of_a_file))
