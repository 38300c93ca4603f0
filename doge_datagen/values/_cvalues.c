/* The four values a subject factory makes most (name, e-mail address, street address, phone
 * number), in C: the same draws, in the same order, and the same text as the Python methods
 * of doge_datagen/values/_fake.py, which stay as the fallback (DOGE_DATAGEN_PURE_PYTHON=1, a
 * build without a compiler) and handle every case this file hands back to them (a gender, a
 * name that is not the one just drawn, a building number of several runs of digits, phone
 * formats too long for 64 bits).
 *
 * A Python method costs more in calls, attribute reads and small objects than in the work
 * itself; here each value is one call, its draws are calls of the generator's `_r` (the C
 * randint of the subject's stream), and the text is written into one new string. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define MASK31 ((uint64_t)0x7FFFFFFF)
#define MAX62 ((((uint64_t)1) << 62) - 1)

static PyObject *s_loc, *s_load, *s_r, *s_named, *s_name_tables, *s_mail_tables, *s_street_tables,
    *s_phones, *s_fill, *s_format, *s_name_py, *s_email_py, *s_street_py, *s_phone_py, *s_space,
    *s_dot, *s_at;

/* The locale's data (a new reference): self._loc, or self._load() the first time. */
static PyObject *
locale_of(PyObject *self)
{
    PyObject *d = PyObject_GetAttr(self, s_loc);
    if (d == NULL)
        return NULL;
    if (d == Py_None) {
        Py_DECREF(d);
        d = PyObject_CallMethodNoArgs(self, s_load);
    }
    return d;
}

/* One draw of self._r() (62 bits) into *u; -1 on error. */
static int
draw(PyObject *self, uint64_t *u)
{
    PyObject *r = PyObject_GetAttr(self, s_r);
    if (r == NULL)
        return -1;
    PyObject *v = PyObject_CallNoArgs(r);
    Py_DECREF(r);
    if (v == NULL)
        return -1;
    /* randint(0, 2**62 - 1) is a whole number in [0, 2**62): the masked read is exact for
     * it, and quicker than PyLong_AsUnsignedLongLong, which goes through bytes for a number
     * of several digits. */
    unsigned long long x = PyLong_AsUnsignedLongLongMask(v);
    Py_DECREF(v);
    if (x == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    *u = (uint64_t)x;
    return 0;
}

/* The decimal digits of `v` into `buf` (at least 21 bytes), NUL-terminated; their number. */
static int
digits_of(char *buf, unsigned long long v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v);
    for (int k = 0; k < n; k++)
        buf[k] = tmp[n - 1 - k];
    buf[n] = '\0';
    return n;
}

/* A new string of the `n` strings of `parts` one after the other. */
static PyObject *
concat(PyObject **parts, int n)
{
    Py_ssize_t len = 0;
    Py_UCS4 maxchar = 127;
    for (int k = 0; k < n; k++) {
        if (!PyUnicode_Check(parts[k])) {
            PyErr_SetString(PyExc_TypeError, "a value's part is not a string");
            return NULL;
        }
        len += PyUnicode_GET_LENGTH(parts[k]);
        Py_UCS4 m = PyUnicode_MAX_CHAR_VALUE(parts[k]);
        if (m > maxchar)
            maxchar = m;
    }
    PyObject *out = PyUnicode_New(len, maxchar);
    if (out == NULL)
        return NULL;
    if (maxchar < 256) {
        /* Every part is of the 1-byte kind, as the new string is: copied as bytes. */
        Py_UCS1 *w = PyUnicode_1BYTE_DATA(out);
        for (int k = 0; k < n; k++) {
            Py_ssize_t l = PyUnicode_GET_LENGTH(parts[k]);
            memcpy(w, PyUnicode_1BYTE_DATA(parts[k]), (size_t)l);
            w += l;
        }
        return out;
    }
    Py_ssize_t at = 0;
    for (int k = 0; k < n; k++) {
        Py_ssize_t l = PyUnicode_GET_LENGTH(parts[k]);
        if (l && PyUnicode_CopyCharacters(out, at, parts[k], 0, l) < 0) {
            Py_DECREF(out);
            return NULL;
        }
        at += l;
    }
    return out;
}

