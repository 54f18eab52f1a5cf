/* SPDX-License-Identifier: MIT */
/*
 * Pull and push progress on stderr. On a terminal: a line per layer in
 * flight (bytes done / total, its state), redrawn in place under the lines
 * of the blobs already done, and a total line below them; a layer's line
 * stays, final, once it is done (so at most `parallel` lines move, whatever
 * the number of layers). Elsewhere: one line per blob when it is done.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/registry-cli.h"

#define REDRAW_SECONDS 0.1

typedef struct layer_line {
        char digest[20]; /* "sha256:" and 12 hex digits */
        uint64_t now, total;
        const char *state;
        bool active, finished;
} layer_line;

static struct {
        pthread_mutex_t lock;
        int tty; /* -1: not yet known */
        size_t count, done;
        layer_line *lines;
        size_t drawn; /* lines of the moving block on the screen, the cursor below */
        double last_draw;
} prog = {PTHREAD_MUTEX_INITIALIZER, -1, 0, 0, NULL, 0, 0};

static double mono(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t columns(void)
{
        struct winsize ws;

        if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
                return ws.ws_col;
        return 80;
}

static bool is_busy(const char *state)
{
        return strcmp(state, "downloading") == 0 || strcmp(state, "uploading") == 0;
}

/* One line, cut to the terminal's width so that none wraps (the block is
 * moved over by counting lines). */
static void put_line(FILE *out, size_t width, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void put_line(FILE *out, size_t width, const char *fmt, ...)
{
        char buf[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        if (width > 1 && strlen(buf) > width - 1)
                buf[width - 1] = '\0';
        fprintf(out, "%s\033[K\n", buf);
}

static void erase_block(FILE *out)
{
        if (prog.drawn > 0)
                fprintf(out, "\033[%zuA\r\033[J", prog.drawn);
        prog.drawn = 0;
}

static void draw_block(FILE *out)
{
        size_t width = columns();
        uint64_t n = 0, t = 0;
        char a[32], b[32];

        if (prog.count == 0 || prog.done >= prog.count)
                return;
        for (size_t i = 0; i < prog.count; i++) {
                layer_line *l = &prog.lines[i];
                n += l->now;
                t += l->total;
                if (!l->active || l->finished)
                        continue;
                put_line(out, width, "layer %zu/%zu %-19s %10s / %-10s %s", i + 1, prog.count,
                         l->digest, cli_format_size(l->now, a, sizeof(a)),
                         cli_format_size(l->total, b, sizeof(b)), l->state);
                prog.drawn++;
        }
        put_line(out, width, "%zu/%zu layers  %s / %s", prog.done, prog.count,
                 cli_format_size(n, a, sizeof(a)), cli_format_size(t, b, sizeof(b)));
        prog.drawn++;
        prog.last_draw = mono();
}

/* The line a blob leaves when it is done (or resumes). */
static void final_line(FILE *out, const registry_progress_event *ev)
{
        char size[32];

        if (strcmp(ev->state, "resuming") == 0)
                fprintf(out, "%s %.19s resuming at %llu of %llu bytes\n", ev->what, ev->digest,
                        (unsigned long long)ev->now, (unsigned long long)ev->total);
        else if (strcmp(ev->what, "layer") == 0)
                fprintf(out, "layer %zu/%zu %.19s %10s %s\n", ev->index + 1, ev->count, ev->digest,
                        cli_format_size(ev->total, size, sizeof(size)), ev->state);
        else
                fprintf(out, "%-11s %.19s %10s %s\n", ev->what, ev->digest,
                        cli_format_size(ev->total, size, sizeof(size)), ev->state);
}

/* Records a layer event; true when the block must be redrawn now (a layer
 * started or ended). */
static bool track(const registry_progress_event *ev)
{
        layer_line *l;
        bool changed;

        if (strcmp(ev->what, "layer") != 0 || ev->count == 0)
                return false;
        if (prog.count != ev->count) {
                free(prog.lines);
                prog.lines = calloc(ev->count, sizeof(*prog.lines));
                prog.count = prog.lines ? ev->count : 0;
                prog.done = 0;
        }
        if (ev->index >= prog.count)
                return false;
        l = &prog.lines[ev->index];
        changed = !l->active;
        snprintf(l->digest, sizeof(l->digest), "%.19s", ev->digest);
        l->now = ev->now;
        l->total = ev->total;
        l->state = ev->state;
        l->active = true;
        if (!is_busy(ev->state) && strcmp(ev->state, "resuming") != 0 && !l->finished) {
                l->finished = true;
                prog.done++;
                changed = true;
        }
        return changed;
}

static void show(FILE *out, const registry_progress_event *ev)
{
        bool changed = track(ev);
        bool busy = is_busy(ev->state);

        if (!prog.tty) {
                if (!busy)
                        final_line(out, ev);
                return;
        }
        if (busy && !changed && mono() - prog.last_draw < REDRAW_SECONDS)
                return;
        erase_block(out);
        if (!busy)
                final_line(out, ev);
        draw_block(out);
}

void cli_registry_progress(const registry_progress_event *ev, void *userdata)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *out;

        (void)userdata;
        pthread_mutex_lock(&prog.lock);
        if (prog.tty < 0)
                prog.tty = isatty(STDERR_FILENO);
        /* one write per update: a redraw is never seen half done */
        out = open_memstream(&buf, &len);
        if (out != NULL) {
                show(out, ev);
                fclose(out);
                if (len > 0)
                        fwrite(buf, 1, len, stderr);
        }
        free(buf);
        pthread_mutex_unlock(&prog.lock);
}

void cli_registry_progress_end(void)
{
        pthread_mutex_lock(&prog.lock);
        if (prog.drawn > 0)
                fprintf(stderr, "\033[%zuA\r\033[J", prog.drawn);
        prog.drawn = 0;
        free(prog.lines);
        prog.lines = NULL;
        prog.count = prog.done = 0;
        pthread_mutex_unlock(&prog.lock);
}
