/* JSON Lines in C: each record as the very text json.dumps(record) gives, appended to a buffer.
 *
 * A sink's records are mostly small dicts of strings and numbers; json.dumps spends most of its
 * time per call setting up an encoder and joining its pieces, not encoding. This encoder keeps
 * one growing buffer for a whole batch of lines, so that a record costs one call and no object
 * besides the record itself.
 *
 * The text is json.dumps's with its defaults (", " and ": " separators, ASCII with \uXXXX
 * escapes, NaN and Infinity, floats as repr(), ints of any size). Only the types json encodes
 * the same way whatever their class are encoded here: None, bool, str, int, float (and their
 * subclasses, as json does), lists and tuples, and exact dicts with str keys. A record holding
 * anything else (another key type, a dict subclass, an object for `default`, a nesting deeper
 * than MAX_DEPTH, which also catches a circular one) is handed whole to the fallback function
 * given to the encoder (json.dumps), so that its text, or its error, is exactly json's.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Deeper records go to the fallback, which also reports a circular one as json does. */
#define MAX_DEPTH 64
/* encode() results: done, failed with an exception set, or "give the record to the fallback". */
#define DONE 0
#define FAILED -1
#define FALLBACK 1

/* The text of recent keys, `, "key": `, found by the key object's address: a record's keys are
 * mostly the same string objects (the literals of a mapper) record after record. */
#define KEY_SLOTS 64
#define KEY_TEXT 52

typedef struct {
    PyObject *key; /* a str, held, or NULL */
    Py_ssize_t size;
    char text[KEY_TEXT];
} KeySlot;

typedef struct {
    PyObject_HEAD
    KeySlot keys[KEY_SLOTS];
    /* The text of the last int too large for one digit (a record's timestamp, the same
     * object for every event of a tick), held so that its address stays its own. */
    PyObject *last_int;
    Py_ssize_t last_int_size;
    char last_int_text[24];
    char *data;
    Py_ssize_t size;
    Py_ssize_t capacity;
    Py_ssize_t count; /* lines in the buffer */
    PyObject *fallback;
    /* A record template: the field names (a tuple of str) and the text before each value,
     * `{"name": ` for the first and `, "name": ` for the others, one after the other. */
    PyObject *names;
    char *name_text;
    Py_ssize_t *name_end;
} Lines;

static int
reserve(Lines *self, Py_ssize_t more)
{
    if (self->size + more <= self->capacity)
        return 0;
    Py_ssize_t want = self->capacity ? self->capacity : 4096;
    while (want < self->size + more) {
        if (want > PY_SSIZE_T_MAX / 2) {
            PyErr_NoMemory();
            return -1;
        }
        want *= 2;
    }
    char *data = PyMem_Realloc(self->data, (size_t)want);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->data = data;
    self->capacity = want;
    return 0;
}

static inline int
put(Lines *self, const char *text, Py_ssize_t n)
{
    if (reserve(self, n) < 0)
        return -1;
    char *out = self->data + self->size;
    if (n <= 32) {
        /* the pieces of a record are short: a loop costs less than a call of memcpy */
        for (Py_ssize_t i = 0; i < n; i++)
            out[i] = text[i];
    }
    else
        memcpy(out, text, (size_t)n);
    self->size += n;
    return 0;
}

static const char HEX[] = "0123456789abcdef";

/* The escape json's ensure_ascii gives `c` (not printable ASCII, or a quote or backslash). */
static inline Py_ssize_t
escape(char *out, Py_UCS4 c)
{
    out[0] = '\\';
    switch (c) {
    case '\\': out[1] = '\\'; return 2;
    case '"': out[1] = '"'; return 2;
    case '\b': out[1] = 'b'; return 2;
    case '\f': out[1] = 'f'; return 2;
    case '\n': out[1] = 'n'; return 2;
    case '\r': out[1] = 'r'; return 2;
    case '\t': out[1] = 't'; return 2;
    default: break;
    }
    if (c >= 0x10000) {
        /* a surrogate pair, as json writes characters beyond the BMP */
        Py_UCS4 v = c - 0x10000;
        Py_UCS4 hi = 0xd800 | ((v >> 10) & 0x3ff);
        Py_UCS4 lo = 0xdc00 | (v & 0x3ff);
        out[1] = 'u';
        out[2] = HEX[(hi >> 12) & 0xf];
        out[3] = HEX[(hi >> 8) & 0xf];
        out[4] = HEX[(hi >> 4) & 0xf];
        out[5] = HEX[hi & 0xf];
        out[6] = '\\';
        out[7] = 'u';
        out[8] = HEX[(lo >> 12) & 0xf];
        out[9] = HEX[(lo >> 8) & 0xf];
        out[10] = HEX[(lo >> 4) & 0xf];
        out[11] = HEX[lo & 0xf];
        return 12;
    }
    out[1] = 'u';
    out[2] = HEX[(c >> 12) & 0xf];
    out[3] = HEX[(c >> 8) & 0xf];
    out[4] = HEX[(c >> 4) & 0xf];
    out[5] = HEX[c & 0xf];
    return 6;
}

#define PLAIN(c) ((c) >= ' ' && (c) <= '~' && (c) != '\\' && (c) != '"')

static int
put_string(Lines *self, PyObject *text)
{
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0)
        return -1;
#endif
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    /* at most 12 bytes per character, and the quotes */
    if (n > (PY_SSIZE_T_MAX - 2) / 12) {
        PyErr_NoMemory();
        return -1;
    }
    if (reserve(self, 2 + 12 * n) < 0)
        return -1;
    char *out = self->data + self->size;
    *out++ = '"';
    if (kind == PyUnicode_1BYTE_KIND) {
        const Py_UCS1 *s = (const Py_UCS1 *)data;
        Py_ssize_t i = 0;
        while (i < n) {
            Py_ssize_t start = i;
            while (i < n && PLAIN(s[i]))
                i++;
            memcpy(out, s + start, (size_t)(i - start));
            out += i - start;
            if (i < n)
                out += escape(out, s[i++]);
        }
    }
    else {
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_UCS4 c = PyUnicode_READ(kind, data, i);
            if (PLAIN(c))
                *out++ = (char)c;
            else
                out += escape(out, c);
        }
    }
    *out++ = '"';
    self->size = out - self->data;
    return 0;
}

static int
put_ascii_object(Lines *self, PyObject *text)
{
    /* repr() of an int or a float: ASCII */
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(text, &n);
    if (s == NULL)
        return -1;
    return put(self, s, n);
}

static const char PAIRS[] = "00010203040506070809101112131415161718192021222324252627282930313233"
                           "34353637383940414243444546474849505152535455565758596061626364656667"
                           "6869707172737475767778798081828384858687888990919293949596979899";

/* The decimal digits of u, written backwards to end; returns where they start. */
static inline char *
write_digits(char *end, unsigned long long u)
{
    char *p = end;
    while (u >= 100) {
        unsigned r = (unsigned)(u % 100);
        u /= 100;
        p -= 2;
        memcpy(p, PAIRS + 2 * r, 2);
    }
    if (u >= 10) {
        p -= 2;
        memcpy(p, PAIRS + 2 * u, 2);
    }
    else
        *--p = (char)('0' + u);
    return p;
}

/* Whether `value` (an int) is within one digit, and then its value: most ints of a record. */
static inline int
small_int(PyObject *value, long long *v)
{
#if PY_VERSION_HEX >= 0x030C0000
    if (!PyUnstable_Long_IsCompact((PyLongObject *)value))
        return 0;
    *v = (long long)PyUnstable_Long_CompactValue((PyLongObject *)value);
    return 1;
#else
    Py_ssize_t size = Py_SIZE(value);
    if (size < -1 || size > 1)
        return 0;
    /* zero may have no digit stored before 3.11 */
    *v = size ? (long long)size * (long long)((PyLongObject *)value)->ob_digit[0] : 0;
    return 1;
#endif
}

static int
put_int(Lines *self, PyObject *value)
{
    long long v;
    int small = small_int(value, &v);
    if (!small) {
        if (value == self->last_int)
            return put(self, self->last_int_text, self->last_int_size);
        int overflow = 0;
        v = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (v == -1 && PyErr_Occurred())
            return -1;
        if (overflow) {
            PyObject *text = PyLong_Type.tp_repr(value);
            if (text == NULL)
                return -1;
            int status = put_ascii_object(self, text);
            Py_DECREF(text);
            return status;
        }
    }
    char digits[24];
    char *end = digits + sizeof(digits);
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    char *p = write_digits(end, u);
    if (v < 0)
        *--p = '-';
    if (!small && PyLong_CheckExact(value)) {
        memcpy(self->last_int_text, p, (size_t)(end - p));
        self->last_int_size = end - p;
        Py_INCREF(value);
        Py_XSETREF(self->last_int, value);
    }
    return put(self, p, end - p);
}

