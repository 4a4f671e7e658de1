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
 * Optional accelerator of logrca.parsing.oslo_log.RecordReader.read(),
 * logrca.parsing.shape.ShapeParser.add(),
 * logrca.agent.sessions.Sessionizer.add(), (its common case)
 * logrca.detectors.baseline.BaselineDetector.observe(),
 * logrca.manage.replay.merge_by_time() and the loops of
 * logrca.agent.pipeline.Pipeline.process_many().
 *
 * The pure-Python code stays the reference: everything here mirrors a
 * Python function (named in the comments) and gives the same results, the
 * same reader counters and the same miner state. Only the common cases are
 * done in C; anything else calls the Python code back:
 *
 *   - reader: lines that are ASCII, fit max_line_length and carry an
 *     oslo.log header (new records and traceback lines repeating the
 *     header) or are bare continuation lines are handled here; lines too
 *     long, not UTF-8, non-ASCII, JSON-looking, binary, blank or unparsed
 *     go to RecordReader.feed() / _line() / _other() / _unparsed(); the
 *     masking of secrets runs here only as far as deciding that a text
 *     holds no secret-like word (logrca.masking.mask's first test),
 *     records with continuation lines are completed by
 *     RecordReader._complete();
 *   - miner: the message cache, splitting, the token cache, the shape
 *     look-up and token masking by the shortcuts of shape.mask_token() on
 *     ASCII tokens; tokens the shortcuts cannot decide go to
 *     shape.mask_token_full(), new shapes to ShapeParser._learn().
 *
 * Python's str.split(), str.isdigit() and the re module's \d, \s and \S
 * are Unicode-aware: the C rules here are only applied to ASCII text, for
 * which they are exact; non-ASCII text always goes to the Python code.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <string.h>

/* ---------------------------------------------------------------------
 * Small helpers
 * --------------------------------------------------------------------- */

/* Python's str.isspace() / re's \s for ASCII: \t \n \v \f \r, \x1c-\x1f
 * and space (checked against CPython in the unit tests). */
static unsigned char is_space[256];
/* oslo_log._BINARY_RE: [\x00-\x08\x0b\x0c\x0e-\x1f\x7f]. */
static unsigned char is_binary[256];
static unsigned char is_hex[256];
/* shape._PUNCT: the characters str.strip() takes off a token's ends. */
static unsigned char is_punct[256];

#define IS_DIGIT(c) ((unsigned char)((c) - '0') < 10)
#define IS_ALPHA(c) ((unsigned char)(((c) | 0x20) - 'a') < 26)

static void
init_tables(void)
{
    int c;
    const char *punct = "'\"()[]{},;:.<>";
    for (c = 0; c < 256; c++) {
        is_space[c] = (c >= 9 && c <= 13) || (c >= 28 && c <= 32);
        is_binary[c] = (c <= 8) || c == 11 || c == 12 ||
                       (c >= 14 && c <= 31) || c == 127;
        is_hex[c] = IS_DIGIT(c) || (c >= 'a' && c <= 'f') ||
                    (c >= 'A' && c <= 'F');
    }
    for (; *punct; punct++)
        is_punct[(unsigned char)*punct] = 1;
}

/* True when the n bytes at s are all ASCII. */
static int
all_ascii(const char *s, Py_ssize_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (w & 0x8080808080808080ULL)
            return 0;
    }
    for (; i < n; i++)
        if (p[i] & 0x80)
            return 0;
    return 1;
}

/* A new str of the n ASCII bytes at s. */
static PyObject *
ascii_str(const char *s, Py_ssize_t n)
{
    PyObject *o = PyUnicode_New(n, 127);
    if (o != NULL && n)
        memcpy(PyUnicode_DATA(o), s, n);
    return o;
}

/* o == the n ASCII bytes at s (o a str; a non-ASCII str never is). */
static int
str_eq(PyObject *o, const char *s, Py_ssize_t n)
{
    return (PyUnicode_Check(o) && PyUnicode_IS_ASCII(o) &&
            PyUnicode_GET_LENGTH(o) == n &&
            memcmp(PyUnicode_DATA(o), s, n) == 0);
}

static int
starts_with(const char *s, Py_ssize_t n, const char *w, Py_ssize_t wn)
{
    return n >= wn && memcmp(s, w, wn) == 0;
}

/* Adds n to the int d[key] (a reader counter). */
static int
dict_add(PyObject *d, PyObject *key, Py_ssize_t n)
{
    PyObject *old, *inc, *sum;
    int rc;
    old = PyObject_GetItem(d, key);
    if (old == NULL)
        return -1;
    inc = PyLong_FromSsize_t(n);
    if (inc == NULL) {
        Py_DECREF(old);
        return -1;
    }
    sum = PyNumber_InPlaceAdd(old, inc);
    Py_DECREF(old);
    Py_DECREF(inc);
    if (sum == NULL)
        return -1;
    rc = PyObject_SetItem(d, key, sum);
    Py_DECREF(sum);
    return rc;
}

/* Interned names. */
static PyObject *s_current, *s_key, *s_ctx, *s_in_traceback, *s_last_ts;
static PyObject *s_stats, *s_ctx_cache, *s_stream, *s_host;
static PyObject *s_max_line_length, *s_feed, *s_line, *s_other;
static PyObject *s_unparsed, *s_complete, *s_lines, *s_records;
static PyObject *s_continuation, *s_dropped, *s_blank;
static PyObject *s_messages, *s_tokens, *s_shapes, *s_learn, *s_size;
static PyObject *s_variables, *s_id, *s_template;
static PyObject *s_space, *s_debug;

/* ---------------------------------------------------------------------
 * Reader: configuration (oslo_log's module globals)
 * --------------------------------------------------------------------- */

/* oslo_log's globals dict, given by setup_reader(). */
static PyObject *reader_ns = NULL;

/* The LogRecord fields in dataclass order; records are built by writing
 * their slots (what the dataclass __init__ does, at a fraction of the
 * cost) when every field is a plain slot, else by calling the class. */
#define N_FIELDS 20
enum {
    F_STREAM, F_TIMESTAMP, F_LEVEL, F_LOGGER, F_MESSAGE, F_PID, F_HOST,
    F_REQUEST_ID, F_GLOBAL_REQUEST_ID, F_USER_ID, F_PROJECT_ID,
    F_INSTANCE_ID, F_LOCATION, F_EXTRA, F_TEMPLATE_ID, F_TEMPLATE,
    F_PARAMS, F_KIND, F_LINENO, F_EVENT_TYPE
};
static const char *field_names[N_FIELDS] = {
    "stream", "timestamp", "level", "logger", "message", "pid", "host",
    "request_id", "global_request_id", "user_id", "project_id",
    "instance_id", "location", "extra", "template_id", "template",
    "params", "kind", "lineno", "event_type"
};
static PyObject *field_strs[N_FIELDS];
static PyTypeObject *record_type = NULL;
static Py_ssize_t field_offsets[N_FIELDS];
static int record_slots = 0;

/* oslo_log._TRACEBACK. */
static char traceback_text[64];
static Py_ssize_t traceback_len = 0;

/* The levels of oslo_log._HEADER in the pattern's order (the alternation
 * tries them in this order: WARNING before WARN). */
#define N_LEVELS 9
static const char *level_names[N_LEVELS] = {
    "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "TRACE", "AUDIT",
    "WARN", "NOTICE"
};
static Py_ssize_t level_lens[N_LEVELS];
static PyObject *level_strs[N_LEVELS];

static PyObject *
setup_reader(PyObject *module, PyObject *args)
{
    PyObject *ns, *tb, *type, *slots;
    int i, ok = 1;
    if (!PyArg_ParseTuple(args, "O!:setup_reader", &PyDict_Type, &ns))
        return NULL;
    tb = PyDict_GetItemString(ns, "_TRACEBACK");
    type = PyDict_GetItemString(ns, "_LogRecord");
    if (tb == NULL || !PyUnicode_Check(tb) || !PyUnicode_IS_ASCII(tb) ||
            PyUnicode_GET_LENGTH(tb) >= (Py_ssize_t)sizeof(traceback_text)
            || type == NULL || !PyType_Check(type)) {
        PyErr_SetString(PyExc_ValueError, "not the oslo_log module");
        return NULL;
    }
    traceback_len = PyUnicode_GET_LENGTH(tb);
    memcpy(traceback_text, PyUnicode_DATA(tb), traceback_len);
    /* Slots in field order, each a plain object slot. */
    slots = PyObject_GetAttrString(type, "__slots__");
    if (slots == NULL) {
        PyErr_Clear();
        ok = 0;
    }
    else {
        ok = PyTuple_Check(slots) && PyTuple_GET_SIZE(slots) == N_FIELDS;
        for (i = 0; ok && i < N_FIELDS; i++) {
            PyObject *descr;
            ok = PyUnicode_Check(PyTuple_GET_ITEM(slots, i)) &&
                 PyUnicode_Compare(PyTuple_GET_ITEM(slots, i),
                                   field_strs[i]) == 0;
            if (!ok)
                break;
            descr = PyObject_GetAttr(type, field_strs[i]);
            if (descr == NULL) {
                PyErr_Clear();
                ok = 0;
                break;
            }
            ok = (Py_IS_TYPE(descr, &PyMemberDescr_Type) &&
                  ((PyMemberDescrObject *)descr)->d_member->type ==
                  T_OBJECT_EX);
            if (ok)
                field_offsets[i] =
                    ((PyMemberDescrObject *)descr)->d_member->offset;
            Py_DECREF(descr);
        }
        Py_DECREF(slots);
    }
    if (PyErr_Occurred())
        return NULL;
    Py_INCREF(ns);
    Py_XSETREF(reader_ns, ns);
    Py_INCREF(type);
    Py_XSETREF(record_type, (PyTypeObject *)type);
    record_slots = ok && record_type->tp_init != NULL;
    return PyBool_FromLong(record_slots);
}

/* The slot of field f of a LogRecord (borrowed; NULL when unset). */
#define SLOT(rec, f) (*(PyObject **)((char *)(rec) + field_offsets[f]))

/* getattr(rec, field) as a new reference. */
static PyObject *
rec_get(PyObject *rec, int f)
{
    if (record_slots && Py_TYPE(rec) == record_type) {
        PyObject *v = SLOT(rec, f);
        if (v != NULL) {
            Py_INCREF(v);
            return v;
        }
    }
    return PyObject_GetAttr(rec, field_strs[f]);
}

/* setattr(rec, field, value); steals value. */
static int
rec_set(PyObject *rec, int f, PyObject *value)
{
    int rc;
    if (record_slots && Py_TYPE(rec) == record_type) {
        Py_XSETREF(SLOT(rec, f), value);
        return 0;
    }
    rc = PyObject_SetAttr(rec, field_strs[f], value);
    Py_DECREF(value);
    return rc;
}

/* A LogRecord of the given field values (all N_FIELDS, steals none). */
static PyObject *
make_record(PyObject **values)
{
    PyObject *rec;
    int i;
    if (!record_slots)
        return PyObject_Vectorcall((PyObject *)record_type, values,
                                   N_FIELDS, NULL);
    rec = record_type->tp_alloc(record_type, 0);
    if (rec == NULL)
        return NULL;
    for (i = 0; i < N_FIELDS; i++) {
        Py_INCREF(values[i]);
        SLOT(rec, i) = values[i];
    }
    return rec;
}

/* ---------------------------------------------------------------------
 * Reader: header matching
 * --------------------------------------------------------------------- */

/* Where the groups of oslo_log._HEADER lie in a line. */
typedef struct {
    Py_ssize_t ts0, ts1;        /* timestamp text */
    Py_ssize_t pid0, pid1;      /* process id digits */
    int level;                  /* index in level_names */
    Py_ssize_t lg0, lg1;        /* logger */
    Py_ssize_t ctx0, ctx1;      /* context bracket text, ctx0 < 0: None */
    Py_ssize_t in0;             /* instance uuid (36 chars), < 0: None */
    Py_ssize_t msg0;            /* message: from here to the end */
} Header;

/*
 * Mirrors oslo_log._HEADER_RE.match(line[p:]) on ASCII text:
 *
 *   (\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?) (\d+) (LEVEL) (\S+)
 *   (?: \[(?!instance: )([^\]]*)\])? ?(?:\[instance: ([0-9a-fA-F-]{36})\] ?)?
 *   (.*)
 *
 * Every step is deterministic once greedy: a shorter fraction or pid
 * leaves a digit where a space must follow, \S+ is followed by optional
 * parts and (.*), which always match, so the greedy choice is the match.
 * Returns 1 on a match (h filled in), 0 otherwise.
 */
static int
match_header(const char *s, Py_ssize_t n, Py_ssize_t p, Header *h)
{
    static const char shape_[] = "dddd-dd-dd_dd:dd:dd";
    Py_ssize_t q, r;
    int i;
    if (n - p < 19)
        return 0;
    for (i = 0; i < 19; i++) {
        char c = s[p + i], want = shape_[i];
        if (want == 'd') {
            if (!IS_DIGIT(c))
                return 0;
        }
        else if (want == '_') {
            if (c != ' ' && c != 'T')
                return 0;
        }
        else if (c != want)
            return 0;
    }
    q = p + 19;
    if (q + 1 < n && (s[q] == '.' || s[q] == ',') && IS_DIGIT(s[q + 1])) {
        q += 2;
        while (q < n && IS_DIGIT(s[q]))
            q++;
    }
    h->ts0 = p;
    h->ts1 = q;
    if (q >= n || s[q] != ' ')
        return 0;
    q++;
    r = q;
    while (r < n && IS_DIGIT(s[r]))
        r++;
    if (r == q || r >= n || s[r] != ' ')
        return 0;
    h->pid0 = q;
    h->pid1 = r;
    q = r + 1;
    h->level = -1;
    for (i = 0; i < N_LEVELS; i++) {
        Py_ssize_t len = level_lens[i];
        if (q + len < n && memcmp(s + q, level_names[i], len) == 0 &&
                s[q + len] == ' ') {
            h->level = i;
            q += len + 1;
            break;
        }
    }
    if (h->level < 0)
        return 0;
    r = q;
    while (r < n && !is_space[(unsigned char)s[r]])
        r++;
    if (r == q)
        return 0;
    h->lg0 = q;
    h->lg1 = r;
    q = r;
    h->ctx0 = h->ctx1 = -1;
    if (q + 1 < n && s[q] == ' ' && s[q + 1] == '[' &&
            !starts_with(s + q + 2, n - q - 2, "instance: ", 10)) {
        const char *end = memchr(s + q + 2, ']', n - q - 2);
        if (end != NULL) {
            h->ctx0 = q + 2;
            h->ctx1 = end - s;
            q = h->ctx1 + 1;
        }
    }
    if (q < n && s[q] == ' ')
        q++;
    h->in0 = -1;
    if (q + 48 <= n && memcmp(s + q, "[instance: ", 11) == 0 &&
            s[q + 47] == ']') {
        for (i = 0; i < 36; i++) {
            unsigned char c = (unsigned char)s[q + 11 + i];
            if (!is_hex[c] && c != '-')
                break;
        }
        if (i == 36) {
            h->in0 = q + 11;
            q += 48;
            if (q < n && s[q] == ' ')
                q++;
        }
    }
    h->msg0 = q;
    return 1;
}

/* ---------------------------------------------------------------------
 * Masking and location helpers (on str objects)
 * --------------------------------------------------------------------- */

/* Case-blind: does s[i:] start with the lower-case word w? */
static int
at_word(const char *s, Py_ssize_t n, Py_ssize_t i, const char *w,
        Py_ssize_t wn)
{
    Py_ssize_t k;
    if (n - i < wn)
        return 0;
    for (k = 0; k < wn; k++) {
        char c = s[i + k];
        if (c >= 'A' && c <= 'Z')
            c += 32;
        if (c != w[k])
            return 0;
    }
    return 1;
}

/* What logrca.masking.mask() looks for before doing anything. */
enum {
    W_STEM = 1,         /* 'pass' 'pwd' 'secret' 'token' 'credential' */
    W_KEY = 2,          /* 'key' */
    W_URL = 4,          /* '://' */
    W_AUTH = 8,         /* 'auth' */
    W_CASED = 16        /* 'gAAAAA', 'MII', 'PRIVATE KEY' (case kept) */
};

/* pair_start[a][b]: a word above can start with the characters a, b
 * (case-blind for the lower-cased words). */
static unsigned char pair_start[256][256];

static void
init_pairs(void)
{
    static const char *blind[] = {"pa", "pw", "se", "to", "cr", "ke", "au",
                                  NULL};
    static const char *cased[] = {":/", "gA", "MI", "PR", NULL};
    int i, a, b;
    for (i = 0; blind[i]; i++)
        for (a = 0; a < 2; a++)
            for (b = 0; b < 2; b++)
                pair_start[(unsigned char)(blind[i][0] - 32 * a)]
                          [(unsigned char)(blind[i][1] - 32 * b)] = 1;
    for (i = 0; cased[i]; i++)
        pair_start[(unsigned char)cased[i][0]]
                  [(unsigned char)cased[i][1]] = 1;
}

/* The W_ flags of an ASCII text: the first test of masking.mask() (which
 * lower-cases the text and looks for the words above). */
static int
secret_words(const char *s, Py_ssize_t n)
{
    Py_ssize_t i;
    int found = 0;
    for (i = 0; i + 2 < n; i++) {
        if (!pair_start[(unsigned char)s[i]][(unsigned char)s[i + 1]])
            continue;
        if (at_word(s, n, i, "pass", 4) || at_word(s, n, i, "pwd", 3) ||
                at_word(s, n, i, "secret", 6) ||
                at_word(s, n, i, "token", 5) ||
                at_word(s, n, i, "credential", 10))
            found |= W_STEM;
        else if (at_word(s, n, i, "key", 3))
            found |= W_KEY;
        else if (at_word(s, n, i, "auth", 4))
            found |= W_AUTH;
        else if (starts_with(s + i, n - i, "://", 3))
            found |= W_URL;
        else if (starts_with(s + i, n - i, "gAAAAA", 6) ||
                 starts_with(s + i, n - i, "MII", 3) ||
                 starts_with(s + i, n - i, "PRIVATE KEY", 11))
            found |= W_CASED;
    }
    return found;
}

