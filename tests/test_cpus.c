/* test_cpus.c - the default thread count honours a control group's CPU quota.
 *
 * Each case builds a small file tree in a temporary directory, as
 * gpt2_cpus_quota reads it under its root: proc/self/cgroup,
 * proc/self/mountinfo and the cgroup hierarchies' files.  The lines are
 * what Linux writes for cgroup v2 (Docker with its own cgroup namespace,
 * systemd slices), cgroup v1 (older Docker, a hybrid host) and both.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cpus.h"
#include "test_util.h"

/* Writes text to root/rel, making the folders on the way. */
static void put(const char *root, const char *rel, const char *text) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST) fail_msg("mkdir %s: %s", path, strerror(errno));
        *p = '/';
    }
    test_write_file(path, text, strlen(text));
}

typedef struct {
    const char *path, *text; /* under the root; {NULL, NULL} ends a list */
} File;

/* The quota read from a tree of /proc/self/cgroup, /proc/self/mountinfo
 * (either NULL: none) and the cgroup files. */
static int quota_of(const char *cgroup, const char *mountinfo, const File *files) {
    char root[1024];
    test_mkdtemp(root, sizeof root);
    if (cgroup) put(root, "proc/self/cgroup", cgroup);
    if (mountinfo) put(root, "proc/self/mountinfo", mountinfo);
    for (const File *f = files; f->path; f++) put(root, f->path, f->text);
    const int q = gpt2_cpus_quota(root);
    test_rmtree(root);
    return q;
}

#define V2_MOUNT "35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw\n"
#define V1_CPU_MOUNT "40 30 0:35 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct\n"
#define DOCKER_V1_MOUNT "40 30 0:35 /docker/0123abc /sys/fs/cgroup/cpu,cpuacct ro - cgroup cgroup rw,cpu,cpuacct\n"

/* The quota of a v2 tree whose process sits in the root, its cpu.max `text`. */
static int v2_root_quota(const char *text) {
    const File files[] = {{"sys/fs/cgroup/cpu.max", text}, {NULL, NULL}};
    return quota_of("0::/\n", V2_MOUNT, files);
}

static void test_v2_quota_rounds_up(void **state) {
    (void)state;
    assert_int_equal(v2_root_quota("50000 100000\n"), 1);
    assert_int_equal(v2_root_quota("150000 100000\n"), 2);
    assert_int_equal(v2_root_quota("400000 100000\n"), 4);
    assert_int_equal(v2_root_quota("400000 100000"), 4); /* no newline */
}

static void test_v2_least_quota_on_the_way_up(void **state) {
    (void)state;
    /* A service in a slice: the slice's quota binds, the service has none. */
    const File slice[] = {{"sys/fs/cgroup/work.slice/job.service/cpu.max", "max 100000\n"},
                          {"sys/fs/cgroup/work.slice/cpu.max", "300000 100000\n"},
                          {NULL, NULL}};
    assert_int_equal(quota_of("0::/work.slice/job.service\n", V2_MOUNT, slice), 3);
    /* The group's own quota is lower than its parent's. */
    const File lower[] = {{"sys/fs/cgroup/work.slice/job.service/cpu.max", "100000 100000\n"},
                          {"sys/fs/cgroup/work.slice/cpu.max", "300000 100000\n"},
                          {NULL, NULL}};
    assert_int_equal(quota_of("0::/work.slice/job.service\n", V2_MOUNT, lower), 1);
}

static void test_no_quota(void **state) {
    (void)state;
    assert_int_equal(v2_root_quota("max 100000\n"), 0);
    const File v1_unlimited[] = {{"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n"},
                                 {"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n"},
                                 {NULL, NULL}};
    assert_int_equal(quota_of("4:cpu,cpuacct:/\n", V1_CPU_MOUNT, v1_unlimited), 0);
    /* No cgroup files at all (not Linux, or /proc not mounted). */
    const File none[] = {{NULL, NULL}};
    assert_int_equal(quota_of(NULL, NULL, none), 0);
    /* A cpu.max where mountinfo shows no cgroup hierarchy. */
    const File unmounted[] = {{"sys/fs/cgroup/cpu.max", "100000 100000\n"}, {NULL, NULL}};
    assert_int_equal(quota_of("0::/\n", "22 1 0:21 / /proc rw - proc proc rw\n", unmounted), 0);
}