static const double POW10[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};

/* repr(v) for the floats of most records (prices, rates: 1e-4 <= |v| < 1e15 with at most 14
 * significant digits) without the general shortest-digits algorithm, which takes ten times as
 * long. repr is the shortest decimal that reads back as v. A decimal c / 10**k reads back as v
 * exactly when c / 10**k == v in doubles: c and 10**k are exact doubles, so the division
 * rounds the decimal's value correctly, as reading it does. Below 1e14, v * 10**k is within
 * 1/64 of its exact value, and a c that reads back as v is within 1/32 of that: so the only
 * candidate is the integer nearest the product, and the first k where it reads back gives
 * repr's digits. Beyond 14 digits, or outside the range, the answer is 0 and the general
 * algorithm runs. */
static Py_ssize_t
short_float(char *out, double v)
{
    double a = fabs(v);
    if (!(a >= 1e-4 && a < 1e15))
        return 0;
    for (int k = 0; k < 16; k++) {
        double p = POW10[k];
        double x = a * p;
        if (x >= 1e14)
            return 0;
        unsigned long long u = (unsigned long long)(x + 0.5);
        if ((double)u / p != a)
            continue;
        char digits[24];
        char *end = digits + sizeof(digits);
        char *d = write_digits(end, u);
        while (end - d <= k) /* 0.0ddd: a zero before the point */
            *--d = '0';
        Py_ssize_t whole = (end - d) - k;
        char *o = out;
        if (v < 0)
            *o++ = '-';
        memcpy(o, d, (size_t)whole);
        o += whole;
        *o++ = '.';
        if (k == 0)
            *o++ = '0';
        else {
            memcpy(o, d + whole, (size_t)k);
            o += k;
        }
        return o - out;
    }
    return 0;
}

static int
put_float(Lines *self, PyObject *value)
{
    double v = PyFloat_AS_DOUBLE(value);
    if (!isfinite(v)) {
        if (isnan(v))
            return put(self, "NaN", 3);
        return v > 0 ? put(self, "Infinity", 8) : put(self, "-Infinity", 9);
    }
    if (v == 0.0) /* an empty cart, a zero balance: short_float's range leaves out zero */
        return signbit(v) ? put(self, "-0.0", 4) : put(self, "0.0", 3);
    char quick[40];
    Py_ssize_t n = short_float(quick, v);
    if (n)
        return put(self, quick, n);
    /* repr(float), which json writes */
    char *text = PyOS_double_to_string(v, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (text == NULL)
        return -1;
    int status = put(self, text, (Py_ssize_t)strlen(text));
    PyMem_Free(text);
    return status;
}

static int encode(Lines *self, PyObject *value, int depth);

static int
put_items(Lines *self, PyObject *sequence, int depth)
{
    /* lists and tuples, subclasses included: json iterates their items as they are stored */
    Py_ssize_t n = PySequence_Fast_GET_SIZE(sequence);
    if (n == 0)
        return put(self, "[]", 2);
    if (put(self, "[", 1) < 0)
        return FAILED;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i && put(self, ", ", 2) < 0)
            return FAILED;
        int status = encode(self, PySequence_Fast_GET_ITEM(sequence, i), depth + 1);
        if (status != DONE)
            return status;
    }
    return put(self, "]", 1);
}

static int
put_dict(Lines *self, PyObject *dict, int depth)
{
    if (PyDict_GET_SIZE(dict) == 0)
        return put(self, "{}", 2);
    if (put(self, "{", 1) < 0)
        return FAILED;
    Py_ssize_t pos = 0;
    PyObject *key, *item;
    int first = 1;
    while (PyDict_Next(dict, &pos, &key, &item)) {
        if (!PyUnicode_Check(key))
            return FALLBACK; /* json turns numbers, bools and None into key strings */
        /* the slot's text is `, "key": `; the first key goes without the comma */
        Py_ssize_t skip = first ? 2 : 0;
        first = 0;
        KeySlot *slot = &self->keys[((uintptr_t)key >> 4) % KEY_SLOTS];
        if (slot->key == key) {
            if (put(self, slot->text + skip, slot->size - skip) < 0)
                return FAILED;
        }
        else {
            Py_ssize_t at = self->size;
            if (put(self, ", ", 2) < 0 || put_string(self, key) < 0 || put(self, ": ", 2) < 0)
                return FAILED;
            Py_ssize_t size = self->size - at;
            if (size <= KEY_TEXT && PyUnicode_CheckExact(key)) {
                /* the str held keeps its address from being reused by another key */
                memcpy(slot->text, self->data + at, (size_t)size);
                slot->size = size;
                Py_INCREF(key);
                Py_XSETREF(slot->key, key);
            }
            if (skip) { /* drop the comma written before the first key */
                memmove(self->data + at, self->data + at + 2, (size_t)(size - 2));
                self->size -= 2;
            }
        }
        int status = encode(self, item, depth + 1);
        if (status != DONE)
            return status;
    }
    return put(self, "}", 1);
}

/* No Python code runs while a record is encoded here, so no container can change under it. */
static int
encode(Lines *self, PyObject *value, int depth)
{
    if (value == Py_None)
        return put(self, "null", 4);
    if (value == Py_True)
        return put(self, "true", 4);
    if (value == Py_False)
        return put(self, "false", 5);
    if (PyUnicode_Check(value))
        return put_string(self, value);
    if (PyLong_Check(value))
        return put_int(self, value);
    if (PyFloat_Check(value))
        return put_float(self, value);
    if (depth >= MAX_DEPTH)
        return FALLBACK;
    if (PyList_Check(value) || PyTuple_Check(value))
        return put_items(self, value, depth);
    if (PyDict_CheckExact(value))
        return put_dict(self, value, depth);
    return FALLBACK;
}

/* One record at the end of the buffer; on an error the buffer is as it was. */
static int
add_record(Lines *self, PyObject *value)
{
    Py_ssize_t start = self->size;
    int status = encode(self, value, 0);
    if (status == DONE)
        return 0;
    self->size = start;
    if (status == FAILED)
        return -1;
    PyObject *text = PyObject_CallOneArg(self->fallback, value);
    if (text == NULL)
        return -1;
    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "the JSON fallback returned %.100s, not str",
                     Py_TYPE(text)->tp_name);
        Py_DECREF(text);
        return -1;
    }
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(text, &n);
    int result = s == NULL ? -1 : put(self, s, n);
    Py_DECREF(text);
    if (result < 0)
        self->size = start;
    return result;
}

/* The template's record of `values` (a tuple, one value per name) at the end of the buffer. */
static int
add_values(Lines *self, PyObject *values)
{
    Py_ssize_t n = PyTuple_GET_SIZE(self->names);
    if (!PyTuple_Check(values) || PyTuple_GET_SIZE(values) != n) {
        PyErr_Format(PyExc_TypeError, "expected a tuple of %zd values", n);
        return -1;
    }
    Py_ssize_t start = self->size;
    int status = DONE;
    if (n == 0)
        status = put(self, "{}", 2) < 0 ? FAILED : DONE;
    for (Py_ssize_t i = 0; i < n && status == DONE; i++) {
        Py_ssize_t from = i ? self->name_end[i - 1] : 0;
        if (put(self, self->name_text + from, self->name_end[i] - from) < 0)
            status = FAILED;
        else
            status = encode(self, PyTuple_GET_ITEM(values, i), 1);
    }
    if (status == DONE && n && put(self, "}", 1) < 0)
        status = FAILED;
    if (status == DONE)
        return 0;
    self->size = start;
    if (status == FAILED)
        return -1;
    /* as a dict, through the fallback */
    PyObject *row = PyDict_New();
    if (row == NULL)
        return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (PyDict_SetItem(row, PyTuple_GET_ITEM(self->names, i), PyTuple_GET_ITEM(values, i)) < 0) {
            Py_DECREF(row);
            return -1;
        }
    }
    int result = add_record(self, row);
    Py_DECREF(row);
    return result;
}

static Py_ssize_t
append_values(Lines *self, PyObject *values)
{
    if (self->names == NULL) {
        PyErr_SetString(PyExc_TypeError, "this buffer has no field names");
        return -1;
    }
    Py_ssize_t start = self->size;
    if (add_values(self, values) < 0)
        return -1;
    if (put(self, "\n", 1) < 0) {
        self->size = start;
        return -1;
    }
    return ++self->count;
}

static PyObject *
Lines_append_values(Lines *self, PyObject *values)
{
    Py_ssize_t count = append_values(self, values);
    return count < 0 ? NULL : PyLong_FromSsize_t(count);
}