/* Lower-cased s[m:m+wn] == w and m >= lo. */
static int
word_at(const char *s, Py_ssize_t lo, Py_ssize_t m, const char *w,
        Py_ssize_t wn)
{
    return m >= lo && at_word(s, m + wn, m, w, wn);
}

/*
 * Mirrors masking._key_starts() for the stem 'key' alone: True when
 * some 'key' of the text is kept by
 * _KEY_KIND.search(low, max(0, pos - 12), pos), i.e. when the 12
 * characters before it end with api, access, private, auth, encryption
 * or fernet, maybe then '_' or '-', maybe then the '\n' before which '$'
 * also matches.
 */
static int
any_key_start(const char *s, Py_ssize_t n)
{
    static const char *kinds[] = {"api", "access", "private", "auth",
                                  "encryption", "fernet", NULL};
    Py_ssize_t pos, lo, ends[2], e, k;
    int ne, i, j;
    for (pos = 0; pos + 3 <= n; pos++) {
        if (!at_word(s, n, pos, "key", 3))
            continue;
        lo = pos - 12 > 0 ? pos - 12 : 0;
        ne = 0;
        ends[ne++] = pos;
        if (pos > lo && s[pos - 1] == '\n')
            ends[ne++] = pos - 1;
        for (j = 0; j < ne; j++) {
            for (k = 0; k < 2; k++) {
                e = ends[j];
                if (k == 1) {
                    if (e <= lo || (s[e - 1] != '_' && s[e - 1] != '-'))
                        continue;
                    e--;
                }
                for (i = 0; kinds[i]; i++) {
                    Py_ssize_t wn = (Py_ssize_t)strlen(kinds[i]);
                    if (word_at(s, lo, e - wn, kinds[i], wn))
                        return 1;
                }
            }
        }
    }
    return 0;
}

/*
 * Mirrors masking._mask_at(text, _positions(low, '://', 3), _URL_AT)
 * finding nothing to mask: True when _URL_AT,
 * [^:/\s@]*:(?P<v>[^@\s/]+)(?=@), matches after some '://' (each part
 * greedy; a shorter one leaves a character where ':' or '@' must be).
 */
static int
any_url_credential(const char *s, Py_ssize_t n)
{
    Py_ssize_t p, i, j;
    for (p = 0; p + 3 <= n; p++) {
        if (s[p] != ':' || s[p + 1] != '/' || s[p + 2] != '/')
            continue;
        i = p + 3;
        while (i < n && s[i] != ':' && s[i] != '/' && s[i] != '@' &&
               !is_space[(unsigned char)s[i]])
            i++;
        if (i >= n || s[i] != ':')
            continue;
        j = ++i;
        while (j < n && s[j] != '@' && s[j] != '/' &&
               !is_space[(unsigned char)s[j]])
            j++;
        if (j > i && j < n && s[j] == '@')
            return 1;
    }
    return 0;
}

/*
 * logrca.masking.mask(text) as oslo_log calls it. Decided here for ASCII
 * text whose only secret-like words are '://' and 'key': mask() returns
 * such a text unchanged (the same object) when no 'key' is of a kind it
 * masks and no URL carries a password; every other text goes to mask().
 */
static PyObject *
mask_text(PyObject *text)
{
    PyObject *fn;
    if (PyUnicode_CheckExact(text) && PyUnicode_IS_ASCII(text)) {
        const char *s = PyUnicode_DATA(text);
        Py_ssize_t n = PyUnicode_GET_LENGTH(text);
        int words = secret_words(s, n);
        if (!(words & ~(W_KEY | W_URL)) &&
                !((words & W_KEY) && any_key_start(s, n)) &&
                !((words & W_URL) && any_url_credential(s, n))) {
            Py_INCREF(text);
            return text;
        }
    }
    fn = PyDict_GetItemString(reader_ns, "mask");
    if (fn == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "oslo_log.mask is missing");
        return NULL;
    }
    return PyObject_CallOneArg(fn, text);
}

/*
 * Mirrors oslo_log.split_location(message) for ASCII str messages (others
 * are given to the Python function). Returns a new (text, location)
 * tuple.
 */
static PyObject *
split_location(PyObject *message)
{
    const char *s;
    Py_ssize_t n, end, colon, start, i;
    PyObject *text, *loc;
    if (!PyUnicode_CheckExact(message) || !PyUnicode_IS_ASCII(message)) {
        PyObject *fn = PyDict_GetItemString(reader_ns, "split_location");
        if (fn == NULL) {
            PyErr_SetString(PyExc_RuntimeError,
                            "oslo_log.split_location is missing");
            return NULL;
        }
        return PyObject_CallOneArg(fn, message);
    }
    s = PyUnicode_DATA(message);
    n = PyUnicode_GET_LENGTH(message);
    /* if not message or not message[-1].isdigit() */
    if (n == 0 || !IS_DIGIT(s[n - 1]))
        goto none;
    /* end = message.rfind(' ') */
    for (end = n - 1; end >= 0 && s[end] != ' '; end--)
        ;
    if (end < 0)
        goto none;
    /* colon = message.rfind(':', end) */
    for (colon = n - 1; colon >= end && s[colon] != ':'; colon--)
        ;
    if (colon < end)
        goto none;
    /* message[end + 1:end + 2] != '/' */
    if (end + 1 >= n || s[end + 1] != '/')
        goto none;
    /* not message.startswith('py', colon - 2): colon > end + 1 here */
    if (colon - 2 < 0 || s[colon - 2] != 'p' || s[colon - 1] != 'y')
        goto none;
    /* not message[colon + 1:].isdigit() */
    if (colon + 1 >= n)
        goto none;
    for (i = colon + 1; i < n; i++)
        if (!IS_DIGIT(s[i]))
            goto none;
    /* start = message.rfind(' ', 0, end) */
    for (start = end - 1; start >= 0 && s[start] != ' '; start--)
        ;
    text = ascii_str(s, start > 0 ? start : 0);
    loc = ascii_str(s + start + 1, n - start - 1);
    if (text == NULL || loc == NULL) {
        Py_XDECREF(text);
        Py_XDECREF(loc);
        return NULL;
    }
    {
        PyObject *pair = PyTuple_Pack(2, text, loc);
        Py_DECREF(text);
        Py_DECREF(loc);
        return pair;
    }
none:
    return PyTuple_Pack(2, message, Py_None);
}

/* oslo_log._none(): None for '', '-' and 'None', else the text. */
static PyObject *
none_or_str(const char *s, Py_ssize_t n)
{
    if (n == 0 || (n == 1 && s[0] == '-') ||
            (n == 4 && memcmp(s, "None", 4) == 0)) {
        Py_INCREF(Py_None);
        return Py_None;
    }
    return ascii_str(s, n);
}

/*
 * Mirrors oslo_log.parse_context(ctx) for ASCII text (ctx.split() on
 * ASCII whitespace); returns a new (global_request_id, request_id,
 * user_id, project_id) tuple.
 */
static PyObject *
parse_context(const char *s, Py_ssize_t n)
{
    Py_ssize_t start[4], len[4], i = 0, k = 0, first = 0;
    PyObject *v[4] = {NULL, NULL, NULL, NULL}, *out = NULL;
    /* parts = ctx.split(): the first four are all that is looked at */
    while (k < 4) {
        while (i < n && is_space[(unsigned char)s[i]])
            i++;
        if (i >= n)
            break;
        start[k] = i;
        while (i < n && !is_space[(unsigned char)s[i]])
            i++;
        len[k] = i - start[k];
        k++;
    }
    if (k == 0 || (len[0] == 1 && s[start[0]] == '-'))
        return PyTuple_Pack(4, Py_None, Py_None, Py_None, Py_None);
    /* a global request id first when the second part is a req- id */
    if (k > 1 && len[1] >= 4 && memcmp(s + start[1], "req-", 4) == 0) {
        if ((v[0] = none_or_str(s + start[0], len[0])) == NULL)
            goto done;
        first = 1;
    }
    else {
        Py_INCREF(Py_None);
        v[0] = Py_None;
    }
    if (!(len[first] >= 4 && memcmp(s + start[first], "req-", 4) == 0)) {
        /* Not a request context we know: keep users/projects out. */
        out = PyTuple_Pack(4, v[0], Py_None, Py_None, Py_None);
        goto done;
    }
    if ((v[1] = ascii_str(s + start[first], len[first])) == NULL)
        goto done;
    for (i = 0; i < 2; i++) {
        Py_ssize_t j = first + 1 + i;
        if (j < k)
            v[2 + i] = none_or_str(s + start[j], len[j]);
        else {
            Py_INCREF(Py_None);
            v[2 + i] = Py_None;
        }
        if (v[2 + i] == NULL)
            goto done;
    }
    out = PyTuple_Pack(4, v[0], v[1], v[2], v[3]);
done:
    for (i = 0; i < 4; i++)
        Py_XDECREF(v[i]);
    return out;
}

/*
 * Mirrors calendar.timegm(time.strptime(minute, '%Y-%m-%d %H:%M')) of
 * oslo_log._minute() for the 16 ASCII characters 'YYYY-MM-DD HH:MM' (or
 * with 'T'; digits where the header has them). Returns 0 and the epoch
 * seconds when strptime accepts the date, -1 when it would not (the
 * Python function is then called, to raise its error).
 */
static int
minute_epoch(const char *s, long long *out)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
                                30, 31};
    long long y, m, d, hh, mm, era, yoe, doy, doe, days;
    int leap;
    y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 +
        (s[3] - '0');
    m = (s[5] - '0') * 10 + (s[6] - '0');
    d = (s[8] - '0') * 10 + (s[9] - '0');
    hh = (s[11] - '0') * 10 + (s[12] - '0');
    mm = (s[14] - '0') * 10 + (s[15] - '0');
    if (y < 1 || m < 1 || m > 12 || d < 1 || hh > 23 || mm > 59)
        return -1;
    leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > dim[m - 1] + (m == 2 && leap))
        return -1;
    /* days since 1970-01-01 in the proleptic Gregorian calendar (as
     * datetime.date.toordinal(), which timegm uses) */
    y -= m <= 2;
    era = y / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    days = era * 146097 + doe - 719468;
    *out = days * 86400 + hh * 3600 + mm * 60;
    return 0;
}

/* ---------------------------------------------------------------------
 * Reader: the iterator read() returns
 * --------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *reader;
    PyObject *lines;            /* the iterable, then its iterator */
    Py_ssize_t lineno;
    int state;                  /* 0 not started, 1 running, 2 done */
    /* Counters not added to reader.stats yet (read()'s finally). */
    Py_ssize_t counted, completed, continuation, dropped;
    /* Records a Python step returned, yielded one by one. */
    PyObject *pending;
    Py_ssize_t pending_pos;
    /* Taken from the reader and oslo_log when iteration starts. */
    PyObject *stats, *ctx_cache, *stream, *host;
    PyObject *minutes, *minute_fn, *debug_texts, *texts, *parse_ctx;
    PyObject *log_kind, *lines_cache;
    Py_ssize_t limit, cache_max, text_max, text_cache_max, max_extra;
    Py_ssize_t lines_max;
    /* The reader's state (RecordReader._current, _key, _ctx,
     * _in_traceback, _last_ts), written back before Python code runs. */
    PyObject *current, *key, *ctx, *last_ts;
    int in_tb;
    int dirty;
    /* The last minute's text and epoch (oslo_log._minute is pure). */
    char minute[16];
    double minute_base;
    int minute_ok;
} ReadIter;

static PyTypeObject ReadIter_Type;

static PyObject *
ri_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"reader", "lines", "lineno", NULL};
    PyObject *reader, *lines;
    Py_ssize_t lineno = 0;
    ReadIter *self;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|n:RecordIterator",
                                     kwlist, &reader, &lines, &lineno))
        return NULL;
    if (reader_ns == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "setup_reader() not called");
        return NULL;
    }
    self = (ReadIter *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    Py_INCREF(reader);
    self->reader = reader;
    Py_INCREF(lines);
    self->lines = lines;
    self->lineno = lineno;
    return (PyObject *)self;
}

#define RI_OBJECTS(X) \
    X(reader) X(lines) X(pending) X(stats) X(ctx_cache) X(stream) \
    X(host) X(minutes) X(minute_fn) X(debug_texts) X(texts) X(parse_ctx) \
    X(log_kind) X(lines_cache) X(current) X(key) X(ctx) X(last_ts)

static int
ri_traverse(ReadIter *self, visitproc visit, void *arg)
{
#define VISIT(f) Py_VISIT(self->f);
    RI_OBJECTS(VISIT)
#undef VISIT
    return 0;
}

static int
ri_clear(ReadIter *self)
{
#define CLEAR(f) Py_CLEAR(self->f);
    RI_OBJECTS(CLEAR)
#undef CLEAR
    return 0;
}

/* read()'s finally: add the counters kept here to reader.stats. */
static int
ri_flush_counters(ReadIter *self)
{
    int rc = 0;
    if (self->stats == NULL)
        return 0;
    rc |= dict_add(self->stats, s_lines, self->counted);
    rc |= dict_add(self->stats, s_records, self->completed);
    if (self->continuation)
        rc |= dict_add(self->stats, s_continuation, self->continuation);
    if (self->dropped)
        rc |= dict_add(self->stats, s_dropped, self->dropped);
    self->counted = self->completed = self->continuation = 0;
    self->dropped = 0;
    return rc ? -1 : 0;
}

/* Write the mirrored state back to the reader (Python code will run or
 * control goes back to the caller). */
static int
ri_store(ReadIter *self)
{
    PyObject *r = self->reader;
    if (!self->dirty)
        return 0;
    if (PyObject_SetAttr(r, s_current,
                         self->current ? self->current : Py_None) < 0 ||
            PyObject_SetAttr(r, s_key, self->key) < 0 ||
            PyObject_SetAttr(r, s_ctx, self->ctx) < 0 ||
            PyObject_SetAttr(r, s_in_traceback,
                             self->in_tb ? Py_True : Py_False) < 0 ||
            PyObject_SetAttr(r, s_last_ts, self->last_ts) < 0)
        return -1;
    self->dirty = 0;
    return 0;
}

/* Read the reader's state (Python code may have changed it). */
static int
ri_load(ReadIter *self)
{
    PyObject *r = self->reader, *cur, *tb;
    cur = PyObject_GetAttr(r, s_current);
    if (cur == NULL)
        return -1;
    if (cur == Py_None)
        Py_CLEAR(cur);
    Py_XSETREF(self->current, cur);
    Py_XSETREF(self->key, PyObject_GetAttr(r, s_key));
    Py_XSETREF(self->ctx, PyObject_GetAttr(r, s_ctx));
    Py_XSETREF(self->last_ts, PyObject_GetAttr(r, s_last_ts));
    tb = PyObject_GetAttr(r, s_in_traceback);
    if (self->key == NULL || self->ctx == NULL || self->last_ts == NULL ||
            tb == NULL) {
        Py_XDECREF(tb);
        return -1;
    }
    self->in_tb = PyObject_IsTrue(tb);
    Py_DECREF(tb);
    self->dirty = 0;
    return self->in_tb < 0 ? -1 : 0;
}

static PyObject *
ns_get(const char *name)
{
    PyObject *v = PyDict_GetItemString(reader_ns, name);
    if (v == NULL)
        PyErr_Format(PyExc_RuntimeError, "oslo_log.%s is missing", name);
    else
        Py_INCREF(v);
    return v;
}

