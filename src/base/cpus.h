/* cpus.h - how many CPUs this process may use.
 *
 * Owns the answer the thread count defaults to: the CPUs of the process's
 * affinity mask (taskset, a container's cpuset), capped by the CPU quota
 * of its control group (docker --cpus, systemd's CPUQuota=, a Kubernetes
 * CPU limit).  A quota is not an affinity: a process limited to 2 CPUs of
 * a 64-CPU machine still sees all 64 in its mask, and 64 threads there
 * spend most of each period throttled.
 *
 * The quota is read the way the kernel applies it, on Linux only: cgroup
 * v2's cpu.max ("QUOTA PERIOD", or "max PERIOD" for none) or cgroup v1's
 * cpu.cfs_quota_us and cpu.cfs_period_us (-1 for none), in the process's
 * own group (/proc/self/cgroup) and every group above it up to the
 * hierarchy's mount (/proc/self/mountinfo), whichever is least.  A file
 * that is missing, unreadable or malformed sets no limit.
 */
#ifndef GPT2_CPUS_H
#define GPT2_CPUS_H

/* The CPUs this process may use: its affinity mask's count (or the online
 * CPUs where there is no mask), at most its quota rounded up.  At least 1. */
int gpt2_cpus_available(void);

/* The quota alone, in whole CPUs rounded up (1.5 CPUs: 2), or 0 for none.
 * root is prefixed to every path read ("" for this system; a directory
 * holding proc/self/... and the cgroup tree, in tests). */
int gpt2_cpus_quota(const char *root);

#endif