/* CSV: a row as csv.writer writes it (the default dialect, "\n" after each row), for the
 * fields whose text is plain: None (empty), True and False, exact ints, finite exact floats
 * (repr) and exact str without a comma, quote, line break or NUL, which go unquoted. Anything
 * else (or a row without any text, which csv quotes) makes the whole row the fallback's, so
 * that quoting and str() of other objects are csv's own. Text goes in as UTF-8. */
static int
put_csv_field(Lines *self, PyObject *field)
{
    if (field == Py_None)
        return DONE;
    if (field == Py_True)
        return put(self, "True", 4) < 0 ? FAILED : DONE;
    if (field == Py_False)
        return put(self, "False", 5) < 0 ? FAILED : DONE;
    if (PyUnicode_CheckExact(field)) {
        Py_ssize_t n;
        const char *text = PyUnicode_AsUTF8AndSize(field, &n);
        if (text == NULL) {
            PyErr_Clear(); /* a lone surrogate: csv's own text, and its error at the write */
            return FALLBACK;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            char c = text[i];
            if (c == ',' || c == '"' || c == '\n' || c == '\r' || c == '\0')
                return FALLBACK;
        }
        return put(self, text, n) < 0 ? FAILED : DONE;
    }
    if (PyLong_CheckExact(field))
        return put_int(self, field) < 0 ? FAILED : DONE;
    if (PyFloat_CheckExact(field)) {
        if (!isfinite(PyFloat_AS_DOUBLE(field)))
            return FALLBACK; /* csv writes nan and inf */
        return put_float(self, field) < 0 ? FAILED : DONE;
    }
    return FALLBACK;
}

static Py_ssize_t
append_row(Lines *self, PyObject *row)
{
    if (!PyTuple_Check(row)) {
        PyErr_SetString(PyExc_TypeError, "a CSV row must be a tuple");
        return -1;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(row);
    Py_ssize_t start = self->size;
    int status = DONE;
    for (Py_ssize_t i = 0; i < n && status == DONE; i++) {
        if (i && put(self, ",", 1) < 0)
            status = FAILED;
        else
            status = put_csv_field(self, PyTuple_GET_ITEM(row, i));
    }
    if (status == DONE && self->size == start)
        status = FALLBACK; /* no text at all: csv writes "" (or refuses an empty row) */
    if (status == DONE && put(self, "\n", 1) < 0)
        status = FAILED;
    if (status != DONE) {
        self->size = start;
        if (status == FAILED)
            return -1;
        PyObject *text = PyObject_CallOneArg(self->fallback, row);
        if (text == NULL)
            return -1;
        if (!PyUnicode_Check(text)) {
            PyErr_Format(PyExc_TypeError, "the CSV fallback returned %.100s, not str",
                         Py_TYPE(text)->tp_name);
            Py_DECREF(text);
            return -1;
        }
        Py_ssize_t size;
        const char *s = PyUnicode_AsUTF8AndSize(text, &size);
        int result = s == NULL ? -1 : put(self, s, size);
        Py_DECREF(text);
        if (result < 0) {
            self->size = start;
            return -1;
        }
    }
    return ++self->count;
}

static PyObject *
Lines_append_row(Lines *self, PyObject *row)
{
    Py_ssize_t count = append_row(self, row);
    return count < 0 ? NULL : PyLong_FromSsize_t(count);
}

static Py_ssize_t
append_record(Lines *self, PyObject *value)
{
    Py_ssize_t start = self->size;
    if (add_record(self, value) < 0)
        return -1;
    if (put(self, "\n", 1) < 0) {
        self->size = start;
        return -1;
    }
    return ++self->count;
}

static PyObject *
Lines_append(Lines *self, PyObject *value)
{
    Py_ssize_t count = append_record(self, value);
    return count < 0 ? NULL : PyLong_FromSsize_t(count);
}

static PyObject *
Lines_append_raw(Lines *self, PyObject *text)
{
    if (!PyBytes_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "append_raw() takes bytes");
        return NULL;
    }
    Py_ssize_t start = self->size;
    if (put(self, PyBytes_AS_STRING(text), PyBytes_GET_SIZE(text)) < 0 || put(self, "\n", 1) < 0) {
        self->size = start;
        return NULL;
    }
    return PyLong_FromSsize_t(++self->count);
}

static PyObject *
Lines_encode_values(Lines *self, PyObject *values)
{
    if (self->names == NULL) {
        PyErr_SetString(PyExc_TypeError, "this buffer has no field names");
        return NULL;
    }
    Py_ssize_t start = self->size;
    if (add_values(self, values) < 0)
        return NULL;
    PyObject *result = PyBytes_FromStringAndSize(self->data + start, self->size - start);
    self->size = start;
    return result;
}

static PyObject *
Lines_encode(Lines *self, PyObject *value)
{
    Py_ssize_t start = self->size;
    if (add_record(self, value) < 0)
        return NULL;
    PyObject *result = PyBytes_FromStringAndSize(self->data + start, self->size - start);
    self->size = start;
    return result;
}

static PyObject *
Lines_take(Lines *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *result = PyBytes_FromStringAndSize(self->data, self->size);
    if (result == NULL)
        return NULL;
    self->size = 0;
    self->count = 0;
    if (self->capacity > (1 << 22)) { /* a batch of huge records: give the memory back */
        PyMem_Free(self->data);
        self->data = NULL;
        self->capacity = 0;
    }
    return result;
}

static PyObject *
Lines_clear(Lines *self, PyObject *Py_UNUSED(ignored))
{
    self->size = 0;
    self->count = 0;
    Py_RETURN_NONE;
}

static Py_ssize_t
Lines_len(Lines *self)
{
    return self->count;
}

static PyObject *
Lines_get_size(Lines *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(self->size);
}

static int
set_names(Lines *self, PyObject *names)
{
    if (!PyTuple_Check(names)) {
        PyErr_SetString(PyExc_TypeError, "names must be a tuple of str");
        return -1;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(names);
    Py_ssize_t *ends = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(n ? n : 1));
    if (ends == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t start = self->size;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i);
        if (!PyUnicode_Check(name)) {
            PyErr_SetString(PyExc_TypeError, "names must be a tuple of str");
            goto fail;
        }
        if (put(self, i ? ", " : "{", i ? 2 : 1) < 0 || put_string(self, name) < 0 ||
            put(self, ": ", 2) < 0)
            goto fail;
        ends[i] = self->size - start;
    }
    char *text = PyMem_Malloc((size_t)(self->size - start + 1));
    if (text == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    memcpy(text, self->data + start, (size_t)(self->size - start));
    self->size = start;
    PyMem_Free(self->name_text);
    PyMem_Free(self->name_end);
    self->name_text = text;
    self->name_end = ends;
    Py_INCREF(names);
    Py_XSETREF(self->names, names);
    return 0;
fail:
    self->size = start;
    PyMem_Free(ends);
    return -1;
}

static int
Lines_init(Lines *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"fallback", "names", NULL};
    PyObject *fallback, *names = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:Lines", kwlist, &fallback, &names))
        return -1;
    if (!PyCallable_Check(fallback)) {
        PyErr_SetString(PyExc_TypeError, "fallback must be callable");
        return -1;
    }
    if (names != Py_None && set_names(self, names) < 0)
        return -1;
    Py_INCREF(fallback);
    Py_XSETREF(self->fallback, fallback);
    return 0;
}

static int
Lines_traverse(Lines *self, visitproc visit, void *arg)
{
    Py_VISIT(self->fallback);
    return 0;
}

static int
Lines_clear_refs(Lines *self)
{
    Py_CLEAR(self->fallback);
    return 0;
}

static PyObject *
Lines_get_names(Lines *self, void *Py_UNUSED(closure))
{
    if (self->names == NULL)
        Py_RETURN_NONE;
    Py_INCREF(self->names);
    return self->names;
}