static void test_v1_quota_under_the_mount_root(void **state) {
    (void)state;
    /* Docker without a cgroup namespace: the mount shows the container's
     * group as its root, and /proc/self/cgroup names that group. */
    const File docker[] = {{"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "250000\n"},
                           {"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n"},
                           {NULL, NULL}};
    assert_int_equal(quota_of("12:memory:/docker/0123abc\n4:cpu,cpuacct:/docker/0123abc\n"
                              "1:name=systemd:/docker/0123abc\n",
                              DOCKER_V1_MOUNT, docker),
                     3);
    /* A group the mount does not show sets nothing. */
    assert_int_equal(quota_of("4:cpu,cpuacct:/other\n", DOCKER_V1_MOUNT, docker), 0);
    /* The controller is "cpu" itself, not a name that contains it: a
     * cpuset hierarchy is not the cpu controller's. */
    const File cpuset[] = {{"sys/fs/cgroup/cpuset/cpu.cfs_quota_us", "100000\n"},
                           {"sys/fs/cgroup/cpuset/cpu.cfs_period_us", "100000\n"},
                           {NULL, NULL}};
    assert_int_equal(
        quota_of("4:cpu:/\n3:cpuset:/\n", "33 30 0:30 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset\n", cpuset),
        0);
}

static void test_hybrid_host_and_escaped_mount_point(void **state) {
    (void)state;
    /* v2 mounted without the cpu controller beside a v1 cpu hierarchy whose
     * mount point has a space (\040 in mountinfo). */
    const File files[] = {{"sys/fs/cgroup/my cpu/user.slice/cpu.cfs_quota_us", "200000\n"},
                          {"sys/fs/cgroup/my cpu/user.slice/cpu.cfs_period_us", "100000\n"},
                          {NULL, NULL}};
    assert_int_equal(quota_of("0::/user.slice\n2:cpu:/user.slice\n",
                              "40 30 0:37 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
                              "31 30 0:28 / /sys/fs/cgroup/my\\040cpu rw,relatime - cgroup cgroup rw,cpu\n",
                              files),
                     2);
}

static void test_malformed_files_set_no_limit(void **state) {
    (void)state;
    const char *bad[] = {"abc 100000\n",    "0 100000\n", "-5 100000\n",       "100000 0\n",
                         "100000\n",        "",           "100000 100000 7\n", "99999999999999999999 100000\n",
                         " 100000 100000\n"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (v2_root_quota(bad[i]) != 0) fail_msg("cpu.max \"%s\" read as a quota", bad[i]);
    /* Lines cut short or with too few fields are skipped, not misread. */
    const File files[] = {{"sys/fs/cgroup/cpu.max", "100000 100000\n"}, {NULL, NULL}};
    assert_int_equal(quota_of("0::/\n4\n:\n", "35 24 0:30 / /sys/fs/cgroup - cgroup2\n- cgroup2\n\n", files), 0);
}

static void test_available_is_within_the_machine(void **state) {
    (void)state;
    const int n = gpt2_cpus_available();
    assert_true(n >= 1);
    const int quota = gpt2_cpus_quota("");
    if (quota > 0) assert_true(n <= quota);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v2_quota_rounds_up),
        cmocka_unit_test(test_v2_least_quota_on_the_way_up),
        cmocka_unit_test(test_no_quota),
        cmocka_unit_test(test_v1_quota_under_the_mount_root),
        cmocka_unit_test(test_hybrid_host_and_escaped_mount_point),
        cmocka_unit_test(test_malformed_files_set_no_limit),
        cmocka_unit_test(test_available_is_within_the_machine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