/* A whole number >= 0 read from a list item, or -1 with an error set. */
static Py_ssize_t
item_index(PyObject *list, Py_ssize_t k)
{
    if (!PyList_Check(list) || k < 0 || k >= PyList_GET_SIZE(list)) {
        PyErr_SetString(PyExc_IndexError, "a pick's table is too short");
        return -1;
    }
    return PyLong_AsSsize_t(PyList_GET_ITEM(list, k));
}

/* The pick of `hi` (31 bits) from (values, cum, guide, n): the list item's index. */
static Py_ssize_t
pick(PyObject *cum, PyObject *guide, Py_ssize_t n, uint64_t hi)
{
    if (guide == Py_None)
        return (Py_ssize_t)((hi * (uint64_t)n) >> 31);
    Py_ssize_t i = item_index(guide, (Py_ssize_t)(hi >> 19));
    if (i < 0)
        return -1;
    for (;;) {
        if (!PyList_Check(cum) || i >= PyList_GET_SIZE(cum)) {
            PyErr_SetString(PyExc_IndexError, "a pick ran past its bounds");
            return -1;
        }
        /* A bound of 31 bits, made by the locale data: the masked read is exact. */
        unsigned long long bound = PyLong_AsUnsignedLongLongMask(PyList_GET_ITEM(cum, i));
        if (bound == (unsigned long long)-1 && PyErr_Occurred())
            return -1;
        if ((uint64_t)bound > hi)
            return i;
        i++;
    }
}

static PyObject *
list_item(PyObject *list, Py_ssize_t k)
{
    if (!PyList_Check(list) || k < 0 || k >= PyList_GET_SIZE(list)) {
        PyErr_SetString(PyExc_IndexError, "a value's list is too short");
        return NULL;
    }
    return PyList_GET_ITEM(list, k); /* borrowed */
}

/* self.<fallback>(*args): the Python method does what this file does not. */
static PyObject *
fall_back(PyObject *self, PyObject *name, PyObject *const *args, Py_ssize_t nargs,
          PyObject *kwnames)
{
    PyObject *method = PyObject_GetAttr(self, name);
    if (method == NULL)
        return NULL;
    PyObject *out = PyObject_Vectorcall(method, args, nargs, kwnames);
    Py_DECREF(method);
    return out;
}

/* name(self, gender=None) */
static PyObject *
c_name(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError, "name() needs the Fake");
        return NULL;
    }
    PyObject *self = args[0];
    if (nargs > 1 || kwnames != NULL) {
        if (!(nargs == 2 && kwnames == NULL && args[1] == Py_None))
            return fall_back(self, s_name_py, args + 1, nargs - 1, kwnames);
    }
    PyObject *d = locale_of(self);
    if (d == NULL)
        return NULL;
    PyObject *out = NULL, *picks = NULL;
    picks = PyObject_GetAttr(d, s_name_tables);
    if (picks == NULL)
        goto done;
    if (!PyTuple_Check(picks) || PyTuple_GET_SIZE(picks) != 9) {
        PyErr_SetString(PyExc_TypeError, "name_tables is not the 9-tuple of the locale data");
        goto done;
    }
    PyObject *last_first = PyTuple_GET_ITEM(picks, 8);
    PyObject *fv = PyTuple_GET_ITEM(picks, 0), *fc = PyTuple_GET_ITEM(picks, 1),
             *fg = PyTuple_GET_ITEM(picks, 2), *lv = PyTuple_GET_ITEM(picks, 4),
             *lc = PyTuple_GET_ITEM(picks, 5), *lg = PyTuple_GET_ITEM(picks, 6);
    Py_ssize_t fn = PyLong_AsSsize_t(PyTuple_GET_ITEM(picks, 3));
    Py_ssize_t ln = PyLong_AsSsize_t(PyTuple_GET_ITEM(picks, 7));
    if ((fn < 0 || ln < 0) && PyErr_Occurred())
        goto done;
    uint64_t u;
    if (draw(self, &u) < 0)
        goto done;
    Py_ssize_t i = pick(fc, fg, fn, u >> 31);
    if (i < 0)
        goto done;
    Py_ssize_t j = pick(lc, lg, ln, u & MASK31);
    if (j < 0)
        goto done;
    PyObject *first = list_item(fv, i), *last = list_item(lv, j);
    if (first == NULL || last == NULL)
        goto done;
    int lf = PyObject_IsTrue(last_first);
    if (lf < 0)
        goto done;
    PyObject *parts[3] = {lf ? last : first, s_space, lf ? first : last};
    PyObject *text = concat(parts, 3);
    if (text == NULL)
        goto done;
    PyObject *named = Py_BuildValue("(Onn)", text, i, j);
    if (named == NULL || PyObject_SetAttr(self, s_named, named) < 0) {
        Py_XDECREF(named);
        Py_DECREF(text);
        goto done;
    }
    Py_DECREF(named);
    out = text;