static void
Lines_dealloc(Lines *self)
{
    PyObject_GC_UnTrack(self);
    Lines_clear_refs(self);
    for (int i = 0; i < KEY_SLOTS; i++)
        Py_CLEAR(self->keys[i].key);
    Py_CLEAR(self->last_int);
    Py_CLEAR(self->names);
    PyMem_Free(self->name_text);
    PyMem_Free(self->name_end);
    PyMem_Free(self->data);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

PyDoc_STRVAR(append_doc, "append(record) -> int\n\n"
                         "Add json.dumps(record) and a line break; the number of lines held.");
PyDoc_STRVAR(append_values_doc,
             "append_values(values) -> int\n\n"
             "Add json.dumps(dict(zip(names, values))) and a line break; the lines held.");
PyDoc_STRVAR(append_row_doc,
             "append_row(row) -> int\n\n"
             "Add the tuple `row` as csv.writer writes it, with a line break; the lines held. "
             "The fallback makes the text of a row this encoder does not write itself.");
PyDoc_STRVAR(append_raw_doc, "append_raw(text) -> int\n\n"
                             "Add the bytes `text` (a line of JSON made elsewhere) and a line "
                             "break; the lines held.");
PyDoc_STRVAR(encode_values_doc, "encode_values(values) -> bytes\n\n"
                                "json.dumps(dict(zip(names, values))), as bytes.");
PyDoc_STRVAR(encode_doc, "encode(record) -> bytes\n\njson.dumps(record), as bytes.");
PyDoc_STRVAR(take_doc, "take() -> bytes\n\nThe lines held, which are then forgotten.");
PyDoc_STRVAR(clear_doc, "clear()\n\nForget the lines held.");

static PyMethodDef Lines_methods[] = {
    {"append", (PyCFunction)Lines_append, METH_O, append_doc},
    {"append_values", (PyCFunction)Lines_append_values, METH_O, append_values_doc},
    {"append_row", (PyCFunction)Lines_append_row, METH_O, append_row_doc},
    {"append_raw", (PyCFunction)Lines_append_raw, METH_O, append_raw_doc},
    {"encode", (PyCFunction)Lines_encode, METH_O, encode_doc},
    {"encode_values", (PyCFunction)Lines_encode_values, METH_O, encode_values_doc},
    {"take", (PyCFunction)Lines_take, METH_NOARGS, take_doc},
    {"clear", (PyCFunction)Lines_clear, METH_NOARGS, clear_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Lines_getset[] = {
    {"size", (getter)Lines_get_size, NULL, "Bytes held.", NULL},
    {"names", (getter)Lines_get_names, NULL, "The field names of append_values.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods Lines_as_sequence = {
    .sq_length = (lenfunc)Lines_len,
};

PyDoc_STRVAR(Lines_doc, "Lines(fallback, names=None)\n\n"
                        "A buffer of JSON lines, each json.dumps(record); `fallback` (json.dumps) "
                        "encodes the records this encoder does not take itself. With `names` (a "
                        "tuple of str), append_values() adds records of those fields.");

static PyTypeObject LinesType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "doge_datagen._jsonlines.Lines",
    .tp_basicsize = sizeof(Lines),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = Lines_doc,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Lines_init,
    .tp_dealloc = (destructor)Lines_dealloc,
    .tp_traverse = (traverseproc)Lines_traverse,
    .tp_clear = (inquiry)Lines_clear_refs,
    .tp_methods = Lines_methods,
    .tp_getset = Lines_getset,
    .tp_as_sequence = &Lines_as_sequence,
};

/* A sink's collect(timestamp, subject, transition) without a Python frame of its own: the
 * value function's result (a record, a Record's values or a CSV row) goes into the buffer,
 * and `drain()` is called when it holds `limit` lines. A value the buffer cannot take is
 * handed with its error to `fail(value, error)`, which raises the sink's error. */
typedef struct {
    PyObject_HEAD
    PyObject *function;
    Lines *lines;
    int kind; /* 0: append(record), 1: append_values(tuple), 2: append_row(tuple),
               * 3: a CSV row of a dict's `names`, `convert(dict)` giving the tuple of others */
    Py_ssize_t limit;
    PyObject *drain;
    PyObject *fail;
    PyObject *names;
    PyObject *convert;
    vectorcallfunc vectorcall;
} Collector;

/* A CSV row of the dict `row` with exactly the keys `names`, in their order; 1 when the row
 * is not such a dict or a field is not plain (nothing written then), -1 on an error. */
static int
put_dict_row(Lines *self, PyObject *row, PyObject *names)
{
    Py_ssize_t n = PyTuple_GET_SIZE(names);
    if (!PyDict_CheckExact(row) || PyDict_GET_SIZE(row) != n || n == 0)
        return 1;
    Py_ssize_t start = self->size;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *field = PyDict_GetItemWithError(row, PyTuple_GET_ITEM(names, i));
        int status;
        if (field == NULL)
            status = PyErr_Occurred() ? FAILED : FALLBACK;
        else if (i && put(self, ",", 1) < 0)
            status = FAILED;
        else
            status = put_csv_field(self, field);
        if (status != DONE) {
            self->size = start;
            return status == FAILED ? -1 : 1;
        }
    }
    if (self->size == start || put(self, "\n", 1) < 0) {
        self->size = start;
        return PyErr_Occurred() ? -1 : 1;
    }
    self->count++;
    return 0;
}

static PyObject *
Collector_call(Collector *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    if (PyVectorcall_NARGS(nargsf) != 3 || kwnames != NULL) {
        PyErr_SetString(PyExc_TypeError, "collect(timestamp, subject, transition)");
        return NULL;
    }
    PyObject *value = PyObject_Vectorcall(self->function, args, 3, NULL);
    if (value == NULL)
        return NULL;
    Py_ssize_t count;
    if (self->kind == 0)
        count = append_record(self->lines, value);
    else if (self->kind == 1)
        count = append_values(self->lines, value);
    else if (self->kind == 2)
        count = append_row(self->lines, value);
    else {
        int plain = put_dict_row(self->lines, value, self->names);
        if (plain == 0)
            count = self->lines->count;
        else if (plain < 0)
            count = -1;
        else {
            /* the sink's own checks and csv's text */
            PyObject *row = PyObject_CallOneArg(self->convert, value);
            Py_DECREF(value);
            if (row == NULL)
                return NULL;
            value = row;
            count = append_row(self->lines, value);
        }
    }
    if (count < 0) {
        PyObject *type, *error, *traceback;
        PyErr_Fetch(&type, &error, &traceback);
        PyErr_NormalizeException(&type, &error, &traceback);
        if (traceback != NULL && error != NULL)
            PyException_SetTraceback(error, traceback);
        Py_XDECREF(type);
        Py_XDECREF(traceback);
        PyObject *fail_args[2] = {value, error ? error : Py_None};
        PyObject *done = PyObject_Vectorcall(self->fail, fail_args, 2, NULL);
        Py_XDECREF(error);
        Py_DECREF(value);
        if (done != NULL) { /* fail() must raise */
            Py_DECREF(done);
            PyErr_SetString(PyExc_SystemError, "fail() returned instead of raising");
        }
        return NULL;
    }
    Py_DECREF(value);
    if (count >= self->limit) {
        PyObject *done = PyObject_CallNoArgs(self->drain);
        if (done == NULL)
            return NULL;
        Py_DECREF(done);
    }
    Py_RETURN_NONE;
}

static PyObject *
Collector_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"function", "lines", "kind", "limit", "drain",
                             "fail",     "names", "convert", NULL};
    PyObject *function, *lines, *drain, *fail, *names = Py_None, *convert = Py_None;
    int kind;
    Py_ssize_t limit;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO!inOO|OO:Collector", kwlist, &function,
                                     &LinesType, &lines, &kind, &limit, &drain, &fail, &names,
                                     &convert))
        return NULL;
    if (kind < 0 || kind > 3 || limit < 1 || !PyCallable_Check(function) ||
        !PyCallable_Check(drain) || !PyCallable_Check(fail) ||
        (kind == 3 && (!PyTuple_Check(names) || !PyCallable_Check(convert)))) {
        PyErr_SetString(PyExc_ValueError, "bad Collector arguments");
        return NULL;
    }
    Collector *self = (Collector *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    Py_INCREF(function);
    self->function = function;
    Py_INCREF(lines);
    self->lines = (Lines *)lines;
    self->kind = kind;
    self->limit = limit;
    Py_INCREF(drain);
    self->drain = drain;
    Py_INCREF(fail);
    self->fail = fail;
    Py_INCREF(names);
    self->names = names;
    Py_INCREF(convert);
    self->convert = convert;
    self->vectorcall = (vectorcallfunc)Collector_call;
    return (PyObject *)self;
}

static int
Collector_traverse(Collector *self, visitproc visit, void *arg)
{
    Py_VISIT(self->function);
    Py_VISIT(self->lines);
    Py_VISIT(self->drain);
    Py_VISIT(self->fail);
    Py_VISIT(self->names);
    Py_VISIT(self->convert);
    return 0;
}

static int
Collector_clear(Collector *self)
{
    Py_CLEAR(self->function);
    Py_CLEAR(self->lines);
    Py_CLEAR(self->drain);
    Py_CLEAR(self->fail);
    Py_CLEAR(self->names);
    Py_CLEAR(self->convert);
    return 0;
}

