/* SPDX-License-Identifier: MIT */
/*
 * Run records: reading config.json, state and exit of RUNS/ID, and deciding
 * from them whether the run is up. A run is up only while its supervisor is
 * alive: the pid recorded in state, with the same start time, in the same
 * boot. Anything else (a killed supervisor, a reused pid, a reboot) without
 * an exit file is an end with an unknown status.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "runtime/service/service-internal.h"
#include "store/store.h"

#define RECORD_MAX (64 * 1024)

int service_proc_start_time(pid_t pid, uint64_t *ret)
{
        char path[64], buf[2048], *p;
        cleanup_close int fd = -1;
        ssize_t n;
        unsigned long long v;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return -EIO;
        buf[n] = '\0';
        /* the command name may hold spaces and parentheses: fields follow the last ')' */
        p = strrchr(buf, ')');
        if (p == NULL)
                return -EIO;
        p++;
        /* a zombie has ended: only its parent has not looked yet */
        if (p[0] == ' ' && (p[1] == 'Z' || p[1] == 'X'))
                return -ESRCH;
        /* p is at field 3; start time is field 22 */
        for (int field = 3; field < 22; field++) {
                p = strchr(p + 1, ' ');
                if (p == NULL)
                        return -EIO;
        }
        if (sscanf(p, " %llu", &v) != 1)
                return -EIO;
        *ret = v;
        return 0;
}

void boot_id(char buf[64])
{
        cleanup_close int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, buf, 63) : -1;

        if (n < 0)
                n = 0;
        buf[n] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
}

int state_write(int dirfd, const service_pids *p, forge_error **err)
{
        char buf[512], boot[64];
        int n;

        boot_id(boot);
        n = snprintf(buf, sizeof(buf),
                     "boot %s\nsup_pid %d\nsup_start %" PRIu64 "\nwork_pid %d\nwork_start %" PRIu64
                     "\ninit_pid %d\ninit_start %" PRIu64 "\n",
                     boot, (int)p->sup_pid, p->sup_start, (int)p->work_pid, p->work_start,
                     (int)p->init_pid, p->init_start);
        return fs_write_atomic(dirfd, "state", buf, (size_t)n, 0644, err);
}

int read_int_file(int dirfd, const char *name, int *ret)
{
        cleanup_free char *buf = NULL;
        char *end;
        long v;

        if (fs_read_all(dirfd, name, 64, &buf, NULL, NULL) < 0)
                return -1;
        errno = 0;
        v = strtol(buf, &end, 10);
        if (end == buf || errno != 0 || v < 0 || v > 255)
                return -1;
        *ret = (int)v;
        return 0;
}

static void state_parse(char *buf, service_pids *p, char boot[64])
{
        char *save = NULL;

        boot[0] = '\0';
        for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char key[32];
                char val[64];

                if (sscanf(line, "%31s %63s", key, val) != 2)
                        continue;
                if (strcmp(key, "boot") == 0)
                        snprintf(boot, 64, "%s", val);
                else if (strcmp(key, "sup_pid") == 0)
                        p->sup_pid = (pid_t)atoi(val);
                else if (strcmp(key, "sup_start") == 0)
                        p->sup_start = strtoull(val, NULL, 10);
                else if (strcmp(key, "work_pid") == 0)
                        p->work_pid = (pid_t)atoi(val);
                else if (strcmp(key, "work_start") == 0)
                        p->work_start = strtoull(val, NULL, 10);
                else if (strcmp(key, "init_pid") == 0)
                        p->init_pid = (pid_t)atoi(val);
                else if (strcmp(key, "init_start") == 0)
                        p->init_start = strtoull(val, NULL, 10);
        }
}

static bool alive(pid_t pid, uint64_t start)
{
        uint64_t now;

        return pid > 0 && service_proc_start_time(pid, &now) == 0 && now == start;
}