done:
    Py_XDECREF(picks);
    Py_DECREF(d);
    return out;
}

/* email(self, name=None): the name just drawn by name(); anything else falls back. */
static PyObject *
c_email(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError, "email() needs the Fake");
        return NULL;
    }
    PyObject *self = args[0];
    if (nargs != 2 || kwnames != NULL)
        return fall_back(self, s_email_py, args + 1, nargs - 1, kwnames);
    PyObject *name = args[1];
    PyObject *named = PyObject_GetAttr(self, s_named);
    if (named == NULL)
        return NULL;
    if (!PyTuple_Check(named) || PyTuple_GET_SIZE(named) != 3 ||
        PyTuple_GET_ITEM(named, 0) != name) {
        Py_DECREF(named);
        return fall_back(self, s_email_py, args + 1, nargs - 1, kwnames);
    }
    Py_ssize_t i = PyLong_AsSsize_t(PyTuple_GET_ITEM(named, 1));
    Py_ssize_t j = PyLong_AsSsize_t(PyTuple_GET_ITEM(named, 2));
    Py_DECREF(named);
    if ((i < 0 || j < 0) && PyErr_Occurred())
        return NULL;
    PyObject *d = locale_of(self);
    if (d == NULL)
        return NULL;
    PyObject *out = NULL, *tables = NULL, *number = NULL, *initial = NULL;
    tables = PyObject_GetAttr(d, s_mail_tables);
    if (tables == NULL)
        goto done;
    if (!PyTuple_Check(tables) || PyTuple_GET_SIZE(tables) != 3) {
        PyErr_SetString(PyExc_TypeError, "mail_tables is not the 3-tuple of the locale data");
        goto done;
    }
    PyObject *firsts = PyTuple_GET_ITEM(tables, 0), *lasts = PyTuple_GET_ITEM(tables, 1),
             *domains = PyTuple_GET_ITEM(tables, 2);
    PyObject *first = list_item(firsts, i), *last = list_item(lasts, j);
    if (first == NULL || last == NULL)
        goto done;
    uint64_t u;
    if (draw(self, &u) < 0)
        goto done;
    if (!PyList_Check(domains) || PyList_GET_SIZE(domains) == 0) {
        PyErr_SetString(PyExc_ValueError, "the locale has no e-mail domains");
        goto done;
    }
    PyObject *domain =
        list_item(domains, (Py_ssize_t)(((u >> 31) * (uint64_t)PyList_GET_SIZE(domains)) >> 31));
    if (domain == NULL || !PyUnicode_Check(last) || !PyUnicode_Check(first))
        goto done;
    unsigned style = (unsigned)(u & 3);
    char buf[32];
    if (PyUnicode_GET_LENGTH(last) == 0) {
        int nlen = digits_of(buf, (unsigned long long)((u >> 8) % 100));
        number = PyUnicode_FromStringAndSize(buf, nlen);
        if (number == NULL)
            goto done;
        PyObject *parts[4] = {first, number, s_at, domain};
        out = concat(parts, 4);
    }
    else if (style == 0) {
        PyObject *parts[5] = {first, s_dot, last, s_at, domain};
        out = concat(parts, 5);
    }
    else if (style == 1) {
        int nlen = digits_of(buf, (unsigned long long)((u >> 8) % 100));
        number = PyUnicode_FromStringAndSize(buf, nlen);
        if (number == NULL)
            goto done;
        PyObject *parts[6] = {first, s_dot, last, number, s_at, domain};
        out = concat(parts, 6);
    }
    else if (style == 2) {
        initial = PyUnicode_Substring(first, 0, PyUnicode_GET_LENGTH(first) ? 1 : 0);
        if (initial == NULL)
            goto done;
        PyObject *parts[4] = {initial, last, s_at, domain};
        out = concat(parts, 4);
    }
    else {
        int nlen = digits_of(buf, (unsigned long long)((u >> 8) % 1000));
        number = PyUnicode_FromStringAndSize(buf, nlen);
        if (number == NULL)
            goto done;
        PyObject *parts[5] = {first, last, number, s_at, domain};
        out = concat(parts, 5);
    }