static void
Collector_dealloc(Collector *self)
{
    PyObject_GC_UnTrack(self);
    Collector_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

PyDoc_STRVAR(Collector_doc,
             "Collector(function, lines, kind, limit, drain, fail, names=None, convert=None)\n\n"
             "collect(timestamp, subject, transition) of a sink writing into `lines`.");

static PyTypeObject CollectorType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "doge_datagen._jsonlines.Collector",
    .tp_basicsize = sizeof(Collector),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = Collector_doc,
    .tp_new = Collector_new,
    .tp_dealloc = (destructor)Collector_dealloc,
    .tp_traverse = (traverseproc)Collector_traverse,
    .tp_clear = (inquiry)Collector_clear,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(Collector, vectorcall),
};

/* A key's last row, as `last` keeps it: the values of the class's names and the state (what
 * the next change compares), the row's text (the next change's `before`) in the same block of
 * memory, and the subject whose row it is with its key (its entry in `keys`), so that a change
 * of a subject keyed by one of its names finds its row in one lookup, and the row's parts in
 * one place. A change of atoms only (None, bool, int, float, str, which neither compare nor
 * go away by running code) rewrites the row in place while `last` alone holds it; of atoms
 * only, the garbage collector need not follow it. */
typedef struct {
    PyObject_VAR_HEAD           /* ob_size: the bytes of the values and the text's room */
    unsigned long long subject; /* subject_mix() of the subject whose row it is */
    PyObject *key;
    PyObject *state;
    Py_ssize_t count; /* the values */
    Py_ssize_t text_size;
    Py_ssize_t atoms;
    PyObject *values[1]; /* `count` of them, then the text */
} Row;

static PyTypeObject RowType;

#define ROW_HEAD offsetof(Row, values)

static inline char *
row_text(Row *row)
{
    return (char *)(row->values + row->count);
}

static inline Py_ssize_t
row_room(Row *row)
{
    return Py_SIZE(row) - row->count * (Py_ssize_t)sizeof(PyObject *);
}

static inline int
is_atom(PyObject *value)
{
    return value == Py_None || PyLong_CheckExact(value) || PyUnicode_CheckExact(value) ||
           PyFloat_CheckExact(value) || PyBool_Check(value);
}

/* A new row, with room for a text a little longer than this one (a number's digits more). */
static Row *
row_new(unsigned long long subject, PyObject *key, PyObject *const *values, Py_ssize_t n,
        PyObject *state, const char *text, Py_ssize_t size)
{
    if (size > PY_SSIZE_T_MAX / 2 ||
        n > (PY_SSIZE_T_MAX / 2 - size - 32) / (Py_ssize_t)sizeof(PyObject *)) {
        PyErr_NoMemory();
        return NULL;
    }
    Py_ssize_t room = (size + 16 + 7) & ~(Py_ssize_t)7;
    Row *row = PyObject_GC_NewVar(Row, &RowType, n * (Py_ssize_t)sizeof(PyObject *) + room);
    if (row == NULL)
        return NULL;
    row->subject = subject;
    row->count = n;
    Py_ssize_t atoms = is_atom(key) && PyUnicode_CheckExact(state);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_INCREF(values[i]);
        row->values[i] = values[i];
        if (atoms && !is_atom(values[i]))
            atoms = 0;
    }
    Py_INCREF(key);
    row->key = key;
    Py_INCREF(state);
    row->state = state;
    if (size)
        memcpy(row_text(row), text, (size_t)size);
    row->text_size = size;
    row->atoms = atoms;
    if (!atoms)
        PyObject_GC_Track(row);
    return row;
}

static PyObject *
Row_new(PyTypeObject *Py_UNUSED(type), PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"subject_id", "key", "values", "state", "text", NULL};
    PyObject *subject_id, *key, *values, *state, *text;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!OO!OO!:Row", kwlist, &PyLong_Type,
                                     &subject_id, &key, &PyTuple_Type, &values, &state,
                                     &PyBytes_Type, &text))
        return NULL;
    unsigned long long subject = PyLong_AsUnsignedLongLong(subject_id);
    if (subject == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    return (PyObject *)row_new(subject, key, &PyTuple_GET_ITEM(values, 0),
                               PyTuple_GET_SIZE(values), state, PyBytes_AS_STRING(text),
                               PyBytes_GET_SIZE(text));
}

static int
Row_traverse(Row *self, visitproc visit, void *arg)
{
    Py_VISIT(self->key);
    Py_VISIT(self->state);
    for (Py_ssize_t i = 0; i < self->count; i++)
        Py_VISIT(self->values[i]);
    return 0;
}

/* (None in each place, so that a row broken out of a cycle still reads) */
static int
Row_clear(Row *self)
{
    PyObject **places[2] = {&self->key, &self->state};
    for (Py_ssize_t i = 0; i < self->count + 2; i++) {
        PyObject **place = i < 2 ? places[i] : &self->values[i - 2];
        if (*place != Py_None) {
            PyObject *old = *place;
            Py_INCREF(Py_None);
            *place = Py_None;
            Py_DECREF(old);
        }
    }
    return 0;
}

