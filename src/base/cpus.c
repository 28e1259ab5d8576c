/* cpus.c - see cpus.h. */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* sched_getaffinity and CPU_COUNT */
#endif
#include "cpus.h"

#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "numparse.h"

#define CPUS_PATH_MAX 4096 /* longer paths are not followed */
#define CPUS_LINE_MAX 8192 /* longer lines of mountinfo or cgroup are skipped */
#define CPUS_FIELDS 64     /* fields of a mountinfo line looked at */

typedef enum { CGROUP_V1, CGROUP_V2 } CgroupVersion;

/* The process's group in each hierarchy that can hold a CPU quota: v2's
 * unified one, and the v1 one the cpu controller is attached to. */
typedef struct {
    char v2[CPUS_PATH_MAX];
    char v1[CPUS_PATH_MAX];
    bool has_v2, has_v1;
} ProcessGroups;

/* Reads the first line of root + path into buf, without its newline.
 * False when the file is missing, unreadable or its line does not fit. */
static bool read_first_line(const char *root, const char *path, char *buf, size_t size) {
    char full[CPUS_PATH_MAX];
    int n = snprintf(full, sizeof full, "%s%s", root, path);
    if (n < 0 || (size_t)n >= sizeof full) return false;
    FILE *f = fopen(full, "r");
    if (!f) return false;
    bool ok = fgets(buf, (int)size, f) != NULL;
    fclose(f);
    if (!ok) return false;
    size_t len = strlen(buf);
    if (len > 0 && buf[len - 1] == '\n') buf[--len] = '\0';
    else if (len + 1 == size) return false; /* cut short */
    return true;
}

/* Whether the comma-separated list holds `item`. */
static bool list_has(const char *list, const char *item) {
    const size_t n = strlen(item);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        const size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && memcmp(p, item, n) == 0) return true;
        if (!end) break;
        p = end + 1;
    }
    return false;
}

/* Copies s to out (of CPUS_PATH_MAX bytes); false when it does not fit. */
static bool copy_path(char *out, const char *s) {
    const size_t len = strlen(s);
    if (len >= CPUS_PATH_MAX) return false;
    memcpy(out, s, len + 1);
    return true;
}

/* /proc/self/cgroup: "0::PATH" (v2) and "ID:CONTROLLERS:PATH" (v1). */
static void read_process_groups(const char *root, ProcessGroups *g) {
    memset(g, 0, sizeof *g);
    char full[CPUS_PATH_MAX];
    int n = snprintf(full, sizeof full, "%s/proc/self/cgroup", root);
    if (n < 0 || (size_t)n >= sizeof full) return;
    FILE *f = fopen(full, "r");
    if (!f) return;
    char line[CPUS_LINE_MAX];
    while (fgets(line, sizeof line, f)) {
        char *nl = strchr(line, '\n');
        if (!nl) { /* too long: skip the rest of it */
            int c;
            while ((c = fgetc(f)) != EOF && c != '\n') {
            }
            continue;
        }
        *nl = '\0';
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2 || c2[1] != '/') continue;
        *c1 = *c2 = '\0';
        const char *id = line, *controllers = c1 + 1, *path = c2 + 1;
        if (strcmp(id, "0") == 0 && *controllers == '\0') g->has_v2 = copy_path(g->v2, path);
        else if (list_has(controllers, "cpu")) g->has_v1 = copy_path(g->v1, path);
    }
    fclose(f);
}

/* Undoes mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s) {
    char *out = s;
    for (const char *p = s; *p;) {
        if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' && p[3] <= '7') {
            *out++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
            p += 4;
        } else {
            *out++ = *p++;
        }
    }
    *out = '\0';
}

/* A quota as "QUOTA PERIOD" (microseconds, both positive): whole CPUs
 * rounded up, or 0 when quota is "max" or -1 (none) or not a quota. */
static int quota_cpus(const char *quota, const char *period) {
    int64_t q, p;
    if (!gpt2_parse_int(quota, 1, INT64_MAX, &q) || !gpt2_parse_int(period, 1, INT64_MAX, &p)) return 0;
    const int64_t cpus = q / p + (q % p != 0);
    return cpus > INT_MAX ? INT_MAX : (int)cpus;
}