static int
ns_size(const char *name, Py_ssize_t *out)
{
    PyObject *v = PyDict_GetItemString(reader_ns, name);
    if (v == NULL) {
        PyErr_Format(PyExc_RuntimeError, "oslo_log.%s is missing", name);
        return -1;
    }
    *out = PyLong_AsSsize_t(v);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

/* What read() looks up before its loop (and _start() on every record:
 * the stream and host are taken once here). */
static int
ri_start(ReadIter *self)
{
    PyObject *r = self->reader, *it, *limit;
    it = PyObject_GetIter(self->lines);
    if (it == NULL)
        return -1;
    Py_SETREF(self->lines, it);
    if ((self->stats = PyObject_GetAttr(r, s_stats)) == NULL ||
            (self->ctx_cache = PyObject_GetAttr(r, s_ctx_cache)) == NULL ||
            (self->stream = PyObject_GetAttr(r, s_stream)) == NULL ||
            (self->host = PyObject_GetAttr(r, s_host)) == NULL)
        return -1;
    limit = PyObject_GetAttr(r, s_max_line_length);
    if (limit == NULL)
        return -1;
    self->limit = PyLong_AsSsize_t(limit);
    Py_DECREF(limit);
    if (self->limit == -1 && PyErr_Occurred())
        return -1;
    if (!PyDict_Check(self->ctx_cache)) {
        PyErr_SetString(PyExc_TypeError, "_ctx_cache is not a dict");
        return -1;
    }
    if ((self->minutes = ns_get("_MINUTES")) == NULL ||
            (self->minute_fn = ns_get("_minute")) == NULL ||
            (self->debug_texts = ns_get("_DEBUG_TEXTS")) == NULL ||
            (self->texts = ns_get("_TEXTS")) == NULL ||
            (self->parse_ctx = ns_get("parse_context")) == NULL ||
            (self->log_kind = ns_get("_LOG_KIND")) == NULL ||
            (self->lines_cache = ns_get("_LINES")) == NULL ||
            ns_size("_LINES_MAX", &self->lines_max) < 0 ||
            ns_size("_CACHE_MAX", &self->cache_max) < 0 ||
            ns_size("_TEXT_MAX", &self->text_max) < 0 ||
            ns_size("_TEXT_CACHE_MAX", &self->text_cache_max) < 0 ||
            ns_size("MAX_EXTRA_LINES", &self->max_extra) < 0)
        return -1;
    if (!PyDict_Check(self->minutes) || !PyDict_Check(self->debug_texts) ||
            !PyDict_Check(self->texts) || !PyDict_Check(self->lines_cache)) {
        PyErr_SetString(PyExc_TypeError, "oslo_log caches are not dicts");
        return -1;
    }
    return 0;
}

/* Calls reader.<name>(arg, lineno) (state written back first, read again
 * after) and queues the records it returns. */
static int
ri_call(ReadIter *self, PyObject *name, PyObject *arg)
{
    PyObject *ln, *res;
    if (ri_store(self) < 0)
        return -1;
    ln = PyLong_FromSsize_t(self->lineno);
    if (ln == NULL)
        return -1;
    res = PyObject_CallMethodObjArgs(self->reader, name, arg, ln, NULL);
    Py_DECREF(ln);
    if (res == NULL)
        return -1;
    if (ri_load(self) < 0) {
        Py_DECREF(res);
        return -1;
    }
    if (!PyList_Check(res)) {
        /* feed() and friends return lists; anything else is iterated. */
        Py_SETREF(res, PySequence_List(res));
        if (res == NULL)
            return -1;
    }
    if (PyList_GET_SIZE(res) == 0) {
        Py_DECREF(res);
        return 0;
    }
    Py_XSETREF(self->pending, res);
    self->pending_pos = 0;
    return 0;
}

/* Mirrors RecordReader._append(): a continuation line of the current
 * record. */
static int
ri_append(ReadIter *self, PyObject *record, const char *s, Py_ssize_t n)
{
    PyObject *extra, *text;
    int rc;
    extra = rec_get(record, F_EXTRA);
    if (extra == NULL)
        return -1;
    self->continuation++;
    if (PyObject_Length(extra) < self->max_extra) {
        if (PyErr_Occurred()) {
            Py_DECREF(extra);
            return -1;
        }
        text = ascii_str(s, n);
        if (text == NULL) {
            Py_DECREF(extra);
            return -1;
        }
        rc = PyList_Check(extra) ? PyList_Append(extra, text)
             : (PyObject_CallMethod(extra, "append", "O", text) == NULL
                ? -1 : 0);
        Py_DECREF(text);
        Py_DECREF(extra);
        return rc;
    }
    Py_DECREF(extra);
    if (PyErr_Occurred())
        return -1;
    self->dropped++;
    return 0;
}

/*
 * Mirrors RecordReader._complete(record): masks the message, splits the
 * DEBUG code location off. Records with continuation lines or a location
 * already set are given to the Python method.
 */
/* Mirrors oslo_log's ``_LINES.get(text) or _mask_line(text)``: the
 * masked continuation line, through the cache of masked lines. */
static PyObject *
ri_mask_line(ReadIter *self, PyObject *text)
{
    PyObject *hit, *masked;
    Py_ssize_t len;
    hit = PyDict_GetItemWithError(self->lines_cache, text);
    if (hit != NULL) {
        int truth = PyObject_IsTrue(hit);
        if (truth < 0)
            return NULL;
        if (truth) {
            Py_INCREF(hit);
            return hit;
        }
    }
    else if (PyErr_Occurred())
        return NULL;
    /* _mask_line(text) */
    masked = mask_text(text);
    if (masked == NULL)
        return NULL;
    len = PyObject_Length(text);
    if (len < 0) {
        Py_DECREF(masked);
        return NULL;
    }
    if (len <= self->text_max) {
        if (PyDict_GET_SIZE(self->lines_cache) >= self->lines_max)
            PyDict_Clear(self->lines_cache);
        if (PyDict_SetItem(self->lines_cache, text, masked) < 0) {
            Py_DECREF(masked);
            return NULL;
        }
    }
    return masked;
}

/* The first branch of RecordReader._complete(): a record with
 * continuation lines (extra a non-empty list). */
static int
ri_complete_extra(ReadIter *self, PyObject *record, PyObject *extra)
{
    PyObject *level, *location, *message, *masked, *lines, *ts;
    Py_ssize_t i;
    int debug;
    level = rec_get(record, F_LEVEL);
    if (level == NULL)
        return -1;
    debug = PyObject_RichCompareBool(level, s_debug, Py_EQ);
    Py_DECREF(level);
    if (debug < 0)
        return -1;
    location = rec_get(record, F_LOCATION);
    if (location == NULL)
        return -1;
    Py_DECREF(location);
    if (debug && location == Py_None && PyList_GET_SIZE(extra) > 0) {
        /* text, location = split_location(extra[-1]) */
        PyObject *last, *pair;
        int truth;
        last = PyList_GET_ITEM(extra, PyList_GET_SIZE(extra) - 1);
        Py_INCREF(last);
        pair = split_location(last);
        Py_DECREF(last);
        if (pair == NULL)
            return -1;
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            Py_DECREF(pair);
            PyErr_SetString(PyExc_ValueError, "bad split_location");
            return -1;
        }
        if (PyTuple_GET_ITEM(pair, 1) != Py_None) {
            PyObject *text = PyTuple_GET_ITEM(pair, 0);
            Py_ssize_t n = PyList_GET_SIZE(extra);
            Py_INCREF(PyTuple_GET_ITEM(pair, 1));
            if (rec_set(record, F_LOCATION, PyTuple_GET_ITEM(pair, 1)) < 0
                    || (truth = PyObject_IsTrue(text)) < 0) {
                Py_DECREF(pair);
                return -1;
            }
            if (truth) {
                /* extra[-1] = text */
                Py_INCREF(text);
                PyList_SetItem(extra, n - 1, text);
            }
            else if (PyList_SetSlice(extra, n - 1, n, NULL) < 0) {
                /* extra.pop() */
                Py_DECREF(pair);
                return -1;
            }
        }
        Py_DECREF(pair);
    }
    /* record.message = get(message) or _mask_line(message) */
    message = rec_get(record, F_MESSAGE);
    if (message == NULL)
        return -1;
    masked = ri_mask_line(self, message);
    Py_DECREF(message);
    if (masked == NULL || rec_set(record, F_MESSAGE, masked) < 0)
        return -1;
    /* record.extra = [get(text) or _mask_line(text) for text in extra] */
    lines = PyList_New(0);
    if (lines == NULL)
        return -1;
    for (i = 0; i < PyList_GET_SIZE(extra); i++) {
        PyObject *text = PyList_GET_ITEM(extra, i);
        Py_INCREF(text);
        masked = ri_mask_line(self, text);
        Py_DECREF(text);
        if (masked == NULL || PyList_Append(lines, masked) < 0) {
            Py_XDECREF(masked);
            Py_DECREF(lines);
            return -1;
        }
        Py_DECREF(masked);
    }
    if (rec_set(record, F_EXTRA, lines) < 0)
        return -1;
    /* if record.timestamp is not None: self._last_ts = record.timestamp */
    ts = rec_get(record, F_TIMESTAMP);
    if (ts == NULL)
        return -1;
    if (ts != Py_None) {
        Py_SETREF(self->last_ts, ts);
        self->dirty = 1;
    }
    else
        Py_DECREF(ts);
    return 0;
}

static int
ri_complete(ReadIter *self, PyObject *record)
{
    PyObject *extra, *location, *message, *level, *cache, *hit, *ts;
    int has_extra, debug, rc;
    extra = rec_get(record, F_EXTRA);
    if (extra == NULL)
        return -1;
    has_extra = PyObject_IsTrue(extra);
    if (has_extra > 0 && PyList_CheckExact(extra)) {
        rc = ri_complete_extra(self, record, extra);
        Py_DECREF(extra);
        return rc;
    }
    Py_DECREF(extra);
    if (has_extra < 0)
        return -1;
    location = rec_get(record, F_LOCATION);
    if (location == NULL)
        return -1;
    Py_DECREF(location);
    if (has_extra || location != Py_None) {
        PyObject *res;
        if (ri_store(self) < 0)
            return -1;
        res = PyObject_CallMethodOneArg(self->reader, s_complete, record);
        if (res == NULL)
            return -1;
        Py_DECREF(res);
        return ri_load(self);
    }
    /* One-line records: the cached (masked message, location). */
    message = rec_get(record, F_MESSAGE);
    if (message == NULL)
        return -1;
    level = rec_get(record, F_LEVEL);
    if (level == NULL) {
        Py_DECREF(message);
        return -1;
    }
    debug = PyObject_RichCompareBool(level, s_debug, Py_EQ);
    Py_DECREF(level);
    if (debug < 0) {
        Py_DECREF(message);
        return -1;
    }
    cache = debug ? self->debug_texts : self->texts;
    hit = PyDict_GetItemWithError(cache, message);
    if (hit != NULL) {
        Py_INCREF(hit);
    }
    else if (PyErr_Occurred()) {
        Py_DECREF(message);
        return -1;
    }
    else {
        PyObject *pair, *masked;
        Py_ssize_t len;
        if (debug)
            pair = split_location(message);
        else
            pair = PyTuple_Pack(2, message, Py_None);
        if (pair == NULL || !PyTuple_Check(pair) ||
                PyTuple_GET_SIZE(pair) != 2) {
            if (pair != NULL)
                PyErr_SetString(PyExc_ValueError, "bad split_location");
            Py_XDECREF(pair);
            Py_DECREF(message);
            return -1;
        }
        masked = mask_text(PyTuple_GET_ITEM(pair, 0));
        if (masked == NULL) {
            Py_DECREF(pair);
            Py_DECREF(message);
            return -1;
        }
        hit = PyTuple_Pack(2, masked, PyTuple_GET_ITEM(pair, 1));
        Py_DECREF(masked);
        Py_DECREF(pair);
        if (hit == NULL) {
            Py_DECREF(message);
            return -1;
        }
        len = PyObject_Length(message);
        if (len < 0) {
            Py_DECREF(hit);
            Py_DECREF(message);
            return -1;
        }
        if (len <= self->text_max) {
            if (PyDict_GET_SIZE(cache) >= self->text_cache_max)
                PyDict_Clear(cache);
            if (PyDict_SetItem(cache, message, hit) < 0) {
                Py_DECREF(hit);
                Py_DECREF(message);
                return -1;
            }
        }
    }
    Py_DECREF(message);
    if (!PyTuple_Check(hit) || PyTuple_GET_SIZE(hit) != 2) {
        Py_DECREF(hit);
        PyErr_SetString(PyExc_ValueError, "bad oslo_log text cache entry");
        return -1;
    }
    Py_INCREF(PyTuple_GET_ITEM(hit, 0));
    rc = rec_set(record, F_MESSAGE, PyTuple_GET_ITEM(hit, 0));
    if (rc == 0) {
        Py_INCREF(PyTuple_GET_ITEM(hit, 1));
        rc = rec_set(record, F_LOCATION, PyTuple_GET_ITEM(hit, 1));
    }
    Py_DECREF(hit);
    if (rc < 0)
        return -1;
    /* if record.timestamp is not None: self._last_ts = record.timestamp */
    ts = rec_get(record, F_TIMESTAMP);
    if (ts == NULL)
        return -1;
    if (ts != Py_None) {
        Py_SETREF(self->last_ts, ts);
        self->dirty = 1;
    }
    else
        Py_DECREF(ts);
    return 0;
}

/* Mirrors RecordReader._start(groups, lineno) for a header found by
 * match_header(): the new current record. */
static int
ri_start_record(ReadIter *self, const char *s, Py_ssize_t n,
                const Header *h)
{
    PyObject *ctx = NULL, *parsed = NULL, *ts_text = NULL, *pid_text = NULL;
    PyObject *logger = NULL, *message = NULL, *ts = NULL, *pid = NULL;
    PyObject *instance = NULL, *extra = NULL, *params = NULL;
    PyObject *lineno = NULL, *key = NULL, *rec = NULL;
    PyObject *values[N_FIELDS];
    PyObject *ids[4] = {Py_None, Py_None, Py_None, Py_None};
    double base, secs;
    char buf[64], *tmp = buf, *end;
    Py_ssize_t flen, i;
    const char *msg = s + h->msg0;
    Py_ssize_t msg_len = n - h->msg0;
    int rc = -1;

    if (h->ctx0 >= 0) {
        /* parsed = self._ctx_cache.get(ctx) or parse_context(ctx) */
        ctx = ascii_str(s + h->ctx0, h->ctx1 - h->ctx0);
        if (ctx == NULL)
            goto done;
        parsed = PyDict_GetItemWithError(self->ctx_cache, ctx);
        if (parsed != NULL)
            Py_INCREF(parsed);
        else if (PyErr_Occurred())
            goto done;
        else {
            if (PyDict_GET_SIZE(self->ctx_cache) >= self->cache_max)
                PyDict_Clear(self->ctx_cache);
            parsed = parse_context(s + h->ctx0, h->ctx1 - h->ctx0);
            if (parsed == NULL ||
                    PyDict_SetItem(self->ctx_cache, ctx, parsed) < 0)
                goto done;
        }
        if (!PyTuple_Check(parsed) || PyTuple_GET_SIZE(parsed) != 4) {
            PyErr_SetString(PyExc_ValueError, "bad parsed context");
            goto done;
        }
        for (i = 0; i < 4; i++)
            ids[i] = PyTuple_GET_ITEM(parsed, i);
    }
    /* base = _MINUTES.get(ts_text[:16]) or _minute(ts_text[:16]) */
    if (self->minute_ok && memcmp(self->minute, s + h->ts0, 16) == 0)
        base = self->minute_base;
    else {
        PyObject *mkey = ascii_str(s + h->ts0, 16), *b = NULL;
        if (mkey == NULL)
            goto done;
        long long epoch;
        b = PyDict_GetItemWithError(self->minutes, mkey);
        if (b != NULL)
            Py_INCREF(b);
        else if (PyErr_Occurred())
            ;
        else if (minute_epoch(s + h->ts0, &epoch) < 0)
            /* not a date strptime takes: _minute() raises its error */
            b = PyObject_CallOneArg(self->minute_fn, mkey);
        else {
            /* _minute(): the cache cleared when full, then filled */
            if (PyDict_GET_SIZE(self->minutes) >= self->cache_max)
                PyDict_Clear(self->minutes);
            b = PyLong_FromLongLong(epoch);
            if (b != NULL && PyDict_SetItem(self->minutes, mkey, b) < 0)
                Py_CLEAR(b);
        }
        Py_DECREF(mkey);
        if (b == NULL)
            goto done;
        /* base + float(...): int + float converts the int exactly as
         * PyFloat_AsDouble does. */
        base = PyFloat_AsDouble(b);
        Py_DECREF(b);
        if (base == -1.0 && PyErr_Occurred())
            goto done;
        memcpy(self->minute, s + h->ts0, 16);
        self->minute_base = base;
        self->minute_ok = 1;
    }
    /* float(ts_text[17:].replace(',', '.')) */
    flen = h->ts1 - h->ts0 - 17;
    if (flen + 1 > (Py_ssize_t)sizeof(buf)) {
        tmp = PyMem_Malloc(flen + 1);
        if (tmp == NULL) {
            PyErr_NoMemory();
            goto done;
        }
    }
    memcpy(tmp, s + h->ts0 + 17, flen);
    tmp[flen] = '\0';
    for (i = 0; i < flen; i++)
        if (tmp[i] == ',')
            tmp[i] = '.';
    secs = PyOS_string_to_double(tmp, &end, NULL);
    if (tmp != buf)
        PyMem_Free(tmp);
    if (secs == -1.0 && PyErr_Occurred())
        goto done;
    ts = PyFloat_FromDouble(base + secs);
    if (ts == NULL)
        goto done;
    /* int(pid) */
    pid_text = ascii_str(s + h->pid0, h->pid1 - h->pid0);
    if (pid_text == NULL)
        goto done;
    if (h->pid1 - h->pid0 <= 18) {
        long long v = 0;
        for (i = h->pid0; i < h->pid1; i++)
            v = v * 10 + (s[i] - '0');
        pid = PyLong_FromLongLong(v);
    }
    else
        pid = PyLong_FromUnicodeObject(pid_text, 10);
    if (pid == NULL)
        goto done;
    if ((logger = ascii_str(s + h->lg0, h->lg1 - h->lg0)) == NULL ||
            (message = ascii_str(msg, msg_len)) == NULL ||
            (ts_text = ascii_str(s + h->ts0, h->ts1 - h->ts0)) == NULL ||
            (extra = PyList_New(0)) == NULL ||
            (params = PyList_New(0)) == NULL ||
            (lineno = PyLong_FromSsize_t(self->lineno)) == NULL)
        goto done;
    if (h->in0 >= 0) {
        if ((instance = ascii_str(s + h->in0, 36)) == NULL)
            goto done;
    }
    else {
        Py_INCREF(Py_None);
        instance = Py_None;
    }
    values[F_STREAM] = self->stream;
    values[F_TIMESTAMP] = ts;
    values[F_LEVEL] = level_strs[h->level];
    values[F_LOGGER] = logger;
    values[F_MESSAGE] = message;
    values[F_PID] = pid;
    values[F_HOST] = self->host;
    values[F_REQUEST_ID] = ids[1];
    values[F_GLOBAL_REQUEST_ID] = ids[0];
    values[F_USER_ID] = ids[2];
    values[F_PROJECT_ID] = ids[3];
    values[F_INSTANCE_ID] = instance;
    values[F_LOCATION] = Py_None;
    values[F_EXTRA] = extra;
    values[F_TEMPLATE_ID] = Py_None;
    values[F_TEMPLATE] = Py_None;
    values[F_PARAMS] = params;
    values[F_KIND] = self->log_kind;
    values[F_LINENO] = lineno;
    values[F_EVENT_TYPE] = Py_None;
    rec = make_record(values);
    if (rec == NULL)
        goto done;
    key = PyTuple_Pack(3, ts_text, pid_text, logger);
    if (key == NULL)
        goto done;
    /* self._current, self._key, self._ctx, self._in_traceback */
    Py_XSETREF(self->current, rec);
    rec = NULL;
    Py_XSETREF(self->key, key);
    key = NULL;
    if (ctx == NULL) {
        Py_INCREF(Py_None);
        ctx = Py_None;
    }
    Py_XSETREF(self->ctx, ctx);
    ctx = NULL;
    self->in_tb = starts_with(msg, msg_len, traceback_text, traceback_len);
    self->dirty = 1;
    rc = 0;
done:
    Py_XDECREF(ctx);
    Py_XDECREF(parsed);
    Py_XDECREF(ts_text);
    Py_XDECREF(pid_text);
    Py_XDECREF(logger);
    Py_XDECREF(message);
    Py_XDECREF(ts);
    Py_XDECREF(pid);
    Py_XDECREF(instance);
    Py_XDECREF(extra);
    Py_XDECREF(params);
    Py_XDECREF(lineno);
    Py_XDECREF(key);
    Py_XDECREF(rec);
    return rc;
}