static void
Row_dealloc(Row *self)
{
    PyObject_GC_UnTrack(self);
    Py_XDECREF(self->key);
    Py_XDECREF(self->state);
    for (Py_ssize_t i = 0; i < self->count; i++)
        Py_XDECREF(self->values[i]);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Row_get_values(Row *self, void *Py_UNUSED(closure))
{
    PyObject *values = PyTuple_New(self->count);
    if (values == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < self->count; i++) {
        Py_INCREF(self->values[i]);
        PyTuple_SET_ITEM(values, i, self->values[i]);
    }
    return values;
}

static PyObject *
Row_get_state(Row *self, void *Py_UNUSED(closure))
{
    Py_INCREF(self->state);
    return self->state;
}

static PyObject *
Row_get_key(Row *self, void *Py_UNUSED(closure))
{
    Py_INCREF(self->key);
    return self->key;
}

static PyObject *
Row_get_text(Row *self, void *Py_UNUSED(closure))
{
    return PyBytes_FromStringAndSize(row_text(self), self->text_size);
}

static PyObject *
Row_get_subject_id(Row *self, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLongLong(self->subject);
}

static PyGetSetDef Row_getset[] = {
    {"values", (getter)Row_get_values, NULL, "The values of the class's names.", NULL},
    {"state", (getter)Row_get_state, NULL, "The subject's state.", NULL},
    {"text", (getter)Row_get_text, NULL, "The row's JSON text.", NULL},
    {"key", (getter)Row_get_key, NULL, "The key of the subject whose row it is.", NULL},
    {"subject_id", (getter)Row_get_subject_id, NULL,
     "subject_id() of the subject whose row it is.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(Row_doc, "Row(subject_id, key, values, state, text)\n\n"
                      "A key's last row, as a Changes collector keeps it (see sinks/cdc.py).");

static PyTypeObject RowType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "doge_datagen._jsonlines.Row",
    .tp_basicsize = ROW_HEAD,
    .tp_itemsize = 1,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = Row_doc,
    .tp_new = Row_new,
    .tp_dealloc = (destructor)Row_dealloc,
    .tp_traverse = (traverseproc)Row_traverse,
    .tp_clear = (inquiry)Row_clear,
    .tp_getset = Row_getset,
};

/* A change-event sink's collect() (sinks/cdc.py, ChangeEventSink in JSON Lines) for the
 * events that change a known subject without ending it: the line
 *   {"before": LAST, "after": ROW, "op": "u", "ts_ms": TS, "source": SOURCE, "key": KEY}
 * spliced from the subject's last row's text (kept in `last`), the new row's text (made from
 * the class's template in `readers`) and the source's text of the timestamp. Any other event
 * (a subject not known here, a final state, a class without a template, a value the encoder
 * gives to json) goes to `slow(timestamp, subject, transition)`, the Python collect(), which
 * writes the same text. An event that changes nothing writes nothing. */
typedef struct {
    PyObject_HEAD
    Lines *lines;      /* the file sink's buffer */
    PyObject *keys;    /* {subject_id(subject): key} */
    PyObject *last;    /* {key: Row (a list: a row the slow way read as a dict)} */
    PyObject *readers; /* {class: (getter, Lines of the names and "state", needs an empty
                        * dict, the key's index in the names: -1 none, -2 not there)} */
    PyObject *finals;  /* frozenset of the final states */
    PyObject *slow;
    PyObject *source;  /* source(timestamp) -> bytes */
    PyObject *drain;
    Py_ssize_t limit;
    PyObject *source_at;
    PyObject *source_text;
    Py_ssize_t updates;
    vectorcallfunc vectorcall;
} Changes;

static PyObject *str_to_state, *str_dict;

/* The number that stands for a subject in `keys`: its address, its bits mixed (a multiply by
 * an odd constant and a shift-xor, each one to one). Addresses themselves are multiples of 16
 * a few dozen bytes apart, and a dict of them puts most in a few of its slots: their low
 * bits pick the slot, so that a lookup walks past many others. */
static inline unsigned long long
subject_mix(PyObject *subject)
{
    unsigned long long x = (unsigned long long)(uintptr_t)subject;
    x *= 0x9E3779B97F4A7C15ULL;
    return x ^ (x >> 32);
}

static PyObject *
subject_id(PyObject *Py_UNUSED(module), PyObject *subject)
{
    return PyLong_FromUnsignedLongLong(subject_mix(subject));
}

static PyObject *
Changes_slow(Changes *self, PyObject *const *args)
{
    return PyObject_Vectorcall(self->slow, args, 3, NULL);
}

static int
check_reader(PyObject *reader)
{
    if (!PyTuple_CheckExact(reader) || PyTuple_GET_SIZE(reader) != 4 ||
        !PyObject_TypeCheck(PyTuple_GET_ITEM(reader, 1), &LinesType) ||
        ((Lines *)PyTuple_GET_ITEM(reader, 1))->names == NULL ||
        PyTuple_GET_SIZE(((Lines *)PyTuple_GET_ITEM(reader, 1))->names) < 2 ||
        !PyLong_CheckExact(PyTuple_GET_ITEM(reader, 3))) {
        PyErr_SetString(PyExc_TypeError, "a reader is (getter, Lines with names, bool, int)");
        return -1;
    }
    return 0;
}

/* Values read here without a call, up to this many names (more: the getter's tuple). */
#define FAST_NAMES 16

/* Memory asked for ahead of its use, so that the wait for it overlaps another's: an event
 * waits mostly for the parts of its subject's row that are not in the cache. */
#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(address) __builtin_prefetch(address)
#else
#define PREFETCH(address) ((void)0)
#endif

/* Where the subject's __dict__ is (a class of slots over one with a __dict__), its object
 * asked for; NULL: not known here. */
static PyObject **
dict_place(PyObject *subject)
{
    PyObject **place = _PyObject_GetDictPtr(subject);
    if (place != NULL && *place != NULL)
        PREFETCH(*place);
    return place;
}

/* Whether the subject's __dict__ is empty, so that the template of its slots is its row: 1
 * yes, 0 no, -1 an error. */
static int
dict_empty(PyObject *subject, PyObject **place)
{
    if (place != NULL) {
        PyObject *dict = *place;
        return dict == NULL || (PyDict_Check(dict) && PyDict_GET_SIZE(dict) == 0);
    }
    PyObject *dict = PyObject_GenericGetDict(subject, NULL);
    if (dict == NULL)
        return -1;
    int empty = PyDict_Check(dict) && PyDict_GET_SIZE(dict) == 0;
    Py_DECREF(dict);
    return empty;
}

/* The subject's values of the reader's names into `values` (new references) straight from
 * its slots, as the getter reads them: each name the class's member descriptor of an object
 * slot, the class's attribute lookup the generic one. 0 done, 1 the getter must read them (a
 * name not a slot), 2 a slot not set (the slow way's row). */
static int
read_slots(PyObject *subject, PyObject *names, Py_ssize_t n, PyObject **values)
{
    PyTypeObject *type = Py_TYPE(subject);
    if (type->tp_getattro != PyObject_GenericGetAttr)
        return 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *descr = _PyType_Lookup(type, PyTuple_GET_ITEM(names, i));
        int found = 1;
        PyObject *value = NULL;
        if (descr == NULL || !Py_IS_TYPE(descr, &PyMemberDescr_Type))
            found = 0;
        else {
            PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
            if (member->type != T_OBJECT_EX || (member->flags & READ_RESTRICTED) ||
                !PyObject_TypeCheck(subject, PyDescr_TYPE(descr)))
                found = 0;
            else
                value = *(PyObject **)((char *)subject + member->offset);
        }
        if (!found || value == NULL) {
            for (Py_ssize_t j = 0; j < i; j++)
                Py_DECREF(values[j]);
            return found ? 2 : 1;
        }
        Py_INCREF(value);
        values[i] = value;
    }
    return 0;
}

/* The subject's values by the reader into `values` (new references; `*many` a block of
 * memory for them beyond FAST_NAMES names, for the caller to free): 0 done, 1 the slow way's
 * row (an attribute not set), -1 an error. Whether its __dict__ leaves the template its row
 * is the caller's to check (dict_empty). */
static int
read_values(PyObject *reader, PyObject *subject, PyObject **values, PyObject ***many)
{
    *many = NULL;
    Lines *row_lines = (Lines *)PyTuple_GET_ITEM(reader, 1);
    Py_ssize_t n = PyTuple_GET_SIZE(row_lines->names) - 1;
    if (n <= FAST_NAMES) {
        int read = read_slots(subject, row_lines->names, n, values);
        if (read != 1)
            return read ? 1 : 0;
    }
    PyObject *got = PyObject_CallOneArg(PyTuple_GET_ITEM(reader, 0), subject);
    if (got == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError))
            return -1;
        PyErr_Clear();
        return 1;
    }
    if (n == 1) {
        values[0] = got;
        return 0;
    }
    if (!PyTuple_CheckExact(got) || PyTuple_GET_SIZE(got) != n) {
        Py_DECREF(got);
        PyErr_SetString(PyExc_TypeError, "a getter gives a tuple of the names' values");
        return -1;
    }
    PyObject **into = values;
    if (n > FAST_NAMES) {
        into = *many = PyMem_Malloc((size_t)n * sizeof(PyObject *));
        if (into == NULL) {
            Py_DECREF(got);
            PyErr_NoMemory();
            return -1;
        }
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        into[i] = PyTuple_GET_ITEM(got, i);
        Py_INCREF(into[i]);
    }
    Py_DECREF(got);
    return 0;
}

static void
drop_values(PyObject **values, Py_ssize_t n, PyObject **many)
{
    for (Py_ssize_t i = 0; i < n; i++)
        Py_DECREF(values[i]);
    PyMem_Free(many);
}

/* The row's text (the template of the class's names and "state") at the end of `out`. */
static int
put_row(Lines *out, Lines *row_lines, PyObject *const *values, Py_ssize_t n, PyObject *state)
{
    const char *names = row_lines->name_text;
    Py_ssize_t *ends = row_lines->name_end;
    int status = DONE;
    for (Py_ssize_t i = 0; i <= n && status == DONE; i++) {
        Py_ssize_t from = i ? ends[i - 1] : 0;
        if (put(out, names + from, ends[i] - from) < 0)
            status = FAILED;
        else
            status = encode(out, i < n ? values[i] : state, 1);
    }
    if (status == DONE && put(out, "}", 1) < 0)
        status = FAILED;
    return status;
}

/* The row of `key` in `last`, as a new reference: NULL with no error set when there is none
 * or it is not a Row (the slow way's). */
static Row *
last_row(Changes *self, PyObject *key)
{
    PyObject *row = PyDict_GetItemWithError(self->last, key);
    if (row == NULL || !Py_IS_TYPE(row, &RowType))
        return NULL;
    for (Py_ssize_t at = 64; at < (Py_ssize_t)ROW_HEAD + Py_SIZE(row); at += 64)
        PREFETCH((char *)row + at);
    Py_INCREF(row);
    return (Row *)row;
}