int service_refresh(service_info *si, forge_error **err)
{
        cleanup_close int dirfd = open(si->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        cleanup_free char *buf = NULL;
        service_pids p = {0};
        char boot[64], now[64];
        int status;

        if (dirfd < 0)
                return forge_error_make(err, errno, "run '%.12s'", si->id);
        if (read_int_file(dirfd, "exit", &status) == 0) {
                si->state = SERVICE_EXITED;
                si->status = status;
        } else {
                si->state = SERVICE_UNKNOWN;
        }
        if (fs_read_all(dirfd, "state", RECORD_MAX, &buf, NULL, NULL) == 0)
                state_parse(buf, &p, boot);
        else
                boot[0] = '\0';
        boot_id(now);
        si->sup_pid = p.sup_pid;
        si->sup_start = p.sup_start;
        si->work_pid = p.work_pid;
        si->work_start = p.work_start;
        si->init_pid = p.init_pid;
        si->init_start = p.init_start;
        if (si->state == SERVICE_UNKNOWN && boot[0] != '\0' && strcmp(boot, now) == 0 &&
            alive(p.sup_pid, p.sup_start))
                si->state = SERVICE_UP;
        return 0;
}

void service_info_free(service_info *si)
{
        free(si->dir);
        free(si->name);
        free(si->image);
        free(si->kind);
        free(si->command);
        memset(si, 0, sizeof(*si));
}

static char *json_str(json_t *o, const char *key)
{
        const char *s = json_string_value(json_object_get(o, key));

        return strdup(s ? s : "");
}

static int load(const char *runs_dir, const char *id, service_info *ret, forge_error **err)
{
        service_info si = {0};
        cleanup_free char *dir = fs_path_join(runs_dir, id);
        cleanup_free char *buf = NULL;
        cleanup_close int dirfd = -1;
        cleanup_json json_t *j = NULL;

        if (dir == NULL)
                return forge_error_make(err, ENOMEM, "run");
        dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (dirfd < 0)
                return forge_error_make(err, errno, "run '%.12s'", id);
        if (fs_read_all(dirfd, "config.json", RECORD_MAX, &buf, NULL, err) < 0)
                return forge_error_prefix(err, "run '%.12s'", id);
        j = json_loads(buf, 0, NULL);
        if (j == NULL || !json_is_object(j))
                return forge_error_make(err, EINVAL, "run '%.12s': corrupt config.json", id);
        snprintf(si.id, sizeof(si.id), "%s", id);
        si.name = json_str(j, "name");
        si.image = json_str(j, "image");
        si.kind = json_str(j, "kind");
        si.command = json_str(j, "command");
        si.created = json_integer_value(json_object_get(j, "created"));
        si.dir = take_ptr(dir);
        if (si.name == NULL || si.image == NULL || si.kind == NULL || si.command == NULL) {
                service_info_free(&si);
                return forge_error_make(err, ENOMEM, "run");
        }
        if (service_refresh(&si, err) < 0) {
                service_info_free(&si);
                return -1;
        }
        *ret = si;
        return 0;
}

static bool is_id(const char *s)
{
        size_t n = strlen(s);

        if (n != SERVICE_ID_LEN)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
                        return false;
        return true;
}

void service_list_free(service_info *v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                service_info_free(&v[i]);
        free(v);
}

static int by_created(const void *a, const void *b)
{
        const service_info *x = a, *y = b;

        if (x->created != y->created)
                return x->created < y->created ? -1 : 1;
        return strcmp(x->id, y->id);
}

int service_list(const char *runs_dir, service_info **ret, size_t *ret_n, forge_error **err)
{
        cleanup_strv char **names = NULL;
        service_info *v = NULL;
        size_t n = 0, cap = 0;

        if (fs_dir_list_sorted(AT_FDCWD, runs_dir, &names, NULL) < 0) {
                if (errno != ENOENT)
                        return forge_error_make(err, errno, "list '%s'", runs_dir);
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        for (char **p = names; *p; p++) {
                service_info si;

                if (!is_id(*p) || load(runs_dir, *p, &si, NULL) < 0)
                        continue; /* being created or removed */
                if (n == cap) {
                        service_info *nv = realloc(v, (cap = cap ? 2 * cap : 16) * sizeof(*v));
                        if (nv == NULL) {
                                service_info_free(&si);
                                service_list_free(v, n);
                                return forge_error_make(err, ENOMEM, "list runs");
                        }
                        v = nv;
                }
                v[n++] = si;
        }
        if (n > 0)
                qsort(v, n, sizeof(*v), by_created);
        *ret = v;
        *ret_n = n;
        return 0;
}

bool service_name_valid(const char *name)
{
        size_t n = strlen(name);

        if (n == 0 || n > SERVICE_NAME_MAX || !isalnum((unsigned char)name[0]))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char)name[i]) && strchr("._-", name[i]) == NULL)
                        return false;
        return true;
}

int service_find(const char *runs_dir, const char *ref, service_info *ret, forge_error **err)
{
        cleanup_free char *link = NULL;
        cleanup_strv char **names = NULL;
        char target[SERVICE_ID_LEN + 8];
        const char *match = NULL;
        size_t len = strlen(ref);

        if (service_name_valid(ref) && asprintf(&link, "%s/names/%s", runs_dir, ref) >= 0) {
                ssize_t n = readlink(link, target, sizeof(target) - 1);

                if (n > 0) {
                        target[n] = '\0';
                        if (is_id(target))
                                return load(runs_dir, target, ret, err);
                }
        }
        if (is_id(ref))
                return load(runs_dir, ref, ret, err);
        if (len > 0 && len < SERVICE_ID_LEN &&
            fs_dir_list_sorted(AT_FDCWD, runs_dir, &names, NULL) == 0) {
                for (char **p = names; *p; p++) {
                        if (!is_id(*p) || strncmp(*p, ref, len) != 0)
                                continue;
                        if (match != NULL)
                                return forge_error_make(err, 0,
                                                        "'%s' matches more than one run: give more "
                                                        "of the id, or the name",
                                                        ref);
                        match = *p;
                }
                if (match != NULL)
                        return load(runs_dir, match, ret, err);
        }
        errno = ENOENT;
        forge_error_make(err, 0, "no run '%s' (forge ps -a lists them)", ref);
        return -1;
}