/* str field f of record == the n ASCII bytes at s. */
static int
rec_field_eq(PyObject *record, int f, const char *s, Py_ssize_t n)
{
    PyObject *v = rec_get(record, f);
    int eq;
    if (v == NULL)
        return -1;
    eq = str_eq(v, s, n);
    Py_DECREF(v);
    return eq;
}

/*
 * Mirrors RecordReader._header(groups, lineno) (and read()'s inline
 * copy of it) for a header found by match_header(): a continuation line
 * of the current record, or a new record. Returns the completed record
 * (new reference), Py_None (borrowed) when none completed, NULL on error.
 */
static PyObject *
ri_header(ReadIter *self, const char *s, Py_ssize_t n, const Header *h)
{
    PyObject *current = self->current, *done;
    const char *msg = s + h->msg0;
    Py_ssize_t msg_len = n - h->msg0;
    if (current != NULL) {
        PyObject *key = self->key;
        int same = (PyTuple_Check(key) && PyTuple_GET_SIZE(key) == 3 &&
                    str_eq(PyTuple_GET_ITEM(key, 0), s + h->ts0,
                           h->ts1 - h->ts0) &&
                    str_eq(PyTuple_GET_ITEM(key, 1), s + h->pid0,
                           h->pid1 - h->pid0) &&
                    str_eq(PyTuple_GET_ITEM(key, 2), s + h->lg0,
                           h->lg1 - h->lg0));
        if (same && h->in0 >= 0) {
            same = rec_field_eq(current, F_INSTANCE_ID, s + h->in0, 36);
            if (same < 0)
                return NULL;
        }
        if (same) {
            int tb = starts_with(msg, msg_len, traceback_text,
                                 traceback_len);
            if (h->ctx0 < 0) {
                /* oslo.log's logging_exception_prefix. */
                if (ri_append(self, current, msg, msg_len) < 0)
                    return NULL;
                if (tb) {
                    self->in_tb = 1;
                    self->dirty = 1;
                }
                return Py_None;
            }
            if (self->ctx != Py_None &&
                    str_eq(self->ctx, s + h->ctx0, h->ctx1 - h->ctx0)) {
                int lv = rec_field_eq(current, F_LEVEL,
                                      level_names[h->level],
                                      level_lens[h->level]);
                if (lv < 0)
                    return NULL;
                if (lv && (self->in_tb || tb ||
                           (msg_len > 0 && msg[0] == ' '))) {
                    /* Formats that repeat the context on traceback
                     * lines. */
                    if (ri_append(self, current, msg, msg_len) < 0)
                        return NULL;
                    self->in_tb = 1;
                    self->dirty = 1;
                    return Py_None;
                }
            }
        }
        /* done = self._finish() */
        done = current;
        self->current = NULL;
        self->dirty = 1;
        self->completed++;
        if (ri_complete(self, done) < 0 ||
                ri_start_record(self, s, n, h) < 0) {
            Py_DECREF(done);
            return NULL;
        }
        return done;
    }
    if (ri_start_record(self, s, n, h) < 0)
        return NULL;
    return Py_None;
}

/* The line's text as a str (the original object when it is one). */
static PyObject *
line_obj(PyObject *raw, const char *s, Py_ssize_t n)
{
    if (raw != NULL && PyUnicode_CheckExact(raw) &&
            PyUnicode_GET_LENGTH(raw) == n) {
        Py_INCREF(raw);
        return raw;
    }
    return ascii_str(s, n);
}

/* reader.<name>(line, lineno) with the line as a str. */
static PyObject *
ri_call_line(ReadIter *self, PyObject *name, PyObject *raw, const char *s,
             Py_ssize_t n)
{
    PyObject *line = line_obj(raw, s, n);
    int rc;
    if (line == NULL)
        return NULL;
    rc = ri_call(self, name, line);
    Py_DECREF(line);
    return rc < 0 ? NULL : Py_None;
}

/* Mirrors RecordReader._other(line, lineno) for an ASCII line without a
 * header at its start. */
static PyObject *
ri_other(ReadIter *self, PyObject *raw, const char *s, Py_ssize_t n)
{
    Header h;
    Py_ssize_t i, r;
    /* if line[:2] == '{"' and '"levelname"' in line: _json() */
    if (n >= 2 && s[0] == '{' && s[1] == '"') {
        for (i = 0; i + 11 <= n; i++)
            if (s[i] == '"' && memcmp(s + i, "\"levelname\"", 11) == 0)
                return ri_call_line(self, s_other, raw, s, n);
    }
    /* _BINARY_RE.search(line): counted and unparsed by _other(). */
    for (i = 0; i < n; i++)
        if (is_binary[(unsigned char)s[i]])
            return ri_call_line(self, s_other, raw, s, n);
    /* _PREFIXED_RE.match(line): '\S+ ' then the header. */
    r = 0;
    while (r < n && !is_space[(unsigned char)s[r]])
        r++;
    if (r > 0 && r < n && s[r] == ' ' && match_header(s, n, r + 1, &h))
        return ri_header(self, s, n, &h);
    if (self->current != NULL) {
        /* A bare continuation line. */
        if (ri_append(self, self->current, s, n) < 0)
            return NULL;
        return Py_None;
    }
    /* not line.strip(): only \t \n \r and space are left (the other
     * ASCII whitespace is binary, above). */
    for (i = 0; i < n; i++)
        if (!is_space[(unsigned char)s[i]])
            break;
    if (i == n) {
        if (dict_add(self->stats, s_blank, 1) < 0)
            return NULL;
        return Py_None;
    }
    return ri_call_line(self, s_unparsed, raw, s, n);
}

/* The body of read()'s loop for one raw line. Returns a completed record
 * (new reference), Py_None (borrowed) or NULL on error; records of Python
 * steps are queued in self->pending. */
static PyObject *
ri_line(ReadIter *self, PyObject *raw)
{
    const char *s;
    Py_ssize_t n;
    Header h;
    if (PyBytes_CheckExact(raw)) {
        s = PyBytes_AS_STRING(raw);
        n = PyBytes_GET_SIZE(raw);
        if (n > self->limit)
            goto feed;
        if (!all_ascii(s, n)) {
            /* line = raw.decode('utf-8'); else feed() */
            PyObject *line = PyUnicode_DecodeUTF8(s, n, NULL);
            int rc;
            if (line == NULL) {
                if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
                    return NULL;
                PyErr_Clear();
                goto feed;
            }
            rc = ri_call(self, s_line, line);
            Py_DECREF(line);
            return rc < 0 ? NULL : Py_None;
        }
        raw = NULL;     /* no str to reuse */
    }
    else if (PyUnicode_CheckExact(raw)) {
        n = PyUnicode_GET_LENGTH(raw);
        if (n > self->limit)
            goto feed;
        if (!PyUnicode_IS_ASCII(raw))
            return ri_call(self, s_line, raw) < 0 ? NULL : Py_None;
        s = PyUnicode_DATA(raw);
    }
    else {
        n = PyObject_Length(raw);
        if (n < 0)
            return NULL;
        if (n > self->limit)
            goto feed;
        return ri_call(self, s_line, raw) < 0 ? NULL : Py_None;
    }
    self->counted++;
    if (n && s[n - 1] == '\n') {
        n--;
        if (n && s[n - 1] == '\r')
            n--;
    }
    if (match_header(s, n, 0, &h))
        return ri_header(self, s, n, &h);
    return ri_other(self, raw, s, n);
feed:
    return ri_call(self, s_feed, raw) < 0 ? NULL : Py_None;
}

static PyObject *
ri_take_pending(ReadIter *self)
{
    PyObject *rec;
    if (self->pending == NULL)
        return NULL;
    rec = PyList_GET_ITEM(self->pending, self->pending_pos);
    Py_INCREF(rec);
    self->pending_pos++;
    if (self->pending_pos >= PyList_GET_SIZE(self->pending))
        Py_CLEAR(self->pending);
    return rec;
}

/* The end of read(): counters added, everything let go. */
static int
ri_end(ReadIter *self)
{
    int rc = 0;
    if (self->state == 1)
        rc = ri_flush_counters(self);
    self->state = 2;
    Py_CLEAR(self->lines);
    Py_CLEAR(self->current);
    Py_CLEAR(self->key);
    Py_CLEAR(self->ctx);
    Py_CLEAR(self->last_ts);
    return rc;
}

static PyObject *
ri_next(ReadIter *self)
{
    PyObject *raw, *out;
    if (self->pending != NULL)
        return ri_take_pending(self);
    if (self->state == 2)
        return NULL;
    if (self->state == 0) {
        if (ri_start(self) < 0) {
            self->state = 2;
            return NULL;
        }
        self->state = 1;
    }
    if (ri_load(self) < 0)
        goto fail;
    for (;;) {
        raw = PyIter_Next(self->lines);
        if (raw == NULL) {
            if (PyErr_Occurred())
                goto fail;
            if (ri_store(self) < 0)
                goto fail;
            ri_end(self);   /* sets an exception if it fails */
            return NULL;
        }
        self->lineno++;
        out = ri_line(self, raw);
        Py_DECREF(raw);
        if (out == NULL)
            goto fail;
        if (out != Py_None) {
            if (ri_store(self) < 0) {
                Py_DECREF(out);
                goto fail;
            }
            return out;
        }
        if (self->pending != NULL) {
            if (ri_store(self) < 0)
                goto fail;
            return ri_take_pending(self);
        }
    }
fail:
    {
        /* Like an exception leaving the generator: the state as it
         * stands, the counters added (finally), no more records. */
        PyObject *et, *ev, *tb;
        PyErr_Fetch(&et, &ev, &tb);
        if (ri_store(self) < 0 || ri_end(self) < 0)
            PyErr_Clear();
        PyErr_Restore(et, ev, tb);
        Py_CLEAR(self->pending);
        self->state = 2;
        return NULL;
    }
}

/* An iterator dropped before its end: read()'s finally still runs (as
 * when a generator is closed or collected). */
static void
ri_finalize(ReadIter *self)
{
    PyObject *et, *ev, *tb;
    if (self->state != 1)
        return;
    PyErr_Fetch(&et, &ev, &tb);
    if (ri_store(self) < 0 || ri_end(self) < 0)
        PyErr_WriteUnraisable((PyObject *)self);
    PyErr_Restore(et, ev, tb);
}

static PyObject *
ri_close(ReadIter *self, PyObject *unused)
{
    Py_CLEAR(self->pending);
    if (self->state == 1) {
        if (ri_store(self) < 0 || ri_end(self) < 0)
            return NULL;
    }
    self->state = 2;
    Py_RETURN_NONE;
}

static void
ri_dealloc(ReadIter *self)
{
    if (PyObject_CallFinalizerFromDealloc((PyObject *)self) < 0)
        return;
    PyObject_GC_UnTrack(self);
    ri_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef ri_methods[] = {
    {"close", (PyCFunction)ri_close, METH_NOARGS,
     "Stop reading: the counters are added to the reader's stats."},
    {NULL, NULL, 0, NULL}
};

PyDoc_STRVAR(ri_doc,
"RecordIterator(reader, lines, lineno=0)\n\n"
"What RecordReader.read(lines, lineno) returns when the accelerator is\n"
"loaded: the same records, in the same order, with the same effects on\n"
"the reader (its state and stats), as the pure-Python generator.");

static PyTypeObject ReadIter_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "logrca.parsing._speedups.RecordIterator",
    .tp_basicsize = sizeof(ReadIter),
    .tp_dealloc = (destructor)ri_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = ri_doc,
    .tp_traverse = (traverseproc)ri_traverse,
    .tp_clear = (inquiry)ri_clear,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)ri_next,
    .tp_methods = ri_methods,
    .tp_new = ri_new,
    .tp_finalize = (destructor)ri_finalize,
};

/* ---------------------------------------------------------------------
 * Shape miner
 * --------------------------------------------------------------------- */

/* shape's globals dict, given by setup_shape(). */
static PyObject *shape_ns = NULL;
static char wildcard_text[16];
static Py_ssize_t wildcard_len = 0;
/* mask_token_full() in C: only for the wildcard '<*>' it was written
 * for (its characters matter to _RUN and _WILDCARDS). */
static int use_full_c = 0;

static PyObject *
setup_shape(PyObject *module, PyObject *args)
{
    PyObject *ns, *wc;
    if (!PyArg_ParseTuple(args, "O!:setup_shape", &PyDict_Type, &ns))
        return NULL;
    wc = PyDict_GetItemString(ns, "WILDCARD");
    if (wc == NULL || !PyUnicode_Check(wc) || !PyUnicode_IS_ASCII(wc) ||
            PyUnicode_GET_LENGTH(wc) >= (Py_ssize_t)sizeof(wildcard_text)) {
        PyErr_SetString(PyExc_ValueError, "not the shape module");
        return NULL;
    }
    wildcard_len = PyUnicode_GET_LENGTH(wc);
    memcpy(wildcard_text, PyUnicode_DATA(wc), wildcard_len);
    use_full_c = wildcard_len == 3 && memcmp(wildcard_text, "<*>", 3) == 0;
    Py_INCREF(ns);
    Py_XSETREF(shape_ns, ns);
    Py_RETURN_NONE;
}

static PyObject *
shape_get(const char *name)
{
    PyObject *v = PyDict_GetItemString(shape_ns, name);
    if (v == NULL)
        PyErr_Format(PyExc_RuntimeError, "shape.%s is missing", name);
    return v;
}

static int
shape_size(const char *name, Py_ssize_t *out)
{
    PyObject *v = shape_get(name);
    if (v == NULL)
        return -1;
    *out = PyLong_AsSsize_t(v);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

static int
all_digits(const char *s, Py_ssize_t n)
{
    Py_ssize_t i;
    for (i = 0; i < n; i++)
        if (!IS_DIGIT(s[i]))
            return 0;
    return 1;
}

static int
all_hex(const char *s, Py_ssize_t n)
{
    Py_ssize_t i;
    for (i = 0; i < n; i++)
        if (!is_hex[(unsigned char)s[i]])
            return 0;
    return 1;
}

/* [0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-
 * [0-9a-fA-F]{12}, the whole of s. */
static int
is_uuid(const char *s, Py_ssize_t n)
{
    Py_ssize_t i;
    if (n != 36)
        return 0;
    for (i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        }
        else if (!is_hex[(unsigned char)s[i]])
            return 0;
    }
    return 1;
}

/* Skips \.\d+ at s[j] if there; returns the new position. */
static Py_ssize_t
skip_fraction(const char *s, Py_ssize_t n, Py_ssize_t j)
{
    if (j + 1 < n && s[j] == '.' && IS_DIGIT(s[j + 1])) {
        j += 2;
        while (j < n && IS_DIGIT(s[j]))
            j++;
    }
    return j;
}

/*
 * Mirrors shape._SIMPLE.fullmatch(core) on ASCII text: one alternative
 * matches the whole core. Each alternative is checked on its own; the
 * greedy reading of each is its only possible match (a shorter run of
 * digits leaves a digit where a dot, colon, letter or the end must be).
 */