done:
    Py_XDECREF(tables);
    Py_XDECREF(number);
    Py_XDECREF(initial);
    Py_DECREF(d);
    return out;
}

/* street_address(self) */
static PyObject *
c_street_address(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs != 1 || kwnames != NULL) {
        if (nargs < 1) {
            PyErr_SetString(PyExc_TypeError, "street_address() needs the Fake");
            return NULL;
        }
        return fall_back(args[0], s_street_py, args + 1, nargs - 1, kwnames);
    }
    PyObject *self = args[0];
    PyObject *d = locale_of(self);
    if (d == NULL)
        return NULL;
    PyObject *out = NULL, *tables = NULL, *number = NULL;
    tables = PyObject_GetAttr(d, s_street_tables);
    if (tables == NULL)
        goto done;
    if (!PyTuple_Check(tables) || PyTuple_GET_SIZE(tables) != 4) {
        PyErr_SetString(PyExc_TypeError, "street_tables is not the 4-tuple of the locale data");
        goto done;
    }
    PyObject *streets = PyTuple_GET_ITEM(tables, 0), *buildings = PyTuple_GET_ITEM(tables, 1),
             *sep = PyTuple_GET_ITEM(tables, 2), *number_first = PyTuple_GET_ITEM(tables, 3);
    if (!PyList_Check(streets) || !PyList_Check(buildings) || PyList_GET_SIZE(streets) == 0 ||
        PyList_GET_SIZE(buildings) == 0) {
        PyErr_SetString(PyExc_ValueError, "the locale has no streets or building numbers");
        goto done;
    }
    uint64_t u;
    if (draw(self, &u) < 0)
        goto done;
    PyObject *street =
        list_item(streets, (Py_ssize_t)(((u >> 31) * (uint64_t)PyList_GET_SIZE(streets)) >> 31));
    if (street == NULL)
        goto done;
    uint64_t lo = u & MASK31;
    uint64_t nb = (uint64_t)PyList_GET_SIZE(buildings);
    PyObject *b = PyList_GET_ITEM(buildings, (Py_ssize_t)(lo % nb));
    if (!PyTuple_Check(b) || PyTuple_GET_SIZE(b) != 3) {
        PyErr_SetString(PyExc_TypeError, "a building format is not (fmt, low, span)");
        goto done;
    }
    PyObject *fmt = PyTuple_GET_ITEM(b, 0);
    long long low = PyLong_AsLongLong(PyTuple_GET_ITEM(b, 1));
    long long span = PyLong_AsLongLong(PyTuple_GET_ITEM(b, 2));
    if ((low == -1 || span == -1) && PyErr_Occurred())
        goto done;
    if (span <= 0) {
        number = PyObject_CallMethodOneArg(self, s_fill, fmt);
    }
    else {
        long long value = low + (long long)((lo / nb) % (uint64_t)span);
        if (fmt == Py_None) {
            char buf[32];
            if (value >= 0) {
                int nlen = digits_of(buf, (unsigned long long)value);
                number = PyUnicode_FromStringAndSize(buf, nlen);
            }
            else {
                snprintf(buf, sizeof buf, "%lld", value);
                number = PyUnicode_FromString(buf);
            }
        }
        else {
            PyObject *v = PyLong_FromLongLong(value);
            if (v == NULL)
                goto done;
            number = PyObject_CallMethodOneArg(fmt, s_format, v);
            Py_DECREF(v);
        }
    }
    if (number == NULL)
        goto done;
    int nf = PyObject_IsTrue(number_first);
    if (nf < 0)
        goto done;
    PyObject *parts[3] = {nf ? number : street, sep, nf ? street : number};
    out = concat(parts, 3);
