/* SPDX-License-Identifier: MIT */
/* Capabilities: the bounding set and, for root, the effective/permitted sets. */
#include <errno.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/container/container-internal.h"

/* crun's default (`crun spec`): what a container gets. */
static const int crun_default[] = {
    CAP_AUDIT_WRITE,
    CAP_KILL,
    CAP_NET_BIND_SERVICE,
};

/* Docker's default set: `run:` build steps install packages (chown, setuid
 * helpers, mknod), which crun's minimal set does not allow. */
static const int docker_default[] = {
    CAP_CHOWN,   CAP_DAC_OVERRIDE, CAP_FSETID,           CAP_FOWNER,
    CAP_MKNOD,   CAP_NET_RAW,      CAP_SETGID,           CAP_SETUID,
    CAP_SETFCAP, CAP_SETPCAP,      CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT,
    CAP_KILL,    CAP_AUDIT_WRITE,
};

uint64_t ctr_caps_mask(runtime_caps set)
{
        const int *caps = set == RUNTIME_CAPS_BUILD ? docker_default : crun_default;
        size_t n = set == RUNTIME_CAPS_BUILD ? sizeof(docker_default) / sizeof(int)
                                             : sizeof(crun_default) / sizeof(int);
        uint64_t m = 0;

        for (size_t i = 0; i < n; i++)
                m |= 1ULL << caps[i];
        return m;
}

int ctr_caps_bounding_drop(runtime_caps set)
{
        uint64_t keep = ctr_caps_mask(set);

        for (int c = 0; c < 64; c++) {
                if (keep & (1ULL << c))
                        continue;
                if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) {
                        if (errno == EINVAL) /* beyond the kernel's last cap */
                                break;
                        return -errno;
                }
        }
        return 0;
}

int ctr_caps_apply(runtime_caps set, bool root)
{
        struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct data[2] = {{0}};
        uint64_t keep = root ? ctr_caps_mask(set) : 0;

        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
                return -errno;
        data[0].effective = data[0].permitted = (uint32_t)keep;
        data[1].effective = data[1].permitted = (uint32_t)(keep >> 32);
        if (syscall(SYS_capset, &hdr, data) < 0)
                return -errno;
        return 0;
}