static int
simple_fullmatch(const char *s, Py_ssize_t n)
{
    Py_ssize_t i, j, g;
    /* (?:req-)?UUID */
    if (is_uuid(s, n) ||
            (n == 40 && memcmp(s, "req-", 4) == 0 && is_uuid(s + 4, 36)))
        return 1;
    /* [-+]?\d+(?:\.\d+)?[A-Za-z%]* */
    i = (n > 0 && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
    j = i;
    while (j < n && IS_DIGIT(s[j]))
        j++;
    if (j > i) {
        j = skip_fraction(s, n, j);
        while (j < n && (IS_ALPHA(s[j]) || s[j] == '%'))
            j++;
        if (j == n)
            return 1;
    }
    /* [0-9a-fA-F]{32} */
    if (n == 32 && all_hex(s, n))
        return 1;
    /* 0x[0-9a-fA-F]+ */
    if (n >= 3 && s[0] == '0' && s[1] == 'x' && all_hex(s + 2, n - 2))
        return 1;
    /* \d\d:\d\d:\d\d(?:\.\d+)? */
    if (n >= 8 && all_digits(s, 2) && s[2] == ':' && all_digits(s + 3, 2)
            && s[5] == ':' && all_digits(s + 6, 2) &&
            skip_fraction(s, n, 8) == n)
        return 1;
    /* \d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d:\d\d(?:\.\d+)?Z?)? */
    if (n >= 10 && all_digits(s, 4) && s[4] == '-' &&
            all_digits(s + 5, 2) && s[7] == '-' && all_digits(s + 8, 2)) {
        if (n == 10)
            return 1;
        if (n >= 19 && (s[10] == 'T' || s[10] == ' ') &&
                all_digits(s + 11, 2) && s[13] == ':' &&
                all_digits(s + 14, 2) && s[16] == ':' &&
                all_digits(s + 17, 2)) {
            j = skip_fraction(s, n, 19);
            if (j < n && s[j] == 'Z')
                j++;
            if (j == n)
                return 1;
        }
    }
    /* \d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?::\d+)? */
    j = 0;
    for (g = 0; g < 4; g++) {
        i = j;
        while (j < n && IS_DIGIT(s[j]))
            j++;
        if (j == i || j - i > 3)
            return 0;
        if (g < 3) {
            if (j >= n || s[j] != '.')
                return 0;
            j++;
        }
    }
    if (j == n)
        return 1;
    if (s[j] == ':' && j + 1 < n && all_digits(s + j + 1, n - j - 1))
        return 1;
    return 0;
}

/* ASCII letter or digit ([A-Za-z0-9]). */
#define IS_ALNUM(c) (IS_DIGIT(c) || IS_ALPHA(c))

/* masks._R after a core ending at e: (?=[^A-Za-z0-9])|$ */
static int
right_ok(const char *s, Py_ssize_t n, Py_ssize_t e)
{
    return e == n || !IS_ALNUM(s[e]);
}

static Py_ssize_t
digit_run(const char *s, Py_ssize_t n, Py_ssize_t p)
{
    Py_ssize_t q = p;
    while (q < n && IS_DIGIT(s[q]))
        q++;
    return q - p;
}

/*
 * The cores of the bounded masks of logrca.parsing.masks at s[p], each
 * followed by masks._R; the end of the match or -1. Each follows the
 * regex's backtracking: a greedy part given back leaves a digit or hex
 * digit (alphanumeric) where the boundary needs none, so only the
 * choices tried below can match.
 */
static Py_ssize_t
core_req(const char *s, Py_ssize_t n, Py_ssize_t p)
{
    /* req-[0-9a-fA-F]{8}-...-[0-9a-fA-F]{12} */
    if (n - p >= 40 && memcmp(s + p, "req-", 4) == 0 &&
            is_uuid(s + p + 4, 36) && right_ok(s, n, p + 40))
        return p + 40;
    return -1;
}

static Py_ssize_t
core_uuid(const char *s, Py_ssize_t n, Py_ssize_t p)
{
    if (n - p >= 36 && is_uuid(s + p, 36) && right_ok(s, n, p + 36))
        return p + 36;
    return -1;
}

static Py_ssize_t
core_mac(const char *s, Py_ssize_t n, Py_ssize_t p)
{
    /* (?:[0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2} */
    int i;
    if (n - p < 17)
        return -1;
    for (i = 0; i < 17; i++) {
        if (i % 3 == 2) {
            if (s[p + i] != ':')
                return -1;
        }
        else if (!is_hex[(unsigned char)s[p + i]])
            return -1;
    }
    return right_ok(s, n, p + 17) ? p + 17 : -1;
}

static Py_ssize_t
core_ip(const char *s, Py_ssize_t n, Py_ssize_t p)
{
    /* \d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?:[:/]\d+)? */
    Py_ssize_t q = p, r;
    int g;
    for (g = 0; g < 4; g++) {
        r = digit_run(s, n, q);
        if (r < 1 || r > 3)
            return -1;
        q += r;
        if (g < 3) {
            if (q >= n || s[q] != '.')
                return -1;
            q++;
        }
    }
    if (q + 1 < n && (s[q] == ':' || s[q] == '/')) {
        r = digit_run(s, n, q + 1);
        if (r > 0 && right_ok(s, n, q + 1 + r))
            return q + 1 + r;
    }
    return right_ok(s, n, q) ? q : -1;
}

static Py_ssize_t
core_hex(const char *s, Py_ssize_t n, Py_ssize_t p)
{
    /* 0x[0-9a-fA-F]+|[0-9a-fA-F]{32}|[0-9a-fA-F]{40}|[0-9a-fA-F]{64} */
    static const Py_ssize_t sizes[3] = {32, 40, 64};
    Py_ssize_t q;
    int i;
    if (n - p >= 3 && s[p] == '0' && s[p + 1] == 'x' &&
            is_hex[(unsigned char)s[p + 2]]) {
        q = p + 2;
        while (q < n && is_hex[(unsigned char)s[q]])
            q++;
        if (right_ok(s, n, q))
            return q;
    }
    for (i = 0; i < 3; i++)
        if (n - p >= sizes[i] && all_hex(s + p, sizes[i]) &&
                right_ok(s, n, p + sizes[i]))
            return p + sizes[i];
    return -1;
}

static Py_ssize_t
core_http(const char *s, Py_ssize_t n, Py_ssize_t p)
{
    /* HTTP/\d(?:\.\d)? */
    Py_ssize_t q = p + 6;
    if (n - p < 6 || memcmp(s + p, "HTTP/", 5) != 0 || !IS_DIGIT(s[p + 5]))
        return -1;
    if (q + 1 < n && s[q] == '.' && IS_DIGIT(s[q + 1]) &&
            right_ok(s, n, q + 2))
        return q + 2;
    return right_ok(s, n, q) ? q : -1;
}

static Py_ssize_t
core_num(const char *s, Py_ssize_t n, Py_ssize_t p)
{
    /* [-+]?\d+(?:\.\d+)? */
    Py_ssize_t q = p, r;
    if (q < n && (s[q] == '-' || s[q] == '+'))
        q++;
    r = digit_run(s, n, q);
    if (r == 0)
        return -1;
    q += r;
    if (q + 1 < n && s[q] == '.') {
        r = digit_run(s, n, q + 1);
        if (r > 0 && right_ok(s, n, q + 1 + r))
            return q + 1 + r;
    }
    return right_ok(s, n, q) ? q : -1;
}

/* The end of shape._VARIABLE's match at s[p], or -1: PATH first, then
 * the bounded masks in masks.MASKS order (REQ, UUID, MAC, IP, HEX, HTTP,
 * NUM). */
static Py_ssize_t
variable_at(const char *s, Py_ssize_t n, Py_ssize_t p)
{
    Py_ssize_t e;
    unsigned char before = p > 0 ? (unsigned char)s[p - 1] : 0;
    /* PATH: ((?<=[\s"\'(=:])|^)/[^\s"\',;)]* */
    if (s[p] == '/' && (p == 0 || is_space[before] || before == '"' ||
                        before == '\'' || before == '(' || before == '=' ||
                        before == ':')) {
        e = p + 1;
        while (e < n && !is_space[(unsigned char)s[e]] && s[e] != '"' &&
               s[e] != '\'' && s[e] != ',' && s[e] != ';' && s[e] != ')')
            e++;
        return e;
    }
    /* (?:(?<=[^A-Za-z0-9])|^) */
    if (p > 0 && IS_ALNUM(before))
        return -1;
    if ((e = core_req(s, n, p)) >= 0 || (e = core_uuid(s, n, p)) >= 0 ||
            (e = core_mac(s, n, p)) >= 0 || (e = core_ip(s, n, p)) >= 0 ||
            (e = core_hex(s, n, p)) >= 0 || (e = core_http(s, n, p)) >= 0 ||
            (e = core_num(s, n, p)) >= 0)
        return e;
    return -1;
}

/* shape._RUN's characters: [^\s<>=:,;()\[\]{}"'] */
static int
run_char(unsigned char c)
{
    return !is_space[c] && c != '<' && c != '>' && c != '=' && c != ':' &&
           c != ',' && c != ';' && c != '(' && c != ')' && c != '[' &&
           c != ']' && c != '{' && c != '}' && c != '"' && c != '\'';
}

static int
at_wildcard(const char *s, Py_ssize_t n, Py_ssize_t p)
{
    return n - p >= wildcard_len &&
           memcmp(s + p, wildcard_text, wildcard_len) == 0;
}

/*
 * Mirrors shape.mask_token_full(token) for ASCII tokens, the three
 * substitutions done one after the other into buffers (each at most
 * three times as long as its input: a one-character match becomes the
 * wildcard):
 *   _VARIABLE.sub(WILDCARD, token)
 *   _RUN.sub(_digit_run, masked) when it holds a digit: each run of
 *     wildcards and word-ish characters holding a digit becomes one
 *     wildcard;
 *   _WILDCARDS.sub(WILDCARD, masked) when it holds two wildcards or more:
 *     <*>(?:[^\sA-Za-z0-9<]*<*>)+ becomes one (the run between two
 *     wildcards cannot hold '<', so its greedy reading is the match).
 * Needs the wildcard to be '<*>' (checked by setup_shape()).
 */
static PyObject *
mask_token_full(const char *s, Py_ssize_t n)
{
    char *a = NULL, *b = NULL;
    Py_ssize_t p, e, na = 0, nb = 0, cap = 3 * n + 3, count;
    int digit = 0;
    PyObject *out = NULL;
    a = PyMem_Malloc(cap);
    b = PyMem_Malloc(cap);
    if (a == NULL || b == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    /* _VARIABLE.sub */
    for (p = 0; p < n;) {
        e = variable_at(s, n, p);
        if (e > p) {
            memcpy(a + na, wildcard_text, wildcard_len);
            na += wildcard_len;
            p = e;
        }
        else {
            if (IS_DIGIT(s[p]))
                digit = 1;
            a[na++] = s[p++];
        }
    }
    /* _RUN.sub(_digit_run, ...) if _has_digit(masked) */
    if (digit) {
        for (p = 0; p < na;) {
            Py_ssize_t q = p;
            int has = 0;
            for (;;) {
                if (at_wildcard(a, na, q))
                    q += wildcard_len;
                else if (q < na && run_char((unsigned char)a[q])) {
                    has |= IS_DIGIT(a[q]);
                    q++;
                }
                else
                    break;
            }
            if (q == p) {
                b[nb++] = a[p++];
                continue;
            }
            if (has) {
                memcpy(b + nb, wildcard_text, wildcard_len);
                nb += wildcard_len;
            }
            else {
                memcpy(b + nb, a + p, q - p);
                nb += q - p;
            }
            p = q;
        }
        memcpy(a, b, nb);
        na = nb;
    }
    /* masked.count(WILDCARD) > 1: _WILDCARDS.sub */
    count = 0;
    for (p = 0; p < na;) {
        if (at_wildcard(a, na, p)) {
            count++;
            p += wildcard_len;
        }
        else
            p++;
    }
    if (count > 1) {
        nb = 0;
        for (p = 0; p < na;) {
            Py_ssize_t q, end = -1;
            if (at_wildcard(a, na, p)) {
                q = p + wildcard_len;
                for (;;) {
                    Py_ssize_t r = q;
                    while (r < na && a[r] != '<' && !IS_ALNUM(a[r]) &&
                           !is_space[(unsigned char)a[r]])
                        r++;
                    if (!at_wildcard(a, na, r))
                        break;
                    q = end = r + wildcard_len;
                }
            }
            if (end > 0) {
                memcpy(b + nb, wildcard_text, wildcard_len);
                nb += wildcard_len;
                p = end;
            }
            else
                b[nb++] = a[p++];
        }
        memcpy(a, b, nb);
        na = nb;
    }
    out = ascii_str(a, na);
done:
    PyMem_Free(a);
    PyMem_Free(b);
    return out;
}

/*
 * Mirrors shape.mask_token(token) on ASCII str tokens: no digit and no
 * '/': the token itself; a single id or number between punctuation: that
 * core replaced by the wildcard; anything else goes to
 * shape.mask_token_full(). Non-ASCII tokens go to shape.mask_token().
 */
static PyObject *
mask_token(PyObject *token)
{
    const char *s;
    Py_ssize_t n, i, a, b;
    PyObject *fn, *out;
    char *d;
    if (!PyUnicode_CheckExact(token) || !PyUnicode_IS_ASCII(token)) {
        fn = shape_get("mask_token");
        return fn == NULL ? NULL : PyObject_CallOneArg(fn, token);
    }
    s = PyUnicode_DATA(token);
    n = PyUnicode_GET_LENGTH(token);
    /* _HAS_VARIABLE.search(token) is None */
    for (i = 0; i < n; i++)
        if (IS_DIGIT(s[i]) || s[i] == '/')
            break;
    if (i == n) {
        Py_INCREF(token);
        return token;
    }
    /* core = token.strip(_PUNCT) */
    a = 0;
    b = n;
    while (a < b && is_punct[(unsigned char)s[a]])
        a++;
    while (b > a && is_punct[(unsigned char)s[b - 1]])
        b--;
    if (b > a && simple_fullmatch(s + a, b - a)) {
        /* token[:start] + WILDCARD + token[start + len(core):], start =
         * token.find(core) = a (the characters before are punctuation,
         * the core's first is not). */
        out = PyUnicode_New(a + wildcard_len + (n - b), 127);
        if (out == NULL)
            return NULL;
        d = PyUnicode_DATA(out);
        memcpy(d, s, a);
        memcpy(d + a, wildcard_text, wildcard_len);
        memcpy(d + a + wildcard_len, s + b, n - b);
        return out;
    }
    if (use_full_c)
        return mask_token_full(s, n);
    fn = shape_get("mask_token_full");
    return fn == NULL ? NULL : PyObject_CallOneArg(fn, token);
}

/* cluster.size += 1 */
static int
cluster_grow(PyObject *cluster)
{
    PyObject *size, *one, *bigger;
    int rc;
    size = PyObject_GetAttr(cluster, s_size);
    if (size == NULL)
        return -1;
    one = PyLong_FromLong(1);
    bigger = one ? PyNumber_InPlaceAdd(size, one) : NULL;
    Py_XDECREF(one);
    Py_DECREF(size);
    if (bigger == NULL)
        return -1;
    rc = PyObject_SetAttr(cluster, s_size, bigger);
    Py_DECREF(bigger);
    return rc;
}

/* [tokens[i] for i in variables] */
static PyObject *
pick(PyObject *tokens, PyObject *variables)
{
    PyObject *out, *it, *idx;
    out = PyList_New(0);
    if (out == NULL)
        return NULL;
    it = PyObject_GetIter(variables);
    if (it == NULL) {
        Py_DECREF(out);
        return NULL;
    }
    while ((idx = PyIter_Next(it)) != NULL) {
        PyObject *tok = PyObject_GetItem(tokens, idx);
        Py_DECREF(idx);
        if (tok == NULL || PyList_Append(out, tok) < 0) {
            Py_XDECREF(tok);
            Py_DECREF(it);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(tok);
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

/* (cluster.id, cluster.template, params); steals params. */
static PyObject *
shape_result(PyObject *cluster, PyObject *params)
{
    PyObject *cid, *template, *res = NULL;
    cid = PyObject_GetAttr(cluster, s_id);
    template = cid ? PyObject_GetAttr(cluster, s_template) : NULL;
    if (template != NULL)
        res = PyTuple_Pack(3, cid, template, params);
    Py_XDECREF(cid);
    Py_XDECREF(template);
    Py_DECREF(params);
    return res;
}

/* Mirrors ShapeParser._mask(tokens): the masked tokens, through the
 * parser's token cache. */
static PyObject *
shape_mask(PyObject *cache, PyObject *tokens, Py_ssize_t max_tokens)
{
    Py_ssize_t i, n = PyList_GET_SIZE(tokens);
    PyObject *masked = PyList_New(n);
    int missing = 0;
    if (masked == NULL)
        return NULL;
    /* masked = list(map(cache.get, tokens)) */
    for (i = 0; i < n; i++) {
        PyObject *v = PyDict_GetItemWithError(cache,
                                              PyList_GET_ITEM(tokens, i));
        if (v == NULL) {
            if (PyErr_Occurred()) {
                Py_DECREF(masked);
                return NULL;
            }
            missing = 1;
            v = Py_None;
        }
        Py_INCREF(v);
        PyList_SET_ITEM(masked, i, v);
    }
    if (!missing)
        return masked;
    /* the misses in order, the cache cleared when full */
    for (i = 0; i < n; i++) {
        PyObject *token, *m;
        if (PyList_GET_ITEM(masked, i) != Py_None)
            continue;
        token = PyList_GET_ITEM(tokens, i);
        if (PyDict_GET_SIZE(cache) >= max_tokens)
            PyDict_Clear(cache);
        m = mask_token(token);
        if (m == NULL) {
            Py_DECREF(masked);
            return NULL;
        }
        PyList_SetItem(masked, i, m);   /* steals m, drops the None */
        if (PyDict_SetItem(cache, token, m) < 0) {
            Py_DECREF(masked);
            return NULL;
        }
    }
    return masked;
}

/* Mirrors ShapeParser.add(message) (see the Python method; the steps are
 * in the same order). */
static PyObject *
shape_add(PyObject *self, PyObject *message)
{
    PyObject *messages = NULL, *hit, *res = NULL, *tokens = NULL;
    PyObject *masked = NULL, *key = NULL, *cluster = NULL, *params = NULL;
    PyObject *variables = NULL, *cache = NULL, *shapes = NULL;
    PyObject *entry = NULL;
    Py_ssize_t max_tokens, max_messages;

    if (!PyUnicode_CheckExact(message)) {
        PyObject *fn = shape_get("_PYTHON_ADD");
        return fn == NULL ? NULL
            : PyObject_CallFunctionObjArgs(fn, self, message, NULL);
    }
    messages = PyObject_GetAttr(self, s_messages);
    if (messages == NULL)
        return NULL;
    if (!PyDict_Check(messages)) {
        PyErr_SetString(PyExc_TypeError, "_messages is not a dict");
        goto done;
    }
    hit = PyDict_GetItemWithError(messages, message);
    if (hit != NULL) {
        PyObject *cvars;
        if (!PyTuple_Check(hit) || PyTuple_GET_SIZE(hit) != 3) {
            PyErr_SetString(PyExc_ValueError, "bad message cache entry");
            goto done;
        }
        Py_INCREF(hit);
        entry = hit;
        cluster = PyTuple_GET_ITEM(hit, 0);
        Py_INCREF(cluster);
        if (cluster_grow(cluster) < 0)
            goto done;
        cvars = PyObject_GetAttr(cluster, s_variables);
        if (cvars == NULL)
            goto done;
        if (PyTuple_GET_ITEM(hit, 1) != cvars) {
            /* The template widened since: take the parameters anew. */
            tokens = PyUnicode_Split(message, NULL, -1);
            params = tokens ? pick(tokens, cvars) : NULL;
            if (params == NULL) {
                Py_DECREF(cvars);
                goto done;
            }
            key = PyTuple_Pack(3, cluster, cvars, params);
            Py_DECREF(cvars);
            if (key == NULL || PyDict_SetItem(messages, message, key) < 0)
                goto done;
        }
        else {
            Py_DECREF(cvars);
            params = PyTuple_GET_ITEM(hit, 2);
            Py_INCREF(params);
        }
        /* list(params) */
        Py_SETREF(params, PySequence_List(params));
        if (params == NULL)
            goto done;
        res = shape_result(cluster, params);
        params = NULL;
        goto done;
    }
    if (PyErr_Occurred())
        goto done;
    if (shape_size("MAX_TOKENS", &max_tokens) < 0 ||
            shape_size("MAX_MESSAGES", &max_messages) < 0)
        goto done;
    tokens = PyUnicode_Split(message, NULL, -1);
    if (tokens == NULL)
        goto done;
    cache = PyObject_GetAttr(self, s_tokens);
    if (cache == NULL)
        goto done;
    if (!PyDict_Check(cache)) {
        PyErr_SetString(PyExc_TypeError, "_tokens is not a dict");
        goto done;
    }
    masked = shape_mask(cache, tokens, max_tokens);
    if (masked == NULL)
        goto done;
    key = PyUnicode_Join(s_space, masked);
    if (key == NULL)
        goto done;
    shapes = PyObject_GetAttr(self, s_shapes);
    if (shapes == NULL)
        goto done;
    if (!PyDict_Check(shapes)) {
        PyErr_SetString(PyExc_TypeError, "_shapes is not a dict");
        goto done;
    }
    /* cluster = self._shapes.get(key) or self._learn(masked, key) */
    cluster = PyDict_GetItemWithError(shapes, key);
    if (cluster != NULL)
        Py_INCREF(cluster);
    else if (PyErr_Occurred())
        goto done;
    else {
        cluster = PyObject_CallMethodObjArgs(self, s_learn, masked, key,
                                             NULL);
        if (cluster == NULL)
            goto done;
    }
    if (cluster_grow(cluster) < 0)
        goto done;
    variables = PyObject_GetAttr(cluster, s_variables);
    if (variables == NULL)
        goto done;
    params = pick(tokens, variables);
    if (params == NULL)
        goto done;
    /* the message cache, cleared when full (self._messages read again) */
    Py_SETREF(messages, PyObject_GetAttr(self, s_messages));
    if (messages == NULL)
        goto done;
    if (PyObject_Length(messages) >= max_messages) {
        PyObject *r = PyObject_CallMethod(messages, "clear", NULL);
        if (r == NULL)
            goto done;
        Py_DECREF(r);
    }
    else if (PyErr_Occurred())
        goto done;
    Py_SETREF(variables, PyObject_GetAttr(cluster, s_variables));
    if (variables == NULL)
        goto done;
    entry = PyTuple_Pack(3, cluster, variables, params);
    if (entry == NULL || PyObject_SetItem(messages, message, entry) < 0)
        goto done;
    res = shape_result(cluster, params);
    params = NULL;
done:
    Py_XDECREF(messages);
    Py_XDECREF(tokens);
    Py_XDECREF(masked);
    Py_XDECREF(key);
    Py_XDECREF(cluster);
    Py_XDECREF(params);
    Py_XDECREF(variables);
    Py_XDECREF(cache);
    Py_XDECREF(shapes);
    Py_XDECREF(entry);
    return res;
}

static PyMethodDef shape_add_def = {
    "add", (PyCFunction)shape_add, METH_O,
    "Learn from ``message``; return ``(template_id, template, params)``.\n\n"
    "The compiled ShapeParser.add (logrca.parsing._speedups): the same\n"
    "results and miner state as the pure-Python method."
};

static PyObject *
shape_add_method(PyObject *module, PyObject *cls)
{
    if (!PyType_Check(cls)) {
        PyErr_SetString(PyExc_TypeError, "a class is needed");
        return NULL;
    }
    if (shape_ns == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "setup_shape() not called");
        return NULL;
    }
    return PyDescr_NewMethod((PyTypeObject *)cls, &shape_add_def);
}

/* ---------------------------------------------------------------------
 * Sessionizer: logrca.agent.sessions.Sessionizer.add()
 *
 * The per-record step of the sessionizer, statement by statement as the
 * Python method (the reference, kept as sessions._PYTHON_ADD): the same
 * sessions in the same order, the same updates of each session, the same
 * heap entries and _now. New sessions are opened by calling back
 * Sessionizer._session(); out-of-order records push their heap entry
 * with the module's heapq.heappush (looked up when needed, as Python
 * does). Session fields are read and written through their slots when
 * Session has plain object slots and the object is exactly a Session,
 * else with getattr/setattr.
 * --------------------------------------------------------------------- */

#define N_SFIELDS 8
enum { S_KEY, S_RECORDS, S_COUNT, S_FIRST_TS, S_LAST_TS, S_STREAMS,
       S_ERRORS, S_SEQ };
static const char *sfield_names[N_SFIELDS] = {
    "key", "records", "count", "first_ts", "last_ts", "streams", "errors",
    "seq"
};
static PyObject *sfield_strs[N_SFIELDS];
static Py_ssize_t sfield_offsets[N_SFIELDS];
static PyTypeObject *session_type = NULL;
static int session_slots = 0;

/* sessions' globals dict, given by setup_sessions(); its REQUEST,
 * INSTANCE and WINDOW constants, read once there. */
static PyObject *sessions_ns = NULL;
static PyObject *k_request = NULL, *k_instance = NULL, *k_window = NULL;
static PyObject *ss_now, *ss_open, *ss_window, *ss_due, *ss_session;
static PyObject *ss_append, *ss_add, *ss_get, *ss_heappush, *ss_heapq;
static PyObject *ss_error_levels, *ss_one;

static PyObject *
setup_sessions(PyObject *module, PyObject *args)
{
    PyObject *ns, *type, *req, *inst, *win;
    int i, ok = 1;
    if (!PyArg_ParseTuple(args, "O!:setup_sessions", &PyDict_Type, &ns))
        return NULL;
    type = PyDict_GetItemString(ns, "Session");
    req = PyDict_GetItemString(ns, "REQUEST");
    inst = PyDict_GetItemString(ns, "INSTANCE");
    win = PyDict_GetItemString(ns, "WINDOW");
    if (type == NULL || !PyType_Check(type) || req == NULL ||
            inst == NULL || win == NULL) {
        PyErr_SetString(PyExc_ValueError, "not the sessions module");
        return NULL;
    }
    for (i = 0; ok && i < N_SFIELDS; i++) {
        PyObject *descr = PyObject_GetAttr(type, sfield_strs[i]);
        if (descr == NULL) {
            PyErr_Clear();
            ok = 0;
            break;
        }
        ok = (Py_IS_TYPE(descr, &PyMemberDescr_Type) &&
              ((PyMemberDescrObject *)descr)->d_member->type ==
              T_OBJECT_EX);
        if (ok)
            sfield_offsets[i] =
                ((PyMemberDescrObject *)descr)->d_member->offset;
        Py_DECREF(descr);
    }
    Py_INCREF(ns);
    Py_XSETREF(sessions_ns, ns);
    Py_INCREF(type);
    Py_XSETREF(session_type, (PyTypeObject *)type);
    session_slots = ok;
    Py_INCREF(req);
    Py_XSETREF(k_request, req);
    Py_INCREF(inst);
    Py_XSETREF(k_instance, inst);
    Py_INCREF(win);
    Py_XSETREF(k_window, win);
    return PyBool_FromLong(session_slots);
}

/* The slot of field f of a Session (borrowed; NULL when unset). */
#define SSLOT(s, f) (*(PyObject **)((char *)(s) + sfield_offsets[f]))

/* getattr(session, field) as a new reference. */
static PyObject *
sess_get(PyObject *s, int f)
{
    if (session_slots && Py_TYPE(s) == session_type) {
        PyObject *v = SSLOT(s, f);
        if (v != NULL) {
            Py_INCREF(v);
            return v;
        }
    }
    return PyObject_GetAttr(s, sfield_strs[f]);
}

/* setattr(session, field, value); steals value (NULL: an error). */
static int
sess_set(PyObject *s, int f, PyObject *value)
{
    int rc;
    if (value == NULL)
        return -1;
    if (session_slots && Py_TYPE(s) == session_type) {
        Py_XSETREF(SSLOT(s, f), value);
        return 0;
    }
    rc = PyObject_SetAttr(s, sfield_strs[f], value);
    Py_DECREF(value);
    return rc;
}

/* sessions.append(self._open.get(key) or self._session(key, ts));
 * steals key (NULL: an error). */
static int
session_for(PyObject *self, PyObject *open, PyObject *key, PyObject *ts,
            PyObject *sessions)
{
    PyObject *s;
    int t, rc = -1;
    if (key == NULL)
        return -1;
    if (PyDict_CheckExact(open)) {
        s = PyDict_GetItemWithError(open, key);
        if (s == NULL && PyErr_Occurred())
            goto done;
        s = s != NULL ? s : Py_None;
        Py_INCREF(s);
    }
    else {
        s = PyObject_CallMethodOneArg(open, ss_get, key);
        if (s == NULL)
            goto done;
    }
    t = PyObject_IsTrue(s);
    if (t < 0) {
        Py_DECREF(s);
        goto done;
    }
    if (!t) {
        Py_DECREF(s);
        s = PyObject_CallMethodObjArgs(self, ss_session, key, ts, NULL);
        if (s == NULL)
            goto done;
    }
    rc = PyList_Append(sessions, s);
    Py_DECREF(s);
done:
    Py_DECREF(key);
    return rc;
}

/* The loop body of Sessionizer.add() for one session. */
static int
session_update(PyObject *self, PyObject *s, PyObject *record, PyObject *ts,
               PyObject *stream, PyObject *window, int level_error)
{
    PyObject *v, *r;
    int t;
    /* session.records.append(record) */
    v = sess_get(s, S_RECORDS);
    if (v == NULL)
        return -1;
    r = PyObject_CallMethodOneArg(v, ss_append, record);
    Py_DECREF(v);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    /* session.count += 1 */
    v = sess_get(s, S_COUNT);
    if (v == NULL)
        return -1;
    r = PyNumber_InPlaceAdd(v, ss_one);
    Py_DECREF(v);
    if (sess_set(s, S_COUNT, r) < 0)
        return -1;
    if (ts != Py_None) {
        PyObject *last = sess_get(s, S_LAST_TS);
        if (last == NULL)
            return -1;
        if (last == Py_None) {
            Py_DECREF(last);
            Py_INCREF(ts);
            if (sess_set(s, S_FIRST_TS, ts) < 0)
                return -1;
        }
        else {
            t = PyObject_RichCompareBool(ts, last, Py_LT);
            Py_DECREF(last);
            if (t < 0)
                return -1;
            if (t) {
                /* and session.key[0] != WINDOW: out of log-time order,
                 * heapq.heappush(self._due,
                 *                (ts + window, session.seq, session)) */
                PyObject *key, *k0, *heapq, *push, *due, *deadline, *seq;
                PyObject *entry;
                key = sess_get(s, S_KEY);
                if (key == NULL)
                    return -1;
                k0 = PySequence_GetItem(key, 0);
                Py_DECREF(key);
                if (k0 == NULL)
                    return -1;
                t = PyObject_RichCompareBool(k0, k_window, Py_NE);
                Py_DECREF(k0);
                if (t < 0)
                    return -1;
                if (t) {
                    heapq = PyDict_GetItemWithError(sessions_ns, ss_heapq);
                    if (heapq == NULL) {
                        if (!PyErr_Occurred())
                            PyErr_SetString(PyExc_NameError,
                                            "name 'heapq' is not defined");
                        return -1;
                    }
                    push = PyObject_GetAttr(heapq, ss_heappush);
                    if (push == NULL)
                        return -1;
                    due = PyObject_GetAttr(self, ss_due);
                    deadline = due ? PyNumber_Add(ts, window) : NULL;
                    seq = deadline ? sess_get(s, S_SEQ) : NULL;
                    entry = seq ? PyTuple_Pack(3, deadline, seq, s) : NULL;
                    r = entry ? PyObject_CallFunctionObjArgs(push, due, entry,
                                                             NULL) : NULL;
                    Py_DECREF(push);
                    Py_XDECREF(due);
                    Py_XDECREF(deadline);
                    Py_XDECREF(seq);
                    Py_XDECREF(entry);
                    if (r == NULL)
                        return -1;
                    Py_DECREF(r);
                }
            }
        }
        Py_INCREF(ts);
        if (sess_set(s, S_LAST_TS, ts) < 0)
            return -1;
    }
    /* session.streams.add(stream) */
    v = sess_get(s, S_STREAMS);
    if (v == NULL)
        return -1;
    if (PySet_CheckExact(v))
        t = PySet_Add(v, stream);
    else {
        r = PyObject_CallMethodOneArg(v, ss_add, stream);
        t = r == NULL ? -1 : 0;
        Py_XDECREF(r);
    }
    Py_DECREF(v);
    if (t < 0)
        return -1;
    if (level_error) {
        /* session.errors += 1 */
        v = sess_get(s, S_ERRORS);
        if (v == NULL)
            return -1;
        r = PyNumber_InPlaceAdd(v, ss_one);
        Py_DECREF(v);
        if (sess_set(s, S_ERRORS, r) < 0)
            return -1;
    }
    return 0;
}

static PyObject *
session_add(PyObject *self, PyObject *record)
{
    PyObject *ts = NULL, *now = NULL, *open = NULL, *level = NULL;
    PyObject *stream = NULL, *sessions = NULL, *rid = NULL, *iid = NULL;
    PyObject *window = NULL, *start = NULL, *levels, *when, *q;
    PyObject *res = NULL;
    Py_ssize_t i;
    int t, level_error;

    if (sessions_ns == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "setup_sessions() not called");
        return NULL;
    }
    /* if ts is not None and (self._now is None or ts > self._now):
     *     self._now = ts */
    ts = rec_get(record, F_TIMESTAMP);
    if (ts == NULL)
        goto done;
    if (ts != Py_None) {
        now = PyObject_GetAttr(self, ss_now);
        if (now == NULL)
            goto done;
        t = now == Py_None ? 1 : PyObject_RichCompareBool(ts, now, Py_GT);
        if (t < 0 || (t && PyObject_SetAttr(self, ss_now, ts) < 0))
            goto done;
    }
    open = PyObject_GetAttr(self, ss_open);
    if (open == NULL)
        goto done;
    /* level_error = record.level in _ERROR_LEVELS */
    levels = PyDict_GetItemWithError(sessions_ns, ss_error_levels);
    if (levels == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_NameError,
                            "name '_ERROR_LEVELS' is not defined");
        goto done;
    }
    Py_INCREF(levels);
    level = rec_get(record, F_LEVEL);
    level_error = level == NULL ? -1 : PySequence_Contains(levels, level);
    Py_DECREF(levels);
    if (level_error < 0)
        goto done;
    stream = rec_get(record, F_STREAM);
    if (stream == NULL)
        goto done;
    sessions = PyList_New(0);
    if (sessions == NULL)
        goto done;
    /* rid = record.global_request_id or record.request_id */
    rid = rec_get(record, F_GLOBAL_REQUEST_ID);
    if (rid == NULL || (t = PyObject_IsTrue(rid)) < 0)
        goto done;
    if (!t) {
        Py_SETREF(rid, rec_get(record, F_REQUEST_ID));
        if (rid == NULL || (t = PyObject_IsTrue(rid)) < 0)
            goto done;
    }
    if (t) {
        if (session_for(self, open, PyTuple_Pack(2, k_request, rid), ts,
                        sessions) < 0)
            goto done;
    }
    /* if record.instance_id: */
    iid = rec_get(record, F_INSTANCE_ID);
    if (iid == NULL || (t = PyObject_IsTrue(iid)) < 0)
        goto done;
    if (t) {
        /* (read again, as the Python code does) */
        Py_SETREF(iid, rec_get(record, F_INSTANCE_ID));
        if (iid == NULL || session_for(self, open,
                                       PyTuple_Pack(2, k_instance, iid), ts,
                                       sessions) < 0)
            goto done;
    }
    /* when = ts if ts is not None else self._now */
    if (ts != Py_None)
        when = ts;
    else {
        Py_XSETREF(now, PyObject_GetAttr(self, ss_now));
        if (now == NULL)
            goto done;
        when = now;
    }
    window = PyObject_GetAttr(self, ss_window);
    if (window == NULL)
        goto done;
    /* int(when // window) * window if when is not None else 0 */
    if (when == Py_None)
        start = PyLong_FromLong(0);
    else {
        q = PyNumber_FloorDivide(when, window);
        if (q == NULL)
            goto done;
        Py_SETREF(q, PyNumber_Long(q));
        if (q == NULL)
            goto done;
        start = PyNumber_Multiply(q, window);
        Py_DECREF(q);
    }
    if (start == NULL || session_for(self, open,
                                     PyTuple_Pack(3, k_window, stream, start),
                                     ts, sessions) < 0)
        goto done;
    for (i = 0; i < PyList_GET_SIZE(sessions); i++) {
        if (session_update(self, PyList_GET_ITEM(sessions, i), record, ts,
                           stream, window, level_error) < 0)
            goto done;
    }
    res = sessions;
    sessions = NULL;
done:
    Py_XDECREF(ts);
    Py_XDECREF(now);
    Py_XDECREF(open);
    Py_XDECREF(level);
    Py_XDECREF(stream);
    Py_XDECREF(sessions);
    Py_XDECREF(rid);
    Py_XDECREF(iid);
    Py_XDECREF(window);
    Py_XDECREF(start);
    return res;
}

static PyMethodDef session_add_def = {
    "add", (PyCFunction)session_add, METH_O,
    "Add a record; return the sessions it now belongs to.\n\n"
    "The compiled Sessionizer.add (logrca.parsing._speedups): the same\n"
    "sessions and sessionizer state as the pure-Python method."
};

static PyObject *
session_add_method(PyObject *module, PyObject *cls)
{
    if (!PyType_Check(cls)) {
        PyErr_SetString(PyExc_TypeError, "a class is needed");
        return NULL;
    }
    if (sessions_ns == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "setup_sessions() not called");
        return NULL;
    }
    return PyDescr_NewMethod((PyTypeObject *)cls, &session_add_def);
}

/* ---------------------------------------------------------------------
 * Baseline detector: logrca.detectors.baseline.BaselineDetector.observe()
 *
 * Only the common case is done here: a record whose template was seen
 * before (or which has none) and whose level is not an error level,
 * which the Python method answers with an empty list and no change of
 * state. Anything else (a new template, an error record, a
 * _seen_templates that is not a set) goes to the pure-Python method
 * (baseline._PYTHON_OBSERVE), which then does all of its steps: none of
 * them was done here.
 * --------------------------------------------------------------------- */

static PyObject *baseline_ns = NULL;
static PyObject *bs_seen, *bs_python_observe;

static PyObject *
setup_baseline(PyObject *module, PyObject *args)
{
    PyObject *ns;
    if (!PyArg_ParseTuple(args, "O!:setup_baseline", &PyDict_Type, &ns))
        return NULL;
    if (PyDict_GetItemString(ns, "_PYTHON_OBSERVE") == NULL ||
            PyDict_GetItemString(ns, "_ERROR_LEVELS") == NULL) {
        PyErr_SetString(PyExc_ValueError, "not the baseline module");
        return NULL;
    }
    Py_INCREF(ns);
    Py_XSETREF(baseline_ns, ns);
    Py_RETURN_NONE;
}

static PyObject *
baseline_get(PyObject *name)
{
    PyObject *v = PyDict_GetItemWithError(baseline_ns, name);
    if (v == NULL && !PyErr_Occurred())
        PyErr_Format(PyExc_NameError, "name %R is not defined", name);
    return v;
}

static PyObject *
baseline_observe(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *record, *sessions, *tid = NULL, *seen = NULL, *level = NULL;
    PyObject *levels, *python, *res = NULL;
    int t, quiet = 0;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError,
                        "observe() takes a record and its sessions");
        return NULL;
    }
    if (baseline_ns == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "setup_baseline() not called");
        return NULL;
    }
    record = args[0];
    sessions = args[1];
    tid = rec_get(record, F_TEMPLATE_ID);
    if (tid == NULL)
        goto done;
    if (tid != Py_None) {
        /* template_id in self._seen_templates: no new template */
        seen = PyObject_GetAttr(self, bs_seen);
        if (seen == NULL)
            goto done;
        if (!PySet_CheckExact(seen))
            goto answer;
        t = PySet_Contains(seen, tid);
        if (t < 0)
            goto done;
        if (!t)
            goto answer;
    }
    /* if not sessions: return [] */
    t = PyObject_IsTrue(sessions);
    if (t < 0)
        goto done;
    if (!t) {
        quiet = 1;
        goto answer;
    }
    /* level in _ERROR_LEVELS goes to Python; any other level, with no
     * new template, returns [] */
    level = rec_get(record, F_LEVEL);
    levels = level != NULL ? baseline_get(ss_error_levels) : NULL;
    if (levels == NULL)
        goto done;
    t = PySequence_Contains(levels, level);
    if (t < 0)
        goto done;
    quiet = !t;