done:
    Py_XDECREF(tables);
    Py_XDECREF(number);
    Py_DECREF(d);
    return out;
}

/* The phone number of a format's plan (bytes, see compile_phone): its ASCII literal parts,
 * and for each drawn part 0x80 (a slice of the digits `d`, `dlen` characters) or 0x81 (of
 * `e`) then the slice's start and end, written into one new ASCII string. NULL with no
 * error set when this does not apply (no plan, `e` not ASCII, a slice out of bounds): the
 * format's Python `fill` makes the number then. */
static PyObject *
phone_from_plan(PyObject *plan, const char *d, Py_ssize_t dlen, PyObject *e)
{
    if (!PyBytes_Check(plan) || !PyUnicode_Check(e) || !PyUnicode_IS_ASCII(e))
        return NULL;
    const unsigned char *code = (const unsigned char *)PyBytes_AS_STRING(plan);
    const char *edata = (const char *)PyUnicode_1BYTE_DATA(e);
    Py_ssize_t elen = PyUnicode_GET_LENGTH(e);
    Py_ssize_t n = PyBytes_GET_SIZE(plan), len = 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        if (code[k] < 0x80) {
            len++;
            continue;
        }
        if (k + 2 >= n || code[k] > 0x81)
            return NULL;
        Py_ssize_t start = code[k + 1], end = code[k + 2];
        if (end < start || end > (code[k] == 0x80 ? dlen : elen))
            return NULL;
        len += end - start;
        k += 2;
    }
    PyObject *out = PyUnicode_New(len, 127);
    if (out == NULL)
        return NULL;
    char *w = (char *)PyUnicode_1BYTE_DATA(out);
    for (Py_ssize_t k = 0; k < n; k++) {
        if (code[k] < 0x80) {
            *w++ = (char)code[k];
            continue;
        }
        Py_ssize_t start = code[k + 1], end = code[k + 2];
        memcpy(w, (code[k] == 0x80 ? d : edata) + start, (size_t)(end - start));
        w += end - start;
        k += 2;
    }
    return out;
}