const char *service_state_text(const service_info *si, char *buf, size_t len)
{
        switch (si->state) {
        case SERVICE_UP:
                snprintf(buf, len, "up");
                break;
        case SERVICE_EXITED:
                snprintf(buf, len, "exited (%d)", si->status);
                break;
        default:
                snprintf(buf, len, "exited (unknown)");
                break;
        }
        return buf;
}

int run_dir_remove(const char *runs_dir, const char *id, const char *name, forge_error **err)
{
        cleanup_free char *dir = fs_path_join(runs_dir, id);

        if (name != NULL && name[0] != '\0') {
                cleanup_free char *link = NULL;
                char target[SERVICE_ID_LEN + 8];
                ssize_t n;

                if (asprintf(&link, "%s/names/%s", runs_dir, name) < 0)
                        return forge_error_make(err, ENOMEM, "remove");
                /* only our own name: another run may have taken it since */
                n = readlink(link, target, sizeof(target) - 1);
                if (n > 0) {
                        target[n] = '\0';
                        if (strcmp(target, id) == 0 && unlink(link) < 0 && errno != ENOENT)
                                return forge_error_make(err, errno, "remove the name '%s'", name);
                }
        }
        if (dir == NULL)
                return forge_error_make(err, ENOMEM, "remove");
        return fs_rm_rf(dir, err);
}

/* "/sys/fs/cgroup/..." of each hierarchy where pid's cgroup is not ours:
 * the cgroups made for a run (cgroup.c names them forge-*). */
static char *cgroup_dirs(pid_t pid)
{
        char path[64], line[4096], mine[8192] = "";
        cleanup_fclose FILE *self = fopen("/proc/self/cgroup", "re");
        cleanup_fclose FILE *f = NULL;
        char *out = NULL;
        size_t len = 0;
        FILE *mem;

        snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
        f = fopen(path, "re");
        if (f == NULL || self == NULL || (mem = open_memstream(&out, &len)) == NULL)
                return NULL;
        while (fgets(line, sizeof(line), self) && strlen(mine) + strlen(line) < sizeof(mine) - 1)
                strcat(mine, line);
        while (fgets(line, sizeof(line), f) != NULL) {
                char *ctrl = strchr(line, ':'), *rel, *base;

                if (strstr(mine, line) != NULL || ctrl == NULL ||
                    (rel = strchr(ctrl + 1, ':')) == NULL)
                        continue; /* one we share with the supervisor */
                *rel++ = '\0';
                ctrl++;
                rel[strcspn(rel, "\n")] = '\0';
                base = strrchr(rel, '/');
                if (rel[0] != '/' || strstr(rel, "/..") || base == NULL ||
                    strncmp(base, "/forge-", 7) != 0)
                        continue;
                if (strncmp(ctrl, "name=", 5) == 0)
                        ctrl += 5;
                fprintf(mem, "/sys/fs/cgroup%s%s%s\n", ctrl[0] ? "/" : "", ctrl, rel);
        }
        fclose(mem);
        return out;
}

void state_cgroups_record(int dirfd, pid_t init_pid)
{
        cleanup_free char *dirs = cgroup_dirs(init_pid);

        if (dirs != NULL && dirs[0] != '\0')
                fs_write_atomic(dirfd, "cgroups", dirs, strlen(dirs), 0644, NULL);
}

void state_cgroups_remove(const char *run_dir)
{
        cleanup_free char *path = fs_path_join(run_dir, "cgroups");
        cleanup_free char *buf = NULL;
        char *save = NULL;

        if (path == NULL || fs_read_all(AT_FDCWD, path, RECORD_MAX, &buf, NULL, NULL) < 0)
                return;
        for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                const char *base = strrchr(l, '/');

                /* only what we wrote: a run's own cgroup below /sys/fs/cgroup */
                if (strncmp(l, "/sys/fs/cgroup/", 15) != 0 || strstr(l, "/..") || base == NULL ||
                    strncmp(base, "/forge-", 7) != 0)
                        continue;
                rmdir(l); /* fails, harmlessly, while a process is in it */
        }
}