answer:
    if (quiet)
        res = PyList_New(0);
    else {
        python = baseline_get(bs_python_observe);
        if (python != NULL) {
            PyObject *call[3] = {self, record, sessions};
            res = PyObject_Vectorcall(python, call, 3, NULL);
        }
    }
done:
    Py_XDECREF(tid);
    Py_XDECREF(seen);
    Py_XDECREF(level);
    return res;
}

static PyMethodDef baseline_observe_def = {
    "observe", (PyCFunction)(void (*)(void))baseline_observe, METH_FASTCALL,
    "Score one record (see logrca.detectors.base.Detector.observe).\n\n"
    "The compiled BaselineDetector.observe (logrca.parsing._speedups): the\n"
    "records it answers alone get the empty list the Python method gives;\n"
    "the others go to the Python method."
};

static PyObject *
baseline_observe_method(PyObject *module, PyObject *cls)
{
    if (!PyType_Check(cls)) {
        PyErr_SetString(PyExc_TypeError, "a class is needed");
        return NULL;
    }
    if (baseline_ns == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "setup_baseline() not called");
        return NULL;
    }
    return PyDescr_NewMethod((PyTypeObject *)cls, &baseline_observe_def);
}

/* ---------------------------------------------------------------------
 * Merge: logrca.manage.replay.merge_by_time()
 *
 * The generator _merge_by_time() (the reference) as an iterator, state by
 * state: the same records in the same order, the streams iterated (iter()
 * on each, as a for loop does) at the same points, heap entries the same
 * [time, index, record, stream] lists moved with heapq's functions. Only
 * the inner loop (records of the current stream that come before every
 * other stream's next one) is done without calls to Python code.
 * --------------------------------------------------------------------- */

