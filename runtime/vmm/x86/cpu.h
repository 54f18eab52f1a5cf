/* SPDX-License-Identifier: MIT */
#pragma once

#include <linux/kvm.h>
#include <stdbool.h>

#include "runtime/vmm/vmm-internal.h"

struct kvm_cpuid2 *vmm_cpu_supported_cpuid(int kvm_fd, forge_error **err);
/* Adjusts a copy of the supported CPUID for vCPU id of ncpus. */
void vmm_cpu_cpuid_for(struct kvm_cpuid2 *c, unsigned id, unsigned ncpus, bool tsc_deadline);
int vmm_cpu_setup_common(int vcpu_fd, unsigned id, struct kvm_cpuid2 *cpuid, forge_error **err);
int vmm_cpu_setup_boot(int vcpu_fd, uint64_t entry, forge_error **err);
