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
 * computation as KeyLSTM.log_probs() before its log-softmax
 * (logrca.detectors.deeplog), in float32, from weights prepared once:
 *
 *   xproj  V x 4H  embedding @ W_ih^T + b_ih + b_hh (input gates per key)
 *   whh_t  H x 4H  W_hh^T
 *   wout_t H x V   the output layer's weight, transposed
 *   bout   V       its bias
 *
 * Gate order is torch's: input, forget, cell, output. The products are
 * written as sums over the hidden unit in the outer loop, so each
 * output accumulates in a fixed order and the inner loop (contiguous)
 * vectorises without reassociation. The unit tests compare the logits
 * with torch's.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline float
sigmoid(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

/* The logits after each window: out[b, :] for windows[b, :]. */
static int
run(const float *xproj, const float *whh_t, const float *wout_t,
    const float *bout, const int32_t *windows, float *out,
    Py_ssize_t n_windows, Py_ssize_t steps, Py_ssize_t hidden,
    Py_ssize_t vocab, float *work)
{
    Py_ssize_t gates = 4 * hidden;
    float *h = work, *c = work + hidden, *g = work + 2 * hidden;
    for (Py_ssize_t b = 0; b < n_windows; b++) {
        memset(h, 0, sizeof(float) * 2 * hidden);
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
            for (Py_ssize_t j = 0; j < hidden; j++) {
                float i = sigmoid(g[j]);
                float f = sigmoid(g[hidden + j]);
                float cell = tanhf(g[2 * hidden + j]);
                float o = sigmoid(g[3 * hidden + j]);
                c[j] = f * c[j] + i * cell;
                h[j] = o * tanhf(c[j]);
            }
        }
        float *logits = out + b * vocab;
        memcpy(logits, bout, sizeof(float) * vocab);
        for (Py_ssize_t m = 0; m < hidden; m++) {
            float hm = h[m];
            const float *row = wout_t + m * vocab;
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
    work = PyMem_RawMalloc(sizeof(float) * 6 * hidden);
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
