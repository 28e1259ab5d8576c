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

#include "fileio.h"
#include "numparse.h"
#include "strbuf.h"

#define CPUS_PATH_MAX 4096       /* longer paths are not followed */
#define CPUS_FILE_MAX (1u << 20) /* larger files (mountinfo, cgroup) are not read */
#define CPUS_FIELDS 64           /* fields of a mountinfo line looked at */

typedef enum { CGROUP_V1, CGROUP_V2 } CgroupVersion;

/* Reads the whole file root + path into out, replacing what it held.
 * False when the file is missing, unreadable or too large. */
static bool read_under(const char *root, const char *path, StrBuf *out) {
    char full[CPUS_PATH_MAX], err[8]; /* the reason is not reported */
    gpt2_strbuf_clear(out);
    int n = snprintf(full, sizeof full, "%s%s", root, path);
    return n >= 0 && (size_t)n < sizeof full && gpt2_fileio_read_file_max(full, CPUS_FILE_MAX, out, err, sizeof err);
}

/* Cuts the next line off *text in place and returns it; NULL at the end. */
static char *next_line(char **text) {
    if (**text == '\0') return NULL;
    char *line = *text, *nl = strchr(line, '\n');
    if (nl) {
        *nl = '\0';
        *text = nl + 1;
    } else {
        *text = line + strlen(line);
    }
    return line;
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

/* The process's group in each hierarchy that can hold a CPU quota, from
 * /proc/self/cgroup ("0::PATH" for v2, "ID:CONTROLLERS:PATH" for v1, the
 * one whose controllers include cpu), pointing into `text`; NULL where
 * there is none. */
static void find_groups(char *text, const char **v2, const char **v1) {
    *v2 = *v1 = NULL;
    for (char *line; (line = next_line(&text)) != NULL;) {
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2 || c2[1] != '/') continue;
        *c1 = *c2 = '\0';
        const char *id = line, *controllers = c1 + 1, *path = c2 + 1;
        if (strcmp(id, "0") == 0 && *controllers == '\0') *v2 = path;
        else if (list_has(controllers, "cpu")) *v1 = path;
    }
}

/* The lesser of two quotas, 0 standing for none. */
static int least_quota(int a, int b) { return a == 0 || (b != 0 && b < a) ? b : a; }

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

/* The quota set on the group at root + dir itself, or 0; buf is scratch. */
static int group_quota(const char *root, const char *dir, CgroupVersion version, StrBuf *buf) {
    char path[CPUS_PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/%s", dir, version == CGROUP_V2 ? "cpu.max" : "cpu.cfs_period_us");
    if (n < 0 || (size_t)n >= sizeof path || !read_under(root, path, buf)) return 0;
    char *text = buf->data, *line = next_line(&text);
    if (!line) return 0;
    if (version == CGROUP_V2) { /* "QUOTA PERIOD" */
        char *space = strchr(line, ' ');
        if (!space) return 0;
        *space = '\0';
        return quota_cpus(line, space + 1);
    }
    char period[32];
    if (strlen(line) >= sizeof period) return 0;
    strcpy(period, line);
    n = snprintf(path, sizeof path, "%s/cpu.cfs_quota_us", dir);
    if (n < 0 || (size_t)n >= sizeof path || !read_under(root, path, buf)) return 0;
    text = buf->data;
    line = next_line(&text);
    return line ? quota_cpus(line, period) : 0;
}

/* The least quota from the group `group` up to the hierarchy's mount at
 * mount_point, whose root is mount_root; 0 for none, or when the group is
 * not within what the mount shows. */
static int hierarchy_quota(const char *root, const char *mount_root, const char *mount_point, const char *group,
                           CgroupVersion version, StrBuf *buf) {
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
        least = least_quota(least, group_quota(root, dir, version, buf));
        if (strlen(dir) <= top) break;
        char *slash = strrchr(dir + top, '/');
        if (!slash) break;
        *slash = '\0';
    }
    return least;
}

int gpt2_cpus_quota(const char *root) {
#if defined(__linux__)
    StrBuf groups = {0}, mounts = {0}, scratch = {0};
    const char *v2 = NULL, *v1 = NULL;
    if (read_under(root, "/proc/self/cgroup", &groups)) find_groups(groups.data, &v2, &v1);
    int least = 0;
    char *text = (v2 || v1) && read_under(root, "/proc/self/mountinfo", &mounts) ? mounts.data : NULL;
    for (char *line; text && (line = next_line(&text)) != NULL;) {
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
        if (strcmp(fstype, "cgroup2") == 0 && v2) {
            version = CGROUP_V2;
            group = v2;
        } else if (strcmp(fstype, "cgroup") == 0 && v1 && list_has(super, "cpu")) {
            version = CGROUP_V1;
            group = v1;
        } else {
            continue;
        }
        unescape(field[3]);
        unescape(field[4]);
        least = least_quota(least, hierarchy_quota(root, field[3], field[4], group, version, &scratch));
    }
    gpt2_strbuf_free(&groups);
    gpt2_strbuf_free(&mounts);
    gpt2_strbuf_free(&scratch);
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
