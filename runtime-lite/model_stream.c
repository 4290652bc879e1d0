/* model_stream.c - one layer of a model resident at a time (see model.h):
 * opening without reading the matrices, and acquiring / releasing them.
 *
 * A deferred Hugging Face model reads a matrix through the conversion plan
 * when it is acquired and frees it when released. A GGUF stays mapped; its
 * pages are brought in by use and, for a streamed model, dropped again at
 * release with madvise(MADV_DONTNEED): the mapping is private and read-only,
 * so the kernel re-reads the file if a page is touched again. Only whole
 * pages inside the tensor are dropped, never a neighbour's. */
#include "runtime-lite/model_internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

qp_status qp_rt_model_open_deferred(const char *path, qp_rt_model **out, qp_err *err)
{
    struct stat sb;
    *out = NULL;
    if (stat(path, &sb) != 0)
        return qp_err_io(err, path, errno, "cannot open model");
    if (S_ISDIR(sb.st_mode))
        return qp_rt_model_open_hf_deferred(path, out, err);
    qp_status st = qp_rt_model_open_gguf(path, out, err);
    if (st == QP_OK)
        (*out)->deferred = 1;
    return st;
}

int qp_rt_model_is_deferred(const qp_rt_model *m) { return m->deferred; }

static uint64_t tensor_bytes(const qp_rt_tensor *t) { return t->row_bytes * (uint64_t)t->n_rows; }

qp_status qp_rt_model_acquire(const qp_rt_model *m, const qp_rt_tensor *t, qp_rt_tensor *out, qp_err *err)
{
    *out = *t;
    if (!t->deferred)
        return QP_OK; /* mapped or owned: in place */
    void *data = NULL;
    qp_status st = qp_rt_model_hf_read(m, t, &data, err);
    if (st != QP_OK)
        return st;
    out->data = data;
    return QP_OK;
}

/* Drop the whole pages of a mapped tensor from the process. */
static void drop_pages(const void *data, uint64_t bytes)
{
    const long ps = sysconf(_SC_PAGESIZE);
    if (ps <= 0 || bytes == 0)
        return;
    const uintptr_t page = (uintptr_t)ps;
    const uintptr_t lo = ((uintptr_t)data + page - 1) & ~(page - 1);
    const uintptr_t hi = ((uintptr_t)data + (uintptr_t)bytes) & ~(page - 1);
    if (hi > lo)
        (void)madvise((void *)lo, (size_t)(hi - lo), MADV_DONTNEED); /* advisory: failure only costs memory */
}

void qp_rt_model_release(const qp_rt_model *m, qp_rt_tensor *t)
{
    if (!t->data)
        return;
    if (t->deferred)
        free((void *)t->data);
    else if (m->deferred && m->gguf)
        drop_pages(t->data, tensor_bytes(t));
    t->data = NULL;
}

/* The matrices of a layer, in one list for acquiring and releasing. */
static int layer_matrices(qp_rt_layer *L, qp_rt_tensor **v)
{
    qp_rt_tensor *all[] = {&L->attn_q,       &L->attn_k,        &L->attn_v,        &L->attn_output,
                           &L->ffn_gate,     &L->ffn_up,        &L->ffn_down,      &L->ffn_gate_inp,
                           &L->ffn_gate_exps, &L->ffn_up_exps, &L->ffn_down_exps};
    const int n = (int)(sizeof all / sizeof all[0]);
    memcpy(v, all, sizeof all);
    return n;
}

qp_status qp_rt_model_acquire_layer(const qp_rt_model *m, int64_t l, qp_rt_layer *out, uint64_t *bytes,
                                    qp_err *err)
{
    if (bytes)
        *bytes = 0;
    if (l < 0 || l >= m->cfg.n_layer)
        return qp_err_set(err, QP_ERR_USAGE, m->path, "layer %lld outside the model", (long long)l);
    const qp_rt_layer *src = &m->w.layers[l];
    *out = *src;
    qp_rt_tensor *v[16];
    const int n = layer_matrices(out, v);
    uint64_t total = 0;
    for (int i = 0; i < n; i++) {
        const qp_rt_tensor view = *v[i];
        qp_status st = qp_rt_model_acquire(m, &view, v[i], err);
        if (st != QP_OK) {
            for (int j = 0; j < i; j++)
                qp_rt_model_release(m, v[j]);
            for (int j = i; j < n; j++)
                v[j]->data = NULL; /* not acquired: nothing to release */
            return st;
        }
        if (v[i]->data)
            total += tensor_bytes(v[i]);
    }
    if (bytes)
        *bytes = total;
    return QP_OK;
}

void qp_rt_model_release_layer(const qp_rt_model *m, qp_rt_layer *L)
{
    qp_rt_tensor *v[16];
    const int n = layer_matrices(L, v);
    for (int i = 0; i < n; i++)
        qp_rt_model_release(m, v[i]);
}