/* phone_number(self) */
static PyObject *
c_phone_number(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs != 1 || kwnames != NULL) {
        if (nargs < 1) {
            PyErr_SetString(PyExc_TypeError, "phone_number() needs the Fake");
            return NULL;
        }
        return fall_back(args[0], s_phone_py, args + 1, nargs - 1, kwnames);
    }
    PyObject *self = args[0];
    PyObject *d = locale_of(self);
    if (d == NULL)
        return NULL;
    PyObject *out = NULL, *phones = NULL, *digits = NULL;
    phones = PyObject_GetAttr(d, s_phones);
    if (phones == NULL)
        goto done;
    if (!PyList_Check(phones) || PyList_GET_SIZE(phones) == 0) {
        PyErr_SetString(PyExc_ValueError, "the locale has no phone formats");
        goto done;
    }
    uint64_t n = (uint64_t)PyList_GET_SIZE(phones);
    uint64_t u;
    if (draw(self, &u) < 0)
        goto done;
    PyObject *f = PyList_GET_ITEM(phones, (Py_ssize_t)(u % n));
    if (!PyTuple_Check(f) || PyTuple_GET_SIZE(f) != 5) {
        PyErr_SetString(PyExc_TypeError, "a phone format is not (fill, p, table, q, plan)");
        goto done;
    }
    PyObject *fill = PyTuple_GET_ITEM(f, 0), *table = PyTuple_GET_ITEM(f, 2);
    unsigned long long p = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(f, 1));
    if (p == (unsigned long long)-1 && PyErr_Occurred()) {
        /* 10**k beyond 64 bits: as in Python, a new draw (below p) gives the digits and the
         * first of the table the other places. */
        PyErr_Clear();
        if (!PyTuple_Check(table) || PyTuple_GET_SIZE(table) < 1) {
            PyErr_SetString(PyExc_TypeError, "a phone format's table is empty");
            goto done;
        }
        if (draw(self, &u) < 0)
            goto done;
        PyObject *x = PyLong_FromUnsignedLongLong(u);
        if (x == NULL)
            goto done;
        PyObject *sum = PyNumber_Add(PyTuple_GET_ITEM(f, 1), x);
        Py_DECREF(x);
        if (sum == NULL)
            goto done;
        digits = PyObject_Str(sum);
        Py_DECREF(sum);
        if (digits == NULL)
            goto done;
        PyObject *long_args[2] = {digits, PyTuple_GET_ITEM(table, 0)};
        out = PyObject_Vectorcall(fill, long_args, 2, NULL);
        goto done;
    }
    unsigned long long q = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(f, 3));
    if (q == (unsigned long long)-1 && PyErr_Occurred())
        goto done;
    u /= n;
    if ((unsigned __int128)p * q * n > (unsigned __int128)MAX62) {
        if (draw(self, &u) < 0)
            goto done;
    }
    char buf[32];
    int dlen = digits_of(buf, (unsigned long long)(p + u % p));
    if (!PyTuple_Check(table) || (uint64_t)PyTuple_GET_SIZE(table) != (uint64_t)q) {
        PyErr_SetString(PyExc_TypeError, "a phone format's table does not match its size");
        goto done;
    }
    PyObject *e = PyTuple_GET_ITEM(table, (Py_ssize_t)((u / p) % q));
    out = phone_from_plan(PyTuple_GET_ITEM(f, 4), buf, dlen, e);
    if (out != NULL || PyErr_Occurred())
        goto done;
    digits = PyUnicode_FromStringAndSize(buf, dlen);
    if (digits == NULL)
        goto done;
    PyObject *call_args[2] = {digits, e};
    out = PyObject_Vectorcall(fill, call_args, 2, NULL);
done:
    Py_XDECREF(phones);
    Py_XDECREF(digits);
    Py_DECREF(d);
    return out;
}

/* method(func): `func` as a method of a class (bound to the instance it is read from). */
static PyObject *
c_method(PyObject *module, PyObject *func)
{
    return PyInstanceMethod_New(func);
}

static PyMethodDef methods[] = {
    {"name", (PyCFunction)(void (*)(void))c_name, METH_FASTCALL | METH_KEYWORDS,
     "A full name: one draw, its halves picking the first and the last name."},
    {"email", (PyCFunction)(void (*)(void))c_email, METH_FASTCALL | METH_KEYWORDS,
     "An e-mail address at a free mail domain of the locale, from ``name`` when given."},
    {"street_address", (PyCFunction)(void (*)(void))c_street_address,
     METH_FASTCALL | METH_KEYWORDS, "A building number and a street, in the locale's order."},
    {"phone_number", (PyCFunction)(void (*)(void))c_phone_number, METH_FASTCALL | METH_KEYWORDS,
     "A phone number in one of the locale's formats, each format as likely."},
    {"method", c_method, METH_O, "``func`` as a method of a class."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_cvalues",
    "The commonest values of doge_datagen.values in C (same draws, same text).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__cvalues(void)
{
    struct {
        PyObject **slot;
        const char *text;
    } names[] = {
        {&s_loc, "_loc"},
        {&s_load, "_load"},
        {&s_r, "_r"},
        {&s_named, "_named"},
        {&s_name_tables, "name_tables"},
        {&s_mail_tables, "mail_tables"},
        {&s_street_tables, "street_tables"},
        {&s_phones, "phones"},
        {&s_fill, "_fill"},
        {&s_format, "format"},
        {&s_name_py, "_name_py"},
        {&s_email_py, "_email_py"},
        {&s_street_py, "_street_address_py"},
        {&s_phone_py, "_phone_number_py"},
        {&s_space, " "},
        {&s_dot, "."},
        {&s_at, "@"},
    };
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        *names[k].slot = PyUnicode_InternFromString(names[k].text);
        if (*names[k].slot == NULL)
            return NULL;
    }
    return PyModule_Create(&module_def);
}