/* The quota set on the group at root + dir itself, or 0. */
static int group_quota(const char *root, const char *dir, CgroupVersion version) {
    char path[CPUS_PATH_MAX], line[256];
    if (version == CGROUP_V2) {
        int n = snprintf(path, sizeof path, "%s/cpu.max", dir);
        if (n < 0 || (size_t)n >= sizeof path || !read_first_line(root, path, line, sizeof line)) return 0;
        char *space = strchr(line, ' ');
        if (!space) return 0;
        *space = '\0';
        return quota_cpus(line, space + 1);
    }
    char period[256];
    int n = snprintf(path, sizeof path, "%s/cpu.cfs_quota_us", dir);
    if (n < 0 || (size_t)n >= sizeof path || !read_first_line(root, path, line, sizeof line)) return 0;
    n = snprintf(path, sizeof path, "%s/cpu.cfs_period_us", dir);
    if (n < 0 || (size_t)n >= sizeof path || !read_first_line(root, path, period, sizeof period)) return 0;
    return quota_cpus(line, period);
}

/* The least quota from the group `group` up to the hierarchy's mount at
 * mount_point, whose root is mount_root; 0 for none, or when the group is
 * not within what the mount shows. */
static int hierarchy_quota(const char *root, const char *mount_root, const char *mount_point, const char *group,
                           CgroupVersion version) {
    const size_t root_len = strcmp(mount_root, "/") == 0 ? 0 : strlen(mount_root);
    if (strncmp(group, mount_root, root_len) != 0 || (group[root_len] != '\0' && group[root_len] != '/')) return 0;
    const char *below = group + root_len;
    if (strcmp(below, "/") == 0) below = "";
    char dir[CPUS_PATH_MAX];
    int n = snprintf(dir, sizeof dir, "%s%s", strcmp(mount_point, "/") == 0 ? "" : mount_point, below);
    if (n < 0 || (size_t)n >= sizeof dir) return 0;
    const size_t top = strlen(dir) - strlen(below); /* the mount point's length in dir */
    int least = 0;
    for (;;) {
        const int q = group_quota(root, dir, version);
        if (q > 0 && (least == 0 || q < least)) least = q;
        if (strlen(dir) <= top) break;
        char *slash = strrchr(dir + top, '/');
        if (!slash) break;
        *slash = '\0';
    }
    return least;
}

int gpt2_cpus_quota(const char *root) {
#if defined(__linux__)
    ProcessGroups groups;
    read_process_groups(root, &groups);
    if (!groups.has_v1 && !groups.has_v2) return 0;
    char full[CPUS_PATH_MAX];
    int n = snprintf(full, sizeof full, "%s/proc/self/mountinfo", root);
    if (n < 0 || (size_t)n >= sizeof full) return 0;
    FILE *f = fopen(full, "r");
    if (!f) return 0;
    int least = 0;
    char line[CPUS_LINE_MAX];
    while (fgets(line, sizeof line, f)) {
        char *nl = strchr(line, '\n');
        if (!nl) {
            int c;
            while ((c = fgetc(f)) != EOF && c != '\n') {
            }
            continue;
        }
        *nl = '\0';
        /* ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS */
        char *field[CPUS_FIELDS];
        size_t n_fields = 0;
        for (char *save = NULL, *tok = strtok_r(line, " ", &save); tok && n_fields < CPUS_FIELDS;
             tok = strtok_r(NULL, " ", &save))
            field[n_fields++] = tok;
        size_t dash = 6;
        while (dash < n_fields && strcmp(field[dash], "-") != 0) dash++;
        if (dash + 3 >= n_fields) continue;
        const char *fstype = field[dash + 1], *super = field[dash + 3];
        CgroupVersion version;
        const char *group;
        if (strcmp(fstype, "cgroup2") == 0 && groups.has_v2) {
            version = CGROUP_V2;
            group = groups.v2;
        } else if (strcmp(fstype, "cgroup") == 0 && groups.has_v1 && list_has(super, "cpu")) {
            version = CGROUP_V1;
            group = groups.v1;
        } else {
            continue;
        }
        unescape(field[3]);
        unescape(field[4]);
        const int q = hierarchy_quota(root, field[3], field[4], group, version);
        if (q > 0 && (least == 0 || q < least)) least = q;
    }
    fclose(f);
    return least;
#else
    (void)root;
    return 0;
#endif
}

int gpt2_cpus_available(void) {
    int n = 0;
#if defined(__linux__) && defined(CPU_COUNT)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
#endif
    if (n <= 0) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        n = online > 0 && online < INT_MAX ? (int)online : 1;
    }
    const int quota = gpt2_cpus_quota("");
    return quota > 0 && quota < n ? quota : n;
}