enum { MG_START, MG_TOP, MG_YIELDED, MG_INNER, MG_DRAIN, MG_DONE };

typedef struct {
    PyObject_HEAD
    PyObject *streams;   /* the argument, until started */
    PyObject *waiting;   /* list of entries, smallest last */
    PyObject *heap;      /* list of entries (heapq) */
    PyObject *entry;     /* the entry whose stream is being read */
    PyObject *it;        /* iter(entry[3]) */
    PyObject *bound_ts;
    PyObject *bound_index;
    PyObject *index;     /* entry[1] when it was yielded */
    int state;
} MergeIter;

static PyTypeObject MergeIter_Type;
static PyObject *mg_heappush = NULL, *mg_heappop = NULL;
static PyObject *mg_heapreplace = NULL, *mg_empty = NULL, *mg_sort = NULL;
static PyObject *mg_reverse_kw = NULL;

static PyObject *
mg_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"streams", NULL};
    PyObject *streams;
    MergeIter *self;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:MergeIterator", kwlist,
                                     &streams))
        return NULL;
    if (mg_heappush == NULL) {
        PyObject *heapq = PyImport_ImportModule("heapq");
        if (heapq == NULL)
            return NULL;
        mg_heappush = PyObject_GetAttrString(heapq, "heappush");
        mg_heappop = PyObject_GetAttrString(heapq, "heappop");
        mg_heapreplace = PyObject_GetAttrString(heapq, "heapreplace");
        Py_DECREF(heapq);
        if (mg_heappush == NULL || mg_heappop == NULL ||
                mg_heapreplace == NULL) {
            Py_CLEAR(mg_heappush);
            Py_CLEAR(mg_heappop);
            Py_CLEAR(mg_heapreplace);
            return NULL;
        }
    }
    self = (MergeIter *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    Py_INCREF(streams);
    self->streams = streams;
    self->state = MG_START;
    return (PyObject *)self;
}

#define MG_OBJECTS(X) \
    X(streams) X(waiting) X(heap) X(entry) X(it) X(bound_ts) \
    X(bound_index) X(index)

static int
mg_traverse(MergeIter *self, visitproc visit, void *arg)
{
#define X(name) Py_VISIT(self->name);
    MG_OBJECTS(X)
#undef X
    return 0;
}

static int
mg_clear(MergeIter *self)
{
#define X(name) Py_CLEAR(self->name);
    MG_OBJECTS(X)
#undef X
    return 0;
}

static void
mg_dealloc(MergeIter *self)
{
    PyObject_GC_UnTrack(self);
    mg_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* record.timestamp or 0.0 (a new reference). */
static PyObject *
mg_time(PyObject *record)
{
    PyObject *ts = rec_get(record, F_TIMESTAMP);
    int t;
    if (ts == NULL)
        return NULL;
    t = PyObject_IsTrue(ts);
    if (t < 0) {
        Py_DECREF(ts);
        return NULL;
    }
    if (!t)
        Py_SETREF(ts, PyFloat_FromDouble(0.0));
    return ts;
}

/* a < b for two entries [time, index, ...], as list comparison does it
 * when the indexes differ (they always do): the first items that are not
 * identical or equal decide. */
static int
mg_less(PyObject *a, PyObject *b)
{
    Py_ssize_t i, n;
    if (!PyList_CheckExact(a) || !PyList_CheckExact(b))
        return PyObject_RichCompareBool(a, b, Py_LT);
    n = Py_MIN(PyList_GET_SIZE(a), PyList_GET_SIZE(b));
    for (i = 0; i < n && i < 2; i++) {
        PyObject *x = PyList_GET_ITEM(a, i), *y = PyList_GET_ITEM(b, i);
        int t = PyObject_RichCompareBool(x, y, Py_EQ);
        if (t < 0)
            return -1;
        if (!t)
            return PyObject_RichCompareBool(x, y, Py_LT);
    }
    return PyObject_RichCompareBool(a, b, Py_LT);
}

/* bool(a OP b), as an ``if`` tests it (no identity shortcut). */
static int
mg_truth(PyObject *a, PyObject *b, int op)
{
    PyObject *r = PyObject_RichCompare(a, b, op);
    int t;
    if (r == NULL)
        return -1;
    t = PyObject_IsTrue(r);
    Py_DECREF(r);
    return t;
}

/* The first loop of _merge_by_time(): the first record of each stream,
 * then waiting.sort(reverse=True). */
static int
mg_start(MergeIter *self)
{
    PyObject *streams, *stream, *it, *record, *entry, *index, *r;
    Py_ssize_t i = 0;
    self->waiting = PyList_New(0);
    self->heap = PyList_New(0);
    if (self->waiting == NULL || self->heap == NULL)
        return -1;
    streams = PyObject_GetIter(self->streams);
    Py_CLEAR(self->streams);
    if (streams == NULL)
        return -1;
    while ((stream = PyIter_Next(streams)) != NULL) {
        it = PyObject_GetIter(stream);
        record = it != NULL ? PyIter_Next(it) : NULL;
        Py_XDECREF(it);
        if (record != NULL) {
            PyObject *ts = mg_time(record);
            index = ts != NULL ? PyLong_FromSsize_t(i) : NULL;
            entry = index != NULL ? PyList_New(4) : NULL;
            if (entry == NULL) {
                Py_XDECREF(ts);
                Py_XDECREF(index);
                Py_DECREF(record);
                Py_DECREF(stream);
                Py_DECREF(streams);
                return -1;
            }
            PyList_SET_ITEM(entry, 0, ts);
            PyList_SET_ITEM(entry, 1, index);
            PyList_SET_ITEM(entry, 2, record);
            PyList_SET_ITEM(entry, 3, stream);
            stream = NULL;
            if (PyList_Append(self->waiting, entry) < 0) {
                Py_DECREF(entry);
                Py_DECREF(streams);
                return -1;
            }
            Py_DECREF(entry);
        }
        Py_XDECREF(stream);
        if (PyErr_Occurred()) {
            Py_DECREF(streams);
            return -1;
        }
        i++;
    }
    Py_DECREF(streams);
    if (PyErr_Occurred())
        return -1;
    r = PyObject_GetAttr(self->waiting, mg_sort);
    if (r == NULL)
        return -1;
    Py_SETREF(r, PyObject_Call(r, mg_empty, mg_reverse_kw));
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

static PyObject *
mg_call(PyObject *fn, PyObject *a, PyObject *b)
{
    PyObject *args[2] = {a, b};
    return PyObject_Vectorcall(fn, args, b == NULL ? 1 : 2, NULL);
}

static PyObject *
mg_step(MergeIter *self)
{
    PyObject *r, *record;
    Py_ssize_t size, nw;
    int t;
    for (;;) {
        switch (self->state) {
        case MG_START:
            if (mg_start(self) < 0)
                return NULL;
            self->state = MG_TOP;
            break;
        case MG_TOP:
            /* while heap or waiting: */
            size = PyList_GET_SIZE(self->heap);
            nw = PyList_GET_SIZE(self->waiting);
            if (size == 0 && nw == 0) {
                self->state = MG_DONE;
                return NULL;
            }
            if (nw) {
                /* if waiting and (not heap or waiting[-1] < heap[0]):
                 *     push(heap, waiting.pop()); continue */
                t = size == 0 ? 1 : mg_less(
                    PyList_GET_ITEM(self->waiting, nw - 1),
                    PyList_GET_ITEM(self->heap, 0));
                if (t < 0)
                    return NULL;
                if (t) {
                    PyObject *last = PyList_GET_ITEM(self->waiting, nw - 1);
                    Py_INCREF(last);
                    if (PyList_SetSlice(self->waiting, nw - 1, nw,
                                        NULL) < 0) {
                        Py_DECREF(last);
                        return NULL;
                    }
                    r = mg_call(mg_heappush, self->heap, last);
                    Py_DECREF(last);
                    if (r == NULL)
                        return NULL;
                    Py_DECREF(r);
                    break;
                }
            }
            /* entry = heap[0]; index = entry[1]; yield entry[2] */
            Py_XSETREF(self->entry, PyList_GET_ITEM(self->heap, 0));
            Py_INCREF(self->entry);
            record = PySequence_GetItem(self->entry, 1);
            if (record == NULL)
                return NULL;
            Py_XSETREF(self->index, record);
            record = PySequence_GetItem(self->entry, 2);
            if (record == NULL)
                return NULL;
            self->state = MG_YIELDED;
            return record;
        case MG_YIELDED: {
            PyObject *bound = NULL, *stream;
            size = PyList_GET_SIZE(self->heap);
            nw = PyList_GET_SIZE(self->waiting);
            if (size > 1) {
                bound = PyList_GET_ITEM(self->heap, 1);
                if (size > 2) {
                    t = mg_less(PyList_GET_ITEM(self->heap, 2), bound);
                    if (t < 0)
                        return NULL;
                    if (t)
                        bound = PyList_GET_ITEM(self->heap, 2);
                }
            }
            if (nw) {
                PyObject *last = PyList_GET_ITEM(self->waiting, nw - 1);
                t = bound == NULL ? 1 : mg_less(last, bound);
                if (t < 0)
                    return NULL;
                if (t)
                    bound = last;
            }
            stream = PySequence_GetItem(self->entry, 3);
            if (stream == NULL)
                return NULL;
            Py_XSETREF(self->it, PyObject_GetIter(stream));
            Py_DECREF(stream);
            if (self->it == NULL)
                return NULL;
            if (bound == NULL) {
                /* yield from entry[3]; heap.clear() */
                self->state = MG_DRAIN;
                break;
            }
            Py_INCREF(bound);
            Py_XSETREF(self->bound_ts, PySequence_GetItem(bound, 0));
            Py_XSETREF(self->bound_index, PySequence_GetItem(bound, 1));
            Py_DECREF(bound);
            if (self->bound_ts == NULL || self->bound_index == NULL)
                return NULL;
            self->state = MG_INNER;
            break;
        }
        case MG_INNER: {
            PyObject *ts;
            record = PyIter_Next(self->it);
            if (record == NULL) {
                if (PyErr_Occurred())
                    return NULL;
                /* for ... else: heapq.heappop(heap) */
                r = mg_call(mg_heappop, self->heap, NULL);
                if (r == NULL)
                    return NULL;
                Py_DECREF(r);
                Py_CLEAR(self->it);
                self->state = MG_TOP;
                break;
            }
            ts = mg_time(record);
            if (ts == NULL) {
                Py_DECREF(record);
                return NULL;
            }
            /* ts < bound_ts or (ts == bound_ts and index < bound_index) */
            if (PyFloat_CheckExact(ts) && PyFloat_CheckExact(self->bound_ts)
                    && PyLong_CheckExact(self->index)
                    && PyLong_CheckExact(self->bound_index)) {
                double a = PyFloat_AS_DOUBLE(ts);
                double b = PyFloat_AS_DOUBLE(self->bound_ts);
                t = a < b;
                if (!t && a == b) {
                    t = mg_truth(self->index, self->bound_index, Py_LT);
                }
            }
            else {
                t = mg_truth(ts, self->bound_ts, Py_LT);
                if (t == 0) {
                    t = mg_truth(ts, self->bound_ts, Py_EQ);
                    if (t > 0)
                        t = mg_truth(self->index, self->bound_index, Py_LT);
                }
            }
            if (t != 0) {
                Py_DECREF(ts);
                if (t < 0) {
                    Py_DECREF(record);
                    return NULL;
                }
                return record;
            }
            /* entry[0] = ts; entry[2] = record;
             * heapq.heapreplace(heap, entry); break */
            if (PySequence_SetItem(self->entry, 0, ts) < 0 ||
                    PySequence_SetItem(self->entry, 2, record) < 0) {
                Py_DECREF(ts);
                Py_DECREF(record);
                return NULL;
            }
            Py_DECREF(ts);
            Py_DECREF(record);
            r = mg_call(mg_heapreplace, self->heap, self->entry);
            if (r == NULL)
                return NULL;
            Py_DECREF(r);
            Py_CLEAR(self->it);
            self->state = MG_TOP;
            break;
        }
        case MG_DRAIN:
            record = PyIter_Next(self->it);
            if (record != NULL || PyErr_Occurred())
                return record;
            Py_CLEAR(self->it);
            if (PyList_SetSlice(self->heap, 0, PyList_GET_SIZE(self->heap),
                                NULL) < 0)
                return NULL;
            self->state = MG_TOP;
            break;
        default:
            return NULL;
        }
    }
}

static PyObject *
mg_next(MergeIter *self)
{
    PyObject *record = mg_step(self);
    if (record == NULL) {
        /* Finished or failed: like a generator, it yields no more. */
        self->state = MG_DONE;
        mg_clear(self);
    }
    return record;
}

PyDoc_STRVAR(mg_doc,
"MergeIterator(streams)\n\n"
"logrca.manage.replay.merge_by_time(streams), compiled: the same records\n"
"in the same order (see _merge_by_time, the reference).");

static PyTypeObject MergeIter_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "logrca.parsing._speedups.MergeIterator",
    .tp_basicsize = sizeof(MergeIter),
    .tp_dealloc = (destructor)mg_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = mg_doc,
    .tp_traverse = (traverseproc)mg_traverse,
    .tp_clear = (inquiry)mg_clear,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)mg_next,
    .tp_new = mg_new,
};

