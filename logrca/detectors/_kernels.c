/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain
 * a copy of the License at
 *
 *      http://www.apache.org/licenses/LICENSE-2.0
 *
 * Unless required by applicable law or agreed to in writing, software
 * distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
 * WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
 * License for the specific language governing permissions and limitations
 * under the License.
 */

/*
 * Optional kernel of logrca.detectors.deeplog: the next-key logits of a
 * few windows through a one-layer LSTM and its output layer.
 *
 * The live scoring path asks for one or two windows at a time, where the
 * per-call overhead of torch (tensor creation, dispatch, ten small
 * matrix products) costs several times the arithmetic. The same
 * computation as KeyLSTM's forward (logrca.detectors.deeplog), in
 * float32, from weights prepared once:
 *
 *   xproj  V x 4H  embedding @ W_ih^T + b_ih + b_hh (input gates per key)
 *   whh_t  H x 4H  W_hh^T
 *   wout_t H x V   the output layer's weight, transposed
 *   bout   V       its bias
 *
 * Gate order is torch's: input, forget, cell, output. The products are
 * written as sums over the hidden unit in the outer loop, so each
 * output accumulates in a fixed order and the inner loop (contiguous)
 * vectorises without reassociation; exp and tanh are approximated to
 * about 1e-7 (see exp_approx). The unit tests compare the logits with
 * torch's.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * exp(x) for the gates: Cephes' expf (range reduction to |r| <= ln 2 / 2,
 * a degree-6 polynomial; relative error about 1e-7 against libm), written
 * without calls or branches so that the gate loops vectorise (libm's
 * expf and tanhf, called one value at a time, took more than half of the
 * kernel's time). The clamps keep 2^n a normal float.
 */
static inline float
exp_approx(float x)
{
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    float z = x * 1.44269504088896341f + 0.5f;
    int32_t n = (int32_t)z;
    n -= (z < (float)n);                    /* floor */
    float fn = (float)n;
    float r = x - fn * 0.693359375f - fn * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float e = p * r * r + r + 1.0f;
    int32_t bits = (n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return e * scale;
}

static inline float
sigmoid(float x)
{
    return 1.0f / (1.0f + exp_approx(-x));
}

static inline float
tanh_approx(float x)
{
    return 2.0f / (1.0f + exp_approx(-2.0f * x)) - 1.0f;
}

/*
 * The logits after each window: out[b, :] for windows[b, :]. The hidden
 * states of all windows are computed first, then the output layer reads
 * its weight (H x V, the largest array) once for all of them.
 * Built for AVX2 too where gcc and glibc can dispatch at load time
 * (ifunc).
 */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) \
    && defined(__linux__) && defined(__GLIBC__)
__attribute__((target_clones("avx2", "default")))
#endif
static int
run(const float *xproj, const float *whh_t, const float *wout_t,
    const float *bout, const int32_t *windows, float *out,
    Py_ssize_t n_windows, Py_ssize_t steps, Py_ssize_t hidden,
    Py_ssize_t vocab, float *work)
{
    Py_ssize_t gates = 4 * hidden;
    float *c = work, *g = work + hidden, *hs = work + 5 * hidden;
    for (Py_ssize_t b = 0; b < n_windows; b++) {
        float *h = hs + b * hidden;
        memset(h, 0, sizeof(float) * hidden);
        memset(c, 0, sizeof(float) * hidden);
        for (Py_ssize_t t = 0; t < steps; t++) {
            int32_t key = windows[b * steps + t];
            if (key < 0 || key >= vocab)
                return -1;
            memcpy(g, xproj + (Py_ssize_t)key * gates,
                   sizeof(float) * gates);
            for (Py_ssize_t m = 0; m < hidden; m++) {
                float hm = h[m];
                const float *row = whh_t + m * gates;
                if (hm == 0.0f)
                    continue;
                for (Py_ssize_t j = 0; j < gates; j++)
                    g[j] += row[j] * hm;
            }
            /* input and forget gates, cell input, output gate */
            for (Py_ssize_t j = 0; j < 2 * hidden; j++)
                g[j] = sigmoid(g[j]);
            for (Py_ssize_t j = 2 * hidden; j < 3 * hidden; j++)
                g[j] = tanh_approx(g[j]);
            for (Py_ssize_t j = 3 * hidden; j < gates; j++)
                g[j] = sigmoid(g[j]);
            for (Py_ssize_t j = 0; j < hidden; j++)
                c[j] = g[hidden + j] * c[j] + g[j] * g[2 * hidden + j];
            for (Py_ssize_t j = 0; j < hidden; j++)
                h[j] = g[3 * hidden + j] * tanh_approx(c[j]);
        }
        memcpy(out + b * vocab, bout, sizeof(float) * vocab);
    }
    for (Py_ssize_t m = 0; m < hidden; m++) {
        const float *row = wout_t + m * vocab;
        for (Py_ssize_t b = 0; b < n_windows; b++) {
            float hm = hs[b * hidden + m];
            float *logits = out + b * vocab;
            for (Py_ssize_t v = 0; v < vocab; v++)
                logits[v] += row[v] * hm;
        }
    }
    return 0;
}