static PyObject *
Changes_call(Changes *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    if (PyVectorcall_NARGS(nargsf) != 3 || kwnames != NULL) {
        PyErr_SetString(PyExc_TypeError, "collect(timestamp, subject, transition)");
        return NULL;
    }
    PyObject *timestamp = args[0], *subject = args[1], *transition = args[2];
    PyObject *reader = PyDict_GetItemWithError(self->readers, (PyObject *)Py_TYPE(subject));
    if (reader == NULL) {
        if (PyErr_Occurred())
            return NULL;
        return Changes_slow(self, args);
    }
    if (check_reader(reader) < 0)
        return NULL;
    Py_INCREF(reader); /* Python code runs below (the getter's, the slow way's) */
    PyObject *key = NULL, *state = NULL, *result = NULL;
    PyObject *fast[FAST_NAMES], **many = NULL, **values = fast;
    Py_ssize_t n = -1; /* values read */
    Row *row = NULL;
    Lines *row_lines = (Lines *)PyTuple_GET_ITEM(reader, 1);
    unsigned long long mixed = subject_mix(subject);
    int with_dict = PyTuple_GET_ITEM(reader, 2) == Py_True;
    PyObject **dict_at = with_dict ? dict_place(subject) : NULL;
    state = PyObject_GetAttr(transition, str_to_state);
    if (state == NULL)
        goto done;
    int final = PySet_Contains(self->finals, state);
    if (final < 0)
        goto done;
    if (final)
        goto slow;
    int read = read_values(reader, subject, fast, &many);
    if (read < 0)
        goto done;
    if (read)
        goto slow; /* an attribute not set: the slow way's row */
    n = PyTuple_GET_SIZE(row_lines->names) - 1;
    if (many != NULL)
        values = many;
    /* Keyed by one of its names, the subject's row is found by its key's value when the row
     * is its own: the subject's entry in `keys` is then the row's key (a row is the subject's
     * from the change that keeps it with the key `keys` gives, to the change of another
     * subject of the key, or to the subject's end, which takes both out). */
    Py_ssize_t key_index = PyLong_AsSsize_t(PyTuple_GET_ITEM(reader, 3));
    if (key_index == -1 && PyErr_Occurred())
        goto done;
    if (key_index >= 0 && key_index < n && is_atom(values[key_index])) {
        row = last_row(self, values[key_index]);
        if (row == NULL && PyErr_Occurred())
            goto done;
        if (row != NULL && row->subject != mixed)
            Py_CLEAR(row);
    }
    if (row != NULL) {
        key = row->key;
        Py_INCREF(key);
    }
    else {
        PyObject *id = PyLong_FromUnsignedLongLong(mixed);
        if (id == NULL)
            goto done;
        key = PyDict_GetItemWithError(self->keys, id);
        Py_DECREF(id);
        if (key == NULL) {
            if (PyErr_Occurred())
                goto done;
            goto slow;
        }
        Py_INCREF(key);
        row = last_row(self, key);
        if (row == NULL) {
            if (PyErr_Occurred())
                goto done;
            goto slow;
        }
    }
    if (row->count != n)
        goto slow;
    /* slots over a class with a __dict__: the template holds while the dict is empty (asked
     * here, its memory fetched meanwhile) */
    if (with_dict) {
        int empty = dict_empty(subject, dict_at);
        if (empty < 0)
            goto done;
        if (!empty)
            goto slow; /* more in the dict: the slow way's row */
    }
    /* a change only when the row differs, as the rows' dicts compare */
    int same = 1;
    for (Py_ssize_t i = 0; i <= n && same > 0; i++)
        same = PyObject_RichCompareBool(i < n ? values[i] : state,
                                        i < n ? row->values[i] : row->state, Py_EQ);
    if (same < 0)
        goto done;
    if (same) {
        Py_INCREF(Py_None);
        result = Py_None;
        goto done;
    }
    if (self->source_at == NULL || self->source_at != timestamp) {
        int known = self->source_at == NULL
                        ? 0
                        : PyObject_RichCompareBool(self->source_at, timestamp, Py_EQ);
        if (known < 0)
            goto done;
        if (!known) {
            PyObject *text = PyObject_CallOneArg(self->source, timestamp);
            if (text == NULL)
                goto done;
            if (!PyBytes_Check(text)) {
                Py_DECREF(text);
                PyErr_SetString(PyExc_TypeError, "source() gives bytes");
                goto done;
            }
            Py_INCREF(timestamp);
            Py_XSETREF(self->source_at, timestamp);
            Py_XSETREF(self->source_text, text);
        }
    }
    Lines *out = self->lines;
    Py_ssize_t start = out->size;
    int status = DONE;
    if (put(out, "{\"before\": ", 11) < 0 || put(out, row_text(row), row->text_size) < 0 ||
        put(out, ", \"after\": ", 11) < 0)
        status = FAILED;
    Py_ssize_t row_at = out->size;
    if (status == DONE)
        status = put_row(out, row_lines, values, n, state);
    Py_ssize_t row_end = out->size;
    if (status == DONE && put(out, ", \"op\": \"u\", \"ts_ms\": ", 22) < 0)
        status = FAILED;
    if (status == DONE)
        status = encode(out, timestamp, 1);
    if (status == DONE && (put(out, ", \"source\": ", 12) < 0 ||
                           put(out, PyBytes_AS_STRING(self->source_text),
                               PyBytes_GET_SIZE(self->source_text)) < 0 ||
                           put(out, ", \"key\": ", 9) < 0))
        status = FAILED;
    if (status == DONE)
        status = encode(out, key, 1);
    if (status == DONE && put(out, "}\n", 2) < 0)
        status = FAILED;
    if (status != DONE) {
        out->size = start;
        if (status == FAILED)
            goto done;
        goto slow; /* a value only json writes: the slow way gives its text or error */
    }
    /* The row kept: this one rewritten when `last` alone holds it and all is atoms (nothing
     * that a reference dropped here runs code for), a new one otherwise. */
    Py_ssize_t atoms = row->atoms && Py_REFCNT(row) == 2 && row_end - row_at <= row_room(row) &&
                PyUnicode_CheckExact(state) && is_atom(key);
    for (Py_ssize_t i = 0; i < n && atoms; i++)
        atoms = is_atom(values[i]);
    if (atoms) {
        memcpy(row_text(row), out->data + row_at, (size_t)(row_end - row_at));
        row->text_size = row_end - row_at;
        for (Py_ssize_t i = 0; i < n; i++) {
            if (row->values[i] != values[i]) {
                Py_INCREF(values[i]);
                Py_SETREF(row->values[i], values[i]);
            }
        }
        if (row->state != state) {
            Py_INCREF(state);
            Py_SETREF(row->state, state);
        }
        if (row->key != key) {
            Py_INCREF(key);
            Py_SETREF(row->key, key);
        }
        row->subject = mixed;
    }
    else {
        Row *kept = row_new(mixed, key, values, n, state, out->data + row_at, row_end - row_at);
        if (kept == NULL)
            goto failed;
        if (PyDict_SetItem(self->last, key, (PyObject *)kept) < 0) {
            Py_DECREF(kept);
            goto failed;
        }
        Py_DECREF(kept);
    }
    out->count++;
    self->updates++;
    if (out->count >= self->limit) {
        PyObject *drained = PyObject_CallNoArgs(self->drain);
        if (drained == NULL)
            goto done;
        Py_DECREF(drained);
    }
    Py_INCREF(Py_None);
    result = Py_None;
    goto done;
failed:
    out->size = start;
    goto done;
slow:
    result = Changes_slow(self, args);
done:
    Py_DECREF(reader);
    Py_XDECREF(key);
    Py_XDECREF(row);
    Py_XDECREF(state);
    if (n >= 0)
        drop_values(values, n, many);
    return result;
}

/* created(subjects, positions, start, first, state, middle) -> int: the lines
 *   {"before": null, "after": ROW, "op": ..., "ts_ms": ..., "source": ..., "key": KEY}
 * (`middle` the text from `, "op"` to `"key": `) of subjects[positions[start]], ... (subject
 * `first + i` for the position i), each key's row kept; stops at the first subject the
 * readers do not write (the slow way's), and gives how many it wrote. */
