/* qp_crash_files.c - fixed tables of mapped inputs and temp outputs, readable
 * from a signal handler (see qp_crash_files.h). */
#include "common/qp_crash_files.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#define MAX_MAPS 256 /* a split set of hundreds of files, opened at once */
#define MAX_TMPS 64
#define PATH_CAP 1024

typedef struct {
    atomic_int used; /* set last on register, cleared first on unregister */
    uintptr_t lo, hi;
    char path[PATH_CAP];
} map_slot;

typedef struct {
    atomic_int used;
    char path[PATH_CAP];
} tmp_slot;

static map_slot g_maps[MAX_MAPS];
static tmp_slot g_tmps[MAX_TMPS];
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

static void copy_path(char *dst, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= PATH_CAP)
        n = PATH_CAP - 1; /* a name cut short still points at the file */
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

int qp_crash_map_register(const void *addr, size_t len, const char *path)
{
    if (!addr || len == 0)
        return -1;
    int h = -1;
    pthread_mutex_lock(&g_mu);
    for (int i = 0; i < MAX_MAPS && h < 0; i++)
        if (!atomic_load(&g_maps[i].used)) {
            g_maps[i].lo = (uintptr_t)addr;
            g_maps[i].hi = (uintptr_t)addr + len;
            copy_path(g_maps[i].path, path);
            atomic_store(&g_maps[i].used, 1);
            h = i;
        }
    pthread_mutex_unlock(&g_mu);
    return h;
}

void qp_crash_map_unregister(int handle)
{
    if (handle < 0 || handle >= MAX_MAPS)
        return;
    pthread_mutex_lock(&g_mu);
    atomic_store(&g_maps[handle].used, 0);
    pthread_mutex_unlock(&g_mu);
}

int qp_crash_tmp_register(const char *path)
{
    if (!path)
        return -1;
    int h = -1;
    pthread_mutex_lock(&g_mu);
    for (int i = 0; i < MAX_TMPS && h < 0; i++)
        if (!atomic_load(&g_tmps[i].used)) {
            copy_path(g_tmps[i].path, path);
            atomic_store(&g_tmps[i].used, 1);
            h = i;
        }
    pthread_mutex_unlock(&g_mu);
    return h;
}

void qp_crash_tmp_unregister(int handle)
{
    if (handle < 0 || handle >= MAX_TMPS)
        return;
    pthread_mutex_lock(&g_mu);
    atomic_store(&g_tmps[handle].used, 0);
    pthread_mutex_unlock(&g_mu);
}

const char *qp_crash_map_find(const void *addr)
{
    const uintptr_t a = (uintptr_t)addr;
    for (int i = 0; i < MAX_MAPS; i++)
        if (atomic_load(&g_maps[i].used) && a >= g_maps[i].lo && a < g_maps[i].hi)
            return g_maps[i].path;
    return NULL;
}

void qp_crash_tmp_unlink_all(void)
{
    for (int i = 0; i < MAX_TMPS; i++)
        if (atomic_load(&g_tmps[i].used))
            (void)unlink(g_tmps[i].path);
}