static int
check(Py_buffer *buf, Py_ssize_t items, const char *what)
{
    if (buf->len != items * 4) {
        PyErr_Format(PyExc_ValueError,
                     "lstm_logits: %s has %zd bytes, expected %zd", what,
                     buf->len, items * 4);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(lstm_logits_doc,
"lstm_logits(xproj, whh_t, wout_t, bout, windows, out, steps, hidden)\n\n"
"Write into ``out`` (B x V float32) the next-key logits after each of\n"
"the B windows (B x steps int32 keys). The weights are C-contiguous\n"
"float32 buffers laid out as the module comment says.");

static PyObject *
lstm_logits(PyObject *self, PyObject *args)
{
    Py_buffer xproj, whh_t, wout_t, bout, windows, out;
    Py_ssize_t steps, hidden;
    PyObject *result = NULL;
    float *work = NULL;
    int status = 0;

    if (!PyArg_ParseTuple(args, "y*y*y*y*y*w*nn", &xproj, &whh_t, &wout_t,
                          &bout, &windows, &out, &steps, &hidden))
        return NULL;
    Py_ssize_t vocab = bout.len / 4;
    Py_ssize_t n_windows = steps > 0 ? windows.len / 4 / steps : 0;
    if (hidden <= 0 || steps <= 0 || vocab <= 0) {
        PyErr_SetString(PyExc_ValueError,
                        "lstm_logits: steps, hidden and V must be > 0");
        goto done;
    }
    if (check(&xproj, vocab * 4 * hidden, "xproj")
        || check(&whh_t, hidden * 4 * hidden, "whh_t")
        || check(&wout_t, hidden * vocab, "wout_t")
        || check(&windows, n_windows * steps, "windows")
        || check(&out, n_windows * vocab, "out"))
        goto done;
    work = PyMem_RawMalloc(sizeof(float) * (5 + n_windows) * hidden);
    if (work == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    status = run(xproj.buf, whh_t.buf, wout_t.buf, bout.buf, windows.buf,
                 out.buf, n_windows, steps, hidden, vocab, work);
    Py_END_ALLOW_THREADS
    if (status < 0) {
        PyErr_SetString(PyExc_ValueError,
                        "lstm_logits: a key is outside the vocabulary");
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    PyMem_RawFree(work);
    PyBuffer_Release(&xproj);
    PyBuffer_Release(&whh_t);
    PyBuffer_Release(&wout_t);
    PyBuffer_Release(&bout);
    PyBuffer_Release(&windows);
    PyBuffer_Release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"lstm_logits", lstm_logits, METH_VARARGS, lstm_logits_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "logrca.detectors._kernels",
    "Optional compiled kernels of the learned detectors.", -1, methods,
};

PyMODINIT_FUNC
PyInit__kernels(void)
{
    return PyModule_Create(&module);
}
