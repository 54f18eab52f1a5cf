/* SPDX-License-Identifier: MIT */
/*
 * The stat floor for bench/rebuild.sh: walks each argument (a file or a
 * tree) and lstats every name in it, relative to its directory, as any tool
 * that decides "unchanged" from stat data must. Prints the number of names.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static unsigned long walk(int dfd)
{
        DIR *d = fdopendir(dfd);
        struct dirent *de;
        unsigned long n = 0;

        if (d == NULL)
                return 0;
        while ((de = readdir(d)) != NULL) {
                struct stat st;
                if (de->d_name[0] == '.' &&
                    (de->d_name[1] == '\0' || (de->d_name[1] == '.' && de->d_name[2] == '\0')))
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                n++;
                if (S_ISDIR(st.st_mode)) {
                        int sub = openat(dirfd(d), de->d_name,
                                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (sub >= 0)
                                n += walk(sub);
                }
        }
        closedir(d);
        return n;
}

int main(int argc, char **argv)
{
        unsigned long n = 0;

        for (int i = 1; i < argc; i++) {
                struct stat st;
                if (lstat(argv[i], &st) < 0)
                        return 1;
                n++;
                if (S_ISDIR(st.st_mode)) {
                        int fd = open(argv[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                        if (fd < 0)
                                return 1;
                        n += walk(fd);
                }
        }
        printf("%lu\n", n);
        return 0;
}
