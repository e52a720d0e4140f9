/* SPDX-License-Identifier: MIT */
/* Internal: how many CPUs the process may run on. */
#ifndef BMAPKIT_CPUS_H
#define BMAPKIT_CPUS_H

/*
 * CPUs in the process's affinity mask (so that taskset limits the threads), else the
 * online count; at least 1.
 */
unsigned bk_cpu_count(void);

#endif