/* ---------------------------------------------------------------------
 * Pipeline: the loops of logrca.agent.pipeline.Pipeline.process_many()
 *
 * Both loops as the Python code writes them (kept there as the
 * reference), statement by statement; every call (the miner's add, the
 * sessionizer's add, each detector's observe, expiring) is the same call
 * to the same Python-visible object. Only the looping, the counting and
 * the time test run here.
 * --------------------------------------------------------------------- */

static PyObject *pl_extend = NULL;

/* bool(a OP b), as an ``if`` tests it. */
static int
pl_truth(PyObject *a, PyObject *b, int op)
{
    PyObject *r = PyObject_RichCompare(a, b, op);
    int t;
    if (r == NULL)
        return -1;
    t = PyObject_IsTrue(r);
    Py_DECREF(r);
    return t;
}

/* template_records(add, records, unparsed_kind):
 *     for record in records:
 *         if (record.template_id is None
 *                 and record.kind != unparsed_kind):
 *             (record.template_id, record.template,
 *              record.params) = add(record.message)            */
static PyObject *
template_records(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *add, *records, *unparsed, *it, *record;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError,
                        "template_records(add, records, unparsed_kind)");
        return NULL;
    }
    add = args[0];
    records = args[1];
    unparsed = args[2];
    it = PyObject_GetIter(records);
    if (it == NULL)
        return NULL;
    while ((record = PyIter_Next(it)) != NULL) {
        PyObject *v, *message, *res, *parts[3];
        int t, i;
        v = rec_get(record, F_TEMPLATE_ID);
        if (v == NULL)
            goto fail;
        t = v == Py_None;
        Py_DECREF(v);
        if (!t) {
            Py_DECREF(record);
            continue;
        }
        v = rec_get(record, F_KIND);
        if (v == NULL)
            goto fail;
        t = pl_truth(v, unparsed, Py_NE);
        Py_DECREF(v);
        if (t < 0)
            goto fail;
        if (!t) {
            Py_DECREF(record);
            continue;
        }
        message = rec_get(record, F_MESSAGE);
        if (message == NULL)
            goto fail;
        res = PyObject_Vectorcall(add, &message, 1, NULL);
        Py_DECREF(message);
        if (res == NULL)
            goto fail;
        /* unpack exactly three values, then assign left to right */
        if (PyTuple_CheckExact(res) && PyTuple_GET_SIZE(res) == 3) {
            for (i = 0; i < 3; i++) {
                parts[i] = PyTuple_GET_ITEM(res, i);
                Py_INCREF(parts[i]);
            }
        }
        else {
            /* (any other result: the messages of Python's unpacking) */
            PyObject *seq = PySequence_Fast(res, "cannot unpack "
                                            "non-iterable object");
            if (seq == NULL || PySequence_Fast_GET_SIZE(seq) != 3) {
                if (seq != NULL) {
                    if (PySequence_Fast_GET_SIZE(seq) < 3)
                        PyErr_Format(PyExc_ValueError,
                                     "not enough values to unpack "
                                     "(expected 3, got %zd)",
                                     PySequence_Fast_GET_SIZE(seq));
                    else
                        PyErr_SetString(PyExc_ValueError,
                                        "too many values to unpack "
                                        "(expected 3)");
                    Py_DECREF(seq);
                }
                Py_DECREF(res);
                goto fail;
            }
            for (i = 0; i < 3; i++) {
                parts[i] = PySequence_Fast_GET_ITEM(seq, i);
                Py_INCREF(parts[i]);
            }
            Py_DECREF(seq);
        }
        Py_DECREF(res);
        if (rec_set(record, F_TEMPLATE_ID, parts[0]) < 0) {
            Py_DECREF(parts[1]);
            Py_DECREF(parts[2]);
            goto fail;
        }
        if (rec_set(record, F_TEMPLATE, parts[1]) < 0) {
            Py_DECREF(parts[2]);
            goto fail;
        }
        if (rec_set(record, F_PARAMS, parts[2]) < 0)
            goto fail;
        Py_DECREF(record);
    }
    Py_DECREF(it);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
fail:
    Py_DECREF(record);
    Py_DECREF(it);
    return NULL;
}

/* pipeline_records(records, unparsed_kind, add_to_sessions, observers,
 *                  found, state, first_expire, expire_due)
 *
 * Pipeline.process_many()'s second loop. state is [count, unparsed,
 * next_expire] and holds the loop's values when this returns, also on an
 * error; first_expire() gives next_expire for the first dated record,
 * expire_due(state, found) sets state[2] and expires (a record at or past
 * next_expire). */
static PyObject *
pipeline_records(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *records, *unparsed_kind, *add, *observers, *found, *state;
    PyObject *first_expire, *expire_due, *it, *record = NULL;
    PyObject *next_expire, *sessions = NULL, *v;
    Py_ssize_t count, unparsed, i;
    int t, ok = 0;
    if (nargs != 8 || !PyList_CheckExact(args[5]) ||
            PyList_GET_SIZE(args[5]) != 3 || !PyList_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError,
                        "pipeline_records(records, unparsed_kind, "
                        "add_to_sessions, observers, found, state, "
                        "first_expire, expire_due)");
        return NULL;
    }
    records = args[0];
    unparsed_kind = args[1];
    add = args[2];
    observers = args[3];
    found = args[4];
    state = args[5];
    first_expire = args[6];
    expire_due = args[7];
    count = PyLong_AsSsize_t(PyList_GET_ITEM(state, 0));
    if (count == -1 && PyErr_Occurred())
        return NULL;
    unparsed = PyLong_AsSsize_t(PyList_GET_ITEM(state, 1));
    if (unparsed == -1 && PyErr_Occurred())
        return NULL;
    next_expire = PyList_GET_ITEM(state, 2);
    Py_INCREF(next_expire);
    it = PyObject_GetIter(records);
    if (it == NULL) {
        Py_DECREF(next_expire);
        return NULL;
    }
    while ((record = PyIter_Next(it)) != NULL) {
        PyObject *ts;
        count += 1;
        /* if record.kind == unparsed_kind: unparsed += 1 */
        v = rec_get(record, F_KIND);
        if (v == NULL)
            goto done;
        t = pl_truth(v, unparsed_kind, Py_EQ);
        Py_DECREF(v);
        if (t < 0)
            goto done;
        unparsed += t;
        sessions = PyObject_Vectorcall(add, &record, 1, NULL);
        if (sessions == NULL)
            goto done;
        /* for observe in observers: (a list, read as it goes) */
        for (i = 0; i < PyList_GET_SIZE(observers); i++) {
            PyObject *observe = PyList_GET_ITEM(observers, i), *got;
            PyObject *call[2] = {record, sessions};
            Py_INCREF(observe);
            got = PyObject_Vectorcall(observe, call, 2, NULL);
            Py_DECREF(observe);
            if (got == NULL)
                goto done;
            t = PyObject_IsTrue(got);
            if (t > 0) {
                v = PyObject_CallMethodOneArg(found, pl_extend, got);
                t = v == NULL ? -1 : 1;
                Py_XDECREF(v);
            }
            Py_DECREF(got);
            if (t < 0)
                goto done;
        }
        Py_CLEAR(sessions);
        /* if ts is not None: first deadline, or expire when due */
        ts = rec_get(record, F_TIMESTAMP);
        if (ts == NULL)
            goto done;
        if (ts != Py_None) {
            if (next_expire == Py_None) {
                v = PyObject_CallNoArgs(first_expire);
                if (v == NULL) {
                    Py_DECREF(ts);
                    goto done;
                }
                Py_SETREF(next_expire, v);
            }
            else {
                if (PyFloat_CheckExact(ts) && PyFloat_CheckExact(next_expire))
                    t = PyFloat_AS_DOUBLE(ts) >= PyFloat_AS_DOUBLE(next_expire);
                else
                    t = pl_truth(ts, next_expire, Py_GE);
                if (t < 0) {
                    Py_DECREF(ts);
                    goto done;
                }
                if (t) {
                    PyObject *call[2] = {state, found};
                    Py_INCREF(next_expire);
                    if (PyList_SetItem(state, 2, next_expire) < 0) {
                        Py_DECREF(ts);
                        goto done;
                    }
                    v = PyObject_Vectorcall(expire_due, call, 2, NULL);
                    /* expire_due set state[2] first, as the Python loop
                     * sets next_expire before expiring */
                    Py_SETREF(next_expire, PyList_GET_ITEM(state, 2));
                    Py_INCREF(next_expire);
                    if (v == NULL) {
                        Py_DECREF(ts);
                        goto done;
                    }
                    Py_DECREF(v);
                }
            }
        }
        Py_DECREF(ts);
        Py_CLEAR(record);
    }
    ok = !PyErr_Occurred();
done:
    Py_XDECREF(record);
    Py_XDECREF(sessions);
    Py_DECREF(it);
    {
        /* state = [count, unparsed, next_expire], also on an error */
        PyObject *exc_type, *exc_value, *exc_tb, *c, *u;
        PyErr_Fetch(&exc_type, &exc_value, &exc_tb);
        c = PyLong_FromSsize_t(count);
        u = PyLong_FromSsize_t(unparsed);
        if (c == NULL || u == NULL) {
            Py_XDECREF(c);
            Py_XDECREF(u);
            Py_DECREF(next_expire);
            Py_XDECREF(exc_type);
            Py_XDECREF(exc_value);
            Py_XDECREF(exc_tb);
            return NULL;
        }
        PyList_SetItem(state, 0, c);
        PyList_SetItem(state, 1, u);
        PyList_SetItem(state, 2, next_expire);
        PyErr_Restore(exc_type, exc_value, exc_tb);
    }
    if (!ok)
        return NULL;
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------------
 * Module
 * --------------------------------------------------------------------- */

static PyObject *
py_mask_token(PyObject *module, PyObject *token)
{
    if (shape_ns == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "setup_shape() not called");
        return NULL;
    }
    return mask_token(token);
}

static PyObject *
py_mask_token_full(PyObject *module, PyObject *token)
{
    if (!PyUnicode_CheckExact(token) || !PyUnicode_IS_ASCII(token) ||
            !use_full_c) {
        PyErr_SetString(PyExc_ValueError, "an ASCII str is needed");
        return NULL;
    }
    return mask_token_full(PyUnicode_DATA(token),
                           PyUnicode_GET_LENGTH(token));
}

/* Mirrors logrca.detectors.learned.shape_of(message): the message's
 * tokens (str.split()) masked through ``cache`` (a dict, cleared when it
 * holds max_tokens), joined by single spaces. */
static PyObject *
py_shape_of(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *tokens, *masked, *sep, *out;
    Py_ssize_t max_tokens;
    if (nargs != 3 || !PyUnicode_Check(args[0]) || !PyDict_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError,
                        "shape_of(message: str, cache: dict, max_tokens)");
        return NULL;
    }
    if (shape_ns == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "setup_shape() not called");
        return NULL;
    }
    max_tokens = PyLong_AsSsize_t(args[2]);
    if (max_tokens == -1 && PyErr_Occurred())
        return NULL;
    tokens = PyUnicode_Split(args[0], NULL, -1);
    if (tokens == NULL)
        return NULL;
    masked = shape_mask(args[1], tokens, max_tokens);
    Py_DECREF(tokens);
    if (masked == NULL)
        return NULL;
    sep = PyUnicode_FromStringAndSize(" ", 1);
    if (sep == NULL) {
        Py_DECREF(masked);
        return NULL;
    }
    out = PyUnicode_Join(sep, masked);
    Py_DECREF(sep);
    Py_DECREF(masked);
    return out;
}

static PyObject *
py_split_location(PyObject *module, PyObject *message)
{
    if (reader_ns == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "setup_reader() not called");
        return NULL;
    }
    return split_location(message);
}

static PyObject *
py_mask(PyObject *module, PyObject *text)
{
    if (reader_ns == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "setup_reader() not called");
        return NULL;
    }
    return mask_text(text);
}

static PyMethodDef module_methods[] = {
    {"setup_reader", setup_reader, METH_VARARGS,
     "setup_reader(oslo_log_globals): where the reader's caches, helpers\n"
     "and LogRecord are; True when records are built slot by slot."},
    {"setup_shape", setup_shape, METH_VARARGS,
     "setup_shape(shape_globals): where the miner's helpers are."},
    {"shape_add_method", shape_add_method, METH_O,
     "shape_add_method(cls): the compiled ``add`` as a method of cls."},
    {"setup_sessions", setup_sessions, METH_VARARGS,
     "setup_sessions(sessions_globals): where Session and the session\n"
     "kinds are; True when sessions are updated slot by slot."},
    {"session_add_method", session_add_method, METH_O,
     "session_add_method(cls): the compiled ``add`` as a method of cls\n"
     "(logrca.agent.sessions.Sessionizer)."},
    {"setup_baseline", setup_baseline, METH_VARARGS,
     "setup_baseline(baseline_globals): where the baseline detector's\n"
     "Python observe and error levels are."},
    {"baseline_observe_method", baseline_observe_method, METH_O,
     "baseline_observe_method(cls): the compiled ``observe`` as a method\n"
     "of cls (logrca.detectors.baseline.BaselineDetector)."},
    {"template_records", (PyCFunction)(void (*)(void))template_records,
     METH_FASTCALL,
     "template_records(add, records, unparsed_kind): the template loop of\n"
     "Pipeline.process_many(), compiled."},
    {"pipeline_records", (PyCFunction)(void (*)(void))pipeline_records,
     METH_FASTCALL,
     "pipeline_records(records, unparsed_kind, add_to_sessions, observers,\n"
     "found, state, first_expire, expire_due): the record loop of\n"
     "Pipeline.process_many(), compiled."},
    {"mask_token", py_mask_token, METH_O,
     "shape.mask_token(token), compiled (for tests)."},
    {"mask_token_full", py_mask_token_full, METH_O,
     "shape.mask_token_full(token) for ASCII tokens, compiled (for "
     "tests)."},
    {"shape_of", (PyCFunction)(void (*)(void))py_shape_of, METH_FASTCALL,
     "shape_of(message, cache, max_tokens): logrca.detectors.learned.\n"
     "shape_of(), compiled."},
    {"split_location", py_split_location, METH_O,
     "oslo_log.split_location(message), compiled (for tests)."},
    {"mask", py_mask, METH_O,
     "logrca.masking.mask(text) behind the compiled first test (for "
     "tests)."},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "logrca.parsing._speedups",
    .m_doc = "Compiled fast paths of the oslo.log reader and the shape "
             "miner (optional; the pure-Python code is the reference).",
    .m_size = -1,
    .m_methods = module_methods,
};

#define INTERN(var, text) \
    if ((var = PyUnicode_InternFromString(text)) == NULL) return NULL;

PyMODINIT_FUNC
PyInit__speedups(void)
{
    PyObject *m;
    int i;
    init_tables();
    init_pairs();
    INTERN(s_current, "_current")
    INTERN(s_key, "_key")
    INTERN(s_ctx, "_ctx")
    INTERN(s_in_traceback, "_in_traceback")
    INTERN(s_last_ts, "_last_ts")
    INTERN(s_stats, "stats")
    INTERN(s_ctx_cache, "_ctx_cache")
    INTERN(s_stream, "stream")
    INTERN(s_host, "host")
    INTERN(s_max_line_length, "max_line_length")
    INTERN(s_feed, "feed")
    INTERN(s_line, "_line")
    INTERN(s_other, "_other")
    INTERN(s_unparsed, "_unparsed")
    INTERN(s_complete, "_complete")
    INTERN(s_lines, "lines")
    INTERN(s_records, "records")
    INTERN(s_continuation, "continuation")
    INTERN(s_dropped, "dropped")
    INTERN(s_blank, "blank")
    INTERN(s_messages, "_messages")
    INTERN(s_tokens, "_tokens")
    INTERN(s_shapes, "_shapes")
    INTERN(s_learn, "_learn")
    INTERN(s_size, "size")
    INTERN(s_variables, "variables")
    INTERN(s_id, "id")
    INTERN(s_template, "template")
    INTERN(s_space, " ")
    INTERN(s_debug, "DEBUG")
    INTERN(ss_now, "_now")
    INTERN(ss_open, "_open")
    INTERN(ss_window, "window")
    INTERN(ss_due, "_due")
    INTERN(ss_session, "_session")
    INTERN(ss_append, "append")
    INTERN(ss_add, "add")
    INTERN(ss_get, "get")
    INTERN(ss_heappush, "heappush")
    INTERN(ss_heapq, "heapq")
    INTERN(ss_error_levels, "_ERROR_LEVELS")
    INTERN(bs_seen, "_seen_templates")
    INTERN(bs_python_observe, "_PYTHON_OBSERVE")
    if ((ss_one = PyLong_FromLong(1)) == NULL)
        return NULL;
    for (i = 0; i < N_SFIELDS; i++)
        INTERN(sfield_strs[i], sfield_names[i])
    for (i = 0; i < N_FIELDS; i++)
        INTERN(field_strs[i], field_names[i])
    for (i = 0; i < N_LEVELS; i++) {
        INTERN(level_strs[i], level_names[i])
        level_lens[i] = (Py_ssize_t)strlen(level_names[i]);
    }
    if (PyType_Ready(&ReadIter_Type) < 0 ||
            PyType_Ready(&MergeIter_Type) < 0)
        return NULL;
    if ((mg_empty = PyTuple_New(0)) == NULL ||
            (mg_reverse_kw = Py_BuildValue("{s:O}", "reverse",
                                           Py_True)) == NULL)
        return NULL;
    INTERN(mg_sort, "sort")
    INTERN(pl_extend, "extend")
    m = PyModule_Create(&speedups_module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&ReadIter_Type);
    if (PyModule_AddObject(m, "RecordIterator",
                           (PyObject *)&ReadIter_Type) < 0) {
        Py_DECREF(&ReadIter_Type);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&MergeIter_Type);
    if (PyModule_AddObject(m, "MergeIterator",
                           (PyObject *)&MergeIter_Type) < 0) {
        Py_DECREF(&MergeIter_Type);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