static PyObject *
Changes_created(Changes *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6 || !PyList_CheckExact(args[0]) || !PyBytes_Check(args[5])) {
        PyErr_SetString(PyExc_TypeError,
                        "created(subjects: list, positions, start, first, state, middle: bytes)");
        return NULL;
    }
    PyObject *subjects = args[0], *positions = args[1], *state = args[4], *middle = args[5];
    Py_ssize_t start = PyLong_AsSsize_t(args[2]);
    if (start == -1 && PyErr_Occurred())
        return NULL;
    Py_ssize_t first = PyLong_AsSsize_t(args[3]);
    if (first == -1 && PyErr_Occurred())
        return NULL;
    Py_ssize_t count = PySequence_Length(positions);
    if (count < 0)
        return NULL;
    Lines *out = self->lines;
    Py_ssize_t j = start;
    for (; j < count; j++) {
        PyObject *item = PySequence_GetItem(positions, j);
        if (item == NULL)
            return NULL;
        Py_ssize_t i = PyLong_AsSsize_t(item);
        Py_DECREF(item);
        if (i == -1 && PyErr_Occurred())
            return NULL;
        if (i < 0 || i >= PyList_GET_SIZE(subjects)) {
            PyErr_SetString(PyExc_IndexError, "a position beyond the subjects");
            return NULL;
        }
        PyObject *subject = PyList_GET_ITEM(subjects, i);
        Py_INCREF(subject);
        PyObject *reader = PyDict_GetItemWithError(self->readers, (PyObject *)Py_TYPE(subject));
        if (reader == NULL || check_reader(reader) < 0) {
            Py_DECREF(subject);
            if (PyErr_Occurred())
                return NULL;
            break;
        }
        Py_INCREF(reader);
        Py_ssize_t key_index = PyLong_AsSsize_t(PyTuple_GET_ITEM(reader, 3));
        PyObject *fast[FAST_NAMES], **many = NULL, **values = fast;
        Py_ssize_t n = -1;
        PyObject *key = NULL, *row = NULL, *id = NULL;
        int stop = 0, failed = 0;
        if (key_index == -1 && PyErr_Occurred()) {
            failed = 1;
            goto next;
        }
        if (key_index == -2) { /* the key is not one of the names: the slow way's error */
            stop = 1;
            goto next;
        }
        /* slots over a class with a __dict__: the template holds while the dict is empty */
        int read = 0;
        if (PyTuple_GET_ITEM(reader, 2) == Py_True) {
            int empty = dict_empty(subject, dict_place(subject));
            read = empty < 0 ? -1 : !empty; /* more in the dict: the slow way's row */
        }
        if (!read)
            read = read_values(reader, subject, fast, &many);
        if (read) {
            stop = 1;
            failed = read < 0;
            goto next;
        }
        n = PyTuple_GET_SIZE(((Lines *)PyTuple_GET_ITEM(reader, 1))->names) - 1;
        if (many != NULL)
            values = many;
        if (key_index >= n) {
            PyErr_SetString(PyExc_IndexError, "a key index beyond the names");
            failed = 1;
            goto next;
        }
        if (key_index >= 0) {
            key = values[key_index];
            Py_INCREF(key);
        }
        else if ((key = PyLong_FromSsize_t(first + i)) == NULL) {
            failed = 1;
            goto next;
        }
        Py_ssize_t at = out->size;
        int status = put(out, "{\"before\": null, \"after\": ", 26) < 0 ? FAILED : DONE;
        Py_ssize_t row_at = out->size;
        if (status == DONE)
            status = put_row(out, (Lines *)PyTuple_GET_ITEM(reader, 1), values, n, state);
        Py_ssize_t row_end = out->size;
        if (status == DONE &&
            put(out, PyBytes_AS_STRING(middle), PyBytes_GET_SIZE(middle)) < 0)
            status = FAILED;
        if (status == DONE)
            status = encode(out, key, 1);
        if (status == DONE && put(out, "}\n", 2) < 0)
            status = FAILED;
        if (status != DONE) {
            out->size = at;
            stop = 1;
            failed = status == FAILED;
            goto next;
        }
        unsigned long long mixed = subject_mix(subject);
        row = (PyObject *)row_new(mixed, key, values, n, state, out->data + row_at,
                                  row_end - row_at);
        id = PyLong_FromUnsignedLongLong(mixed);
        if (row == NULL || id == NULL) {
            out->size = at;
            failed = 1;
            goto next;
        }
        if (PyDict_SetItem(self->keys, id, key) < 0 || PyDict_SetItem(self->last, key, row) < 0) {
            out->size = at;
            failed = 1;
            goto next;
        }
        out->count++;
    next:
        Py_DECREF(subject);
        Py_DECREF(reader);
        if (n >= 0)
            drop_values(values, n, many);
        Py_XDECREF(key);
        Py_XDECREF(row);
        Py_XDECREF(id);
        if (failed)
            return NULL;
        if (stop)
            break;
        if (out->count >= self->limit) {
            PyObject *drained = PyObject_CallNoArgs(self->drain);
            if (drained == NULL)
                return NULL;
            Py_DECREF(drained);
        }
    }
    return PyLong_FromSsize_t(j - start);
}

static PyMethodDef Changes_methods[] = {
    {"created", (PyCFunction)(void (*)(void))Changes_created, METH_FASTCALL,
     "created(subjects, positions, start, first, state, middle) -> int\n\nThe r or c lines "
     "of the subjects the run made, up to the first the readers do not write; how many."},
    {NULL, NULL, 0, NULL},
};

static PyObject *
Changes_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"lines", "keys",   "last",  "readers", "finals",
                             "slow",  "source", "drain", "limit",   NULL};
    PyObject *lines, *keys, *last, *readers, *finals, *slow, *source, *drain;
    Py_ssize_t limit;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!O!O!OOOOn:Changes", kwlist, &LinesType,
                                     &lines, &PyDict_Type, &keys, &PyDict_Type, &last,
                                     &PyDict_Type, &readers, &finals, &slow, &source, &drain,
                                     &limit))
        return NULL;
    if (limit < 1 || !PyAnySet_Check(finals) || !PyCallable_Check(slow) ||
        !PyCallable_Check(source) || !PyCallable_Check(drain)) {
        PyErr_SetString(PyExc_ValueError, "bad Changes arguments");
        return NULL;
    }
    Changes *self = (Changes *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    Py_INCREF(lines);
    self->lines = (Lines *)lines;
    Py_INCREF(keys);
    self->keys = keys;
    Py_INCREF(last);
    self->last = last;
    Py_INCREF(readers);
    self->readers = readers;
    Py_INCREF(finals);
    self->finals = finals;
    Py_INCREF(slow);
    self->slow = slow;
    Py_INCREF(source);
    self->source = source;
    Py_INCREF(drain);
    self->drain = drain;
    self->limit = limit;
    self->vectorcall = (vectorcallfunc)Changes_call;
    return (PyObject *)self;
}

static int
Changes_traverse(Changes *self, visitproc visit, void *arg)
{
    Py_VISIT(self->lines);
    Py_VISIT(self->keys);
    Py_VISIT(self->last);
    Py_VISIT(self->readers);
    Py_VISIT(self->finals);
    Py_VISIT(self->slow);
    Py_VISIT(self->source);
    Py_VISIT(self->drain);
    Py_VISIT(self->source_at);
    Py_VISIT(self->source_text);
    return 0;
}

static int
Changes_clear(Changes *self)
{
    Py_CLEAR(self->lines);
    Py_CLEAR(self->keys);
    Py_CLEAR(self->last);
    Py_CLEAR(self->readers);
    Py_CLEAR(self->finals);
    Py_CLEAR(self->slow);
    Py_CLEAR(self->source);
    Py_CLEAR(self->drain);
    Py_CLEAR(self->source_at);
    Py_CLEAR(self->source_text);
    return 0;
}

static void
Changes_dealloc(Changes *self)
{
    PyObject_GC_UnTrack(self);
    Changes_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Changes_get_updates(Changes *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(self->updates);
}

static PyGetSetDef Changes_getset[] = {
    {"updates", (getter)Changes_get_updates, NULL, "The u lines written here.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(Changes_doc,
             "Changes(lines, keys, last, readers, finals, slow, source, drain, limit)\n\n"
             "collect(timestamp, subject, transition) of a change-event sink writing JSON "
             "Lines into `lines` (see sinks/cdc.py).");

static PyTypeObject ChangesType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "doge_datagen._jsonlines.Changes",
    .tp_basicsize = sizeof(Changes),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = Changes_doc,
    .tp_new = Changes_new,
    .tp_dealloc = (destructor)Changes_dealloc,
    .tp_traverse = (traverseproc)Changes_traverse,
    .tp_clear = (inquiry)Changes_clear,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(Changes, vectorcall),
    .tp_getset = Changes_getset,
    .tp_methods = Changes_methods,
};

static PyMethodDef module_methods[] = {
    {"subject_id", (PyCFunction)subject_id, METH_O,
     "subject_id(subject) -> int\n\nThe number that stands for the subject in a Changes "
     "collector's keys: unique while it lives, as id(), but spread over a dict's slots."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "doge_datagen._jsonlines",
    .m_doc = "JSON Lines with json.dumps's text, a batch in one buffer.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__jsonlines(void)
{
    if (PyType_Ready(&LinesType) < 0 || PyType_Ready(&CollectorType) < 0 ||
        PyType_Ready(&RowType) < 0 || PyType_Ready(&ChangesType) < 0)
        return NULL;
    str_to_state = PyUnicode_InternFromString("to_state");
    str_dict = PyUnicode_InternFromString("__dict__");
    if (str_to_state == NULL || str_dict == NULL)
        return NULL;
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    Py_INCREF(&LinesType);
    if (PyModule_AddObject(module, "Lines", (PyObject *)&LinesType) < 0) {
        Py_DECREF(&LinesType);
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(&CollectorType);
    if (PyModule_AddObject(module, "Collector", (PyObject *)&CollectorType) < 0) {
        Py_DECREF(&CollectorType);
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(&ChangesType);
    if (PyModule_AddObject(module, "Changes", (PyObject *)&ChangesType) < 0) {
        Py_DECREF(&ChangesType);
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(&RowType);
    if (PyModule_AddObject(module, "Row", (PyObject *)&RowType) < 0) {
        Py_DECREF(&RowType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
