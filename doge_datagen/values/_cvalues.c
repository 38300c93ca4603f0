/* The four values a subject factory makes most (name, e-mail address, street address, phone
 * number), in C: the same draws, in the same order, and the same text as the Python methods
 * of doge_datagen/values/_fake.py, which stay as the fallback (DOGE_DATAGEN_PURE_PYTHON=1, a
 * build without a compiler) and handle every case this file hands back to them (a gender, a
 * name that is not the one just drawn, locale data of another shape than the package's).
 *
 * A Python method costs more in calls, attribute reads and small objects than in the work
 * itself, and so did this file's first version, which read each value's tables and the draw
 * through attribute lookups and a call of functools.partial at every value. Now:
 *
 * - each value is a method descriptor of Fake (method()), called without a bound method;
 * - a Fake's own attributes (_r, _loc, _named, _ctables) are read and written at their slots'
 *   offsets, found once per class (fake_slots());
 * - a locale's tables are read once into a Tables object (the weights as C arrays), kept in
 *   the Fake's _ctables slot beside the LocaleData they were read from;
 * - the draw: a Fake's _r is a Draw, the C twin of functools.partial(rng.randint, 0, 2**62 - 1),
 *   and when rng.randint is the engine's C randint (doge_datagen/engine/_speedups.c, reached
 *   through its capsule _bound_randint) the stream moves on without a call or an int object
 *   for the drawn number. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if PY_VERSION_HEX < 0x030A0000
static inline PyObject *
compat_new_ref(PyObject *o)
{
    Py_INCREF(o);
    return o;
}
#define Py_NewRef(o) compat_new_ref((PyObject *)(o))
#endif

#define MASK31 ((uint64_t)0x7FFFFFFF)
#define MAX62 ((((uint64_t)1) << 62) - 1)

static PyObject *s_loc, *s_load, *s_r, *s_named, *s_ctables, *s_name_tables, *s_mail_tables,
    *s_street_tables, *s_phones, *s_fill, *s_format, *s_name_py, *s_email_py, *s_street_py,
    *s_phone_py, *s_space, *s_dot, *s_at, *s_zero;

/* The engine's randint in C (see bound_randint in _speedups.c): 1 and randint(a, b) - a in
 * *out when `method` is that randint bound to a keyed generator, 0 when it is not, -1 on an
 * error. NULL without the engine's extension: every draw is then a call. */
typedef int (*bound_randint_fn)(PyObject *method, long long a, long long b, uint64_t *out);
static bound_randint_fn bound_randint;

/* -- the Fake's slots ------------------------------------------------------------------------ */

enum { F_R, F_LOC, F_NAMED, F_TABLES, N_FAKE };
static PyObject **const fake_names[N_FAKE] = {&s_r, &s_loc, &s_named, &s_ctables};

/* The offsets of the slots for the last class seen, kept while the class is unchanged (its
 * version tag changes with any assignment to it or its bases). */
static PyTypeObject *fake_type;
static unsigned int fake_version;
static int fake_plain;
static Py_ssize_t fake_at[N_FAKE];

/* The offsets of the Fake's slots in an object of `type`: a pointer to them when reading and
 * writing a slot is all that getattr and setattr would do (the default __getattribute__ and
 * __setattr__, each name a writable object slot), else NULL (attribute lookups then). */
static const Py_ssize_t *
fake_slots(PyTypeObject *type)
{
#ifdef Py_TPFLAGS_VALID_VERSION_TAG
    if (type == fake_type && fake_version != 0 &&
        PyType_HasFeature(type, Py_TPFLAGS_VALID_VERSION_TAG) && type->tp_version_tag == fake_version)
        return fake_plain ? fake_at : NULL;
#endif
    int plain = type->tp_getattro == PyObject_GenericGetAttr &&
                type->tp_setattro == PyObject_GenericSetAttr;
    for (int n = 0; plain && n < N_FAKE; n++) {
        PyObject *attr = _PyType_Lookup(type, *fake_names[n]);
        if (attr == NULL || Py_TYPE(attr) != &PyMemberDescr_Type) {
            plain = 0;
            break;
        }
        PyMemberDef *member = ((PyMemberDescrObject *)attr)->d_member;
        if (member->type != T_OBJECT_EX || (member->flags & READONLY))
            plain = 0;
        else
            fake_at[n] = member->offset;
    }
    fake_plain = plain;
    Py_INCREF(type);
    Py_XSETREF(fake_type, type);
#ifdef Py_TPFLAGS_VALID_VERSION_TAG
    fake_version =
        PyType_HasFeature(type, Py_TPFLAGS_VALID_VERSION_TAG) ? type->tp_version_tag : 0;
#else
    fake_version = 0;
#endif
    return plain ? fake_at : NULL;
}

/* The object in the slot at `offset` of `obj` (borrowed; NULL when the slot is empty). */
static inline PyObject *
slot_get(PyObject *obj, Py_ssize_t offset)
{
    return *(PyObject **)((char *)obj + offset);
}

/* Stores `value` (a new reference, stolen) in the slot at `offset` of `obj`. */
static inline void
slot_put(PyObject *obj, Py_ssize_t offset, PyObject *value)
{
    PyObject **slot = (PyObject **)((char *)obj + offset);
    PyObject *old = *slot;
    *slot = value;
    Py_XDECREF(old);
}

/* self.<name> (a new reference): from its slot when `at` has it, else through getattr. */
static PyObject *
fake_get(PyObject *self, const Py_ssize_t *at, int which)
{
    if (at != NULL) {
        PyObject *v = slot_get(self, at[which]);
        if (v != NULL) {
            Py_INCREF(v);
            return v;
        }
    }
    return PyObject_GetAttr(self, *fake_names[which]);
}

/* self.<name> = value (`value` a new reference, stolen); 0, or -1 with an error set. */
static int
fake_put(PyObject *self, const Py_ssize_t *at, int which, PyObject *value)
{
    if (at != NULL) {
        slot_put(self, at[which], value);
        return 0;
    }
    int failed = PyObject_SetAttr(self, *fake_names[which], value);
    Py_DECREF(value);
    return failed;
}

/* -- the draw -------------------------------------------------------------------------------- */

/* Draw(method, low, high): method(low, high) when called, as functools.partial(method, low,
 * high) is; what Fake keeps as _r (method being the generator's randint). */
typedef struct {
    PyObject_HEAD
    PyObject *method;
    PyObject *low, *high;
    long long a, b; /* low and high, when both are ints that fit (`fits`) */
    int fits;
    vectorcallfunc vectorcall;
} DrawObject;

static PyTypeObject DrawType;

/* The draw `d` makes, into *u (modulo 2**64, as the masked read of its int): 0, or -1 with an
 * error set. */
static int
draw_value(DrawObject *d, uint64_t *u)
{
    if (d->method == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "a draw that was cleared");
        return -1;
    }
    if (d->fits && bound_randint != NULL) {
        uint64_t r;
        int done = bound_randint(d->method, d->a, d->b, &r);
        if (done < 0)
            return -1;
        if (done) {
            *u = (uint64_t)d->a + r;
            return 0;
        }
    }
    PyObject *args[2] = {d->low, d->high};
    PyObject *v = PyObject_Vectorcall(d->method, args, 2, NULL);
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

static PyObject *
draw_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    DrawObject *d = (DrawObject *)self;
    if (PyVectorcall_NARGS(nargsf) != 0 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0)) {
        PyErr_SetString(PyExc_TypeError, "a draw takes no arguments");
        return NULL;
    }
    if (d->method == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "a draw that was cleared");
        return NULL;
    }
    if (d->fits && bound_randint != NULL) {
        uint64_t r;
        int done = bound_randint(d->method, d->a, d->b, &r);
        if (done < 0)
            return NULL;
        if (done)
            return PyLong_FromLongLong((long long)((uint64_t)d->a + r));
    }
    PyObject *call_args[2] = {d->low, d->high};
    return PyObject_Vectorcall(d->method, call_args, 2, NULL);
}

static PyObject *
draw_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *method, *low, *high;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0) {
        PyErr_SetString(PyExc_TypeError, "Draw(method, low, high) takes no keywords");
        return NULL;
    }
    if (!PyArg_UnpackTuple(args, "Draw", 3, 3, &method, &low, &high))
        return NULL;
    if (!PyCallable_Check(method)) {
        PyErr_SetString(PyExc_TypeError, "Draw(method, low, high): method is not callable");
        return NULL;
    }
    DrawObject *d = (DrawObject *)type->tp_alloc(type, 0);
    if (d == NULL)
        return NULL;
    Py_INCREF(method);
    Py_INCREF(low);
    Py_INCREF(high);
    d->method = method;
    d->low = low;
    d->high = high;
    d->fits = 0;
    if (PyLong_CheckExact(low) && PyLong_CheckExact(high)) {
        int over_a = 0, over_b = 0;
        d->a = PyLong_AsLongLongAndOverflow(low, &over_a);
        d->b = PyLong_AsLongLongAndOverflow(high, &over_b);
        if ((d->a == -1 || d->b == -1) && PyErr_Occurred()) {
            Py_DECREF(d);
            return NULL;
        }
        d->fits = !over_a && !over_b;
    }
    d->vectorcall = draw_vectorcall;
    return (PyObject *)d;
}

static int
draw_traverse(DrawObject *d, visitproc visit, void *arg)
{
    Py_VISIT(d->method);
    Py_VISIT(d->low);
    Py_VISIT(d->high);
    return 0;
}

static int
draw_clear(DrawObject *d)
{
    Py_CLEAR(d->method);
    Py_CLEAR(d->low);
    Py_CLEAR(d->high);
    d->fits = 0;
    return 0;
}

static void
draw_dealloc(DrawObject *d)
{
    PyObject_GC_UnTrack(d);
    draw_clear(d);
    Py_TYPE(d)->tp_free((PyObject *)d);
}

static PyObject *
draw_repr(DrawObject *d)
{
    if (d->method == NULL)
        return PyUnicode_FromString("Draw()");
    return PyUnicode_FromFormat("Draw(%R, %R, %R)", d->method, d->low, d->high);
}

static PyTypeObject DrawType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "doge_datagen.values._cvalues.Draw",
    .tp_basicsize = sizeof(DrawObject),
    .tp_dealloc = (destructor)draw_dealloc,
    .tp_vectorcall_offset = offsetof(DrawObject, vectorcall),
    .tp_repr = (reprfunc)draw_repr,
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "Draw(method, low, high): method(low, high) at each call, as "
              "functools.partial(method, low, high); with the engine's C randint as method, "
              "the values of this module draw from it without a call.",
    .tp_traverse = (traverseproc)draw_traverse,
    .tp_clear = (inquiry)draw_clear,
    .tp_new = draw_new,
};

/* One draw of self._r() (62 bits) into *u; -1 on error. */
static int
draw(PyObject *self, const Py_ssize_t *at, uint64_t *u)
{
    PyObject *r = fake_get(self, at, F_R);
    if (r == NULL)
        return -1;
    int failed;
    if (Py_TYPE(r) == &DrawType) {
        failed = draw_value((DrawObject *)r, u);
    }
    else {
        PyObject *v = PyObject_CallNoArgs(r);
        failed = v == NULL ? -1 : 0;
        if (v != NULL) {
            unsigned long long x = PyLong_AsUnsignedLongLongMask(v);
            Py_DECREF(v);
            if (x == (unsigned long long)-1 && PyErr_Occurred())
                failed = -1;
            *u = (uint64_t)x;
        }
    }
    Py_DECREF(r);
    return failed;
}

/* -- a locale's tables, read once ------------------------------------------------------------ */

/* A pick from a list with a 31-bit `u` (_locale.Pick): item u * n >> 31 when the items are
 * equally likely (cum NULL), else the first whose bound in cum exceeds u, searched from
 * guide[u >> 19]. */
typedef struct {
    PyObject *values;  /* list */
    PyObject *indices; /* a tuple of the ints 0, 1, ... len(values) - 1 (what _named holds) */
    uint32_t *cum;   /* the bounds, and after them one that stops every search (UINT32_MAX) */
    uint32_t *guide; /* indices into cum */
    Py_ssize_t ncum, nguide;
    uint64_t n;
} CPick;

typedef struct {
    PyObject *fmt; /* None (the number as it is), a str.format string, or a template */
    long long low, span;
} Building;

typedef struct {
    PyObject *fill, *table, *plan, *p_obj;
    uint64_t p, q; /* p: 0 when above 2**62 - 1 (the drawn number then is p_obj + a new draw) */
    int redraw;    /* p * q * (number of formats) > 2**62 - 1: the digits take a draw of their own */
} Phone;

/* What the C values read of a LocaleData, taken from the tuples it keeps for them (name_tables,
 * mail_tables, street_tables, phones). A kind whose data is not of the package's shape is not
 * taken (has_* 0) and its value is made by the Python method. */
typedef struct {
    PyObject_HEAD
    PyObject *loc; /* the LocaleData */
    int has_name, has_mail, has_street, has_phone;
    CPick first, last;
    int last_first;
    PyObject *first_mail, *last_mail, *domains; /* lists */
    PyObject *streets;                          /* list */
    Building *buildings;
    Py_ssize_t nbuildings;
    PyObject *street_sep;
    int number_first;
    Phone *phones;
    Py_ssize_t nphones;
} TablesObject;

static PyTypeObject TablesType;

/* A whole number of at most 64 bits from `v` into *out: 1, or 0 (with no error set) when it is
 * not one (another type, negative, too large). */
static int
u64_of(PyObject *v, uint64_t *out)
{
    if (!PyLong_CheckExact(v))
        return 0;
    unsigned long long x = PyLong_AsUnsignedLongLong(v);
    if (x == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    *out = (uint64_t)x;
    return 1;
}

/* A pick from (values, cum, guide, n): 1, or 0 when they are not of Pick's shape (no error
 * set), -1 on a memory error. */
static int
pick_read(CPick *p, PyObject *values, PyObject *cum, PyObject *guide, PyObject *n)
{
    if (!PyList_Check(values) || !u64_of(n, &p->n) || p->n >= ((uint64_t)1 << 32))
        return 0;
    Py_INCREF(values);
    p->values = values;
    Py_ssize_t count = PyList_GET_SIZE(values);
    p->indices = PyTuple_New(count);
    if (p->indices == NULL)
        return -1;
    for (Py_ssize_t k = 0; k < count; k++) {
        PyObject *index = PyLong_FromSsize_t(k);
        if (index == NULL)
            return -1;
        PyTuple_SET_ITEM(p->indices, k, index);
    }
    if (guide == Py_None)
        return 1; /* equally likely: cum is not read (Fake.name reads it only with a guide) */
    if (!PyList_Check(cum) || !PyList_Check(guide))
        return 0;
    p->ncum = PyList_GET_SIZE(cum);
    p->nguide = PyList_GET_SIZE(guide);
    if (p->ncum >= (Py_ssize_t)UINT32_MAX || p->nguide != (Py_ssize_t)1 << (31 - 19))
        return 0;
    p->cum = PyMem_Malloc(sizeof(uint32_t) * (size_t)(p->ncum + 1));
    p->guide = PyMem_Malloc(sizeof(uint32_t) * (size_t)(p->nguide ? p->nguide : 1));
    if (p->cum == NULL || p->guide == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t k = 0; k < p->ncum; k++) {
        uint64_t bound;
        if (!u64_of(PyList_GET_ITEM(cum, k), &bound))
            return 0;
        /* Compared with 31 bits: a bound from 2**31 on is above every one of them, as is
         * UINT32_MAX. */
        p->cum[k] = bound > UINT32_MAX ? UINT32_MAX : (uint32_t)bound;
    }
    p->cum[p->ncum] = UINT32_MAX;
    for (Py_ssize_t k = 0; k < p->nguide; k++) {
        uint64_t g;
        /* A guide entry is an index into cum (Python would read a negative one from the end). */
        if (!u64_of(PyList_GET_ITEM(guide, k), &g) || g >= (uint64_t)p->ncum)
            return 0;
        p->guide[k] = (uint32_t)g;
    }
    return 1;
}

static void
pick_free(CPick *p)
{
    Py_CLEAR(p->values);
    Py_CLEAR(p->indices);
    PyMem_Free(p->cum);
    PyMem_Free(p->guide);
    p->cum = NULL;
    p->guide = NULL;
}

/* The index picked by the 31-bit `u`, or -1 with an error set (as Python's IndexError). */
static Py_ssize_t
pick_index(const CPick *p, uint64_t u)
{
    if (p->cum == NULL) {
        /* u has 31 bits from a draw of 62; wider (another kind of _r), the index is past the
         * list, as in Python. */
        unsigned __int128 k = ((unsigned __int128)u * p->n) >> 31;
        return k > (unsigned __int128)PY_SSIZE_T_MAX ? PY_SSIZE_T_MAX : (Py_ssize_t)k;
    }
    /* The guide has a slot for each u below 2**31 (GUIDE_SHIFT 19): past it, IndexError as in
     * Python, and below it the search stays within cum and its stop. */
    Py_ssize_t slot = (Py_ssize_t)(u >> 19);
    if (slot >= p->nguide) {
        PyErr_SetString(PyExc_IndexError, "a pick's guide is too short");
        return -1;
    }
    Py_ssize_t i = p->guide[slot];
    while (p->cum[i] <= u) /* u < 2**31: the stop after the bounds ends the search */
        i++;
    if (i >= p->ncum) {
        PyErr_SetString(PyExc_IndexError, "a pick ran past its bounds");
        return -1;
    }
    return i;
}

/* The int `i` (a new reference), from the pick's tuple of indices. */
static PyObject *
index_object(const CPick *p, Py_ssize_t i)
{
    if (p->indices != NULL && i >= 0 && i < PyTuple_GET_SIZE(p->indices)) {
        PyObject *v = PyTuple_GET_ITEM(p->indices, i);
        Py_INCREF(v);
        return v;
    }
    return PyLong_FromSsize_t(i);
}

/* Item `k` of `list` (borrowed), or NULL with an IndexError. */
static PyObject *
list_item(PyObject *list, Py_ssize_t k)
{
    if (k < 0 || k >= PyList_GET_SIZE(list)) {
        PyErr_SetString(PyExc_IndexError, "a value's list is too short");
        return NULL;
    }
    return PyList_GET_ITEM(list, k);
}

/* A list of strings only: each item's text is copied as is into a value. */
static int
all_strings(PyObject *list)
{
    if (!PyList_Check(list))
        return 0;
    for (Py_ssize_t k = 0; k < PyList_GET_SIZE(list); k++)
        if (!PyUnicode_Check(PyList_GET_ITEM(list, k)))
            return 0;
    return 1;
}

/* has_name, from loc.name_tables: (first values, cum, guide, n, last values, cum, guide, n,
 * last_first). */
static int
read_name(TablesObject *t, PyObject *picks)
{
    if (!PyTuple_Check(picks) || PyTuple_GET_SIZE(picks) != 9)
        return 0;
    PyObject *const *f = &PyTuple_GET_ITEM(picks, 0);
    int done = pick_read(&t->first, f[0], f[1], f[2], f[3]);
    if (done == 1)
        done = pick_read(&t->last, f[4], f[5], f[6], f[7]);
    if (done != 1)
        return done;
    if (!all_strings(t->first.values) || !all_strings(t->last.values))
        return 0;
    int lf = PyObject_IsTrue(f[8]);
    if (lf < 0)
        return -1;
    t->last_first = lf;
    return 1;
}

/* has_mail, from loc.mail_tables: (first names' e-mail forms, last names', domains). */
static int
read_mail(TablesObject *t, PyObject *tables)
{
    if (!PyTuple_Check(tables) || PyTuple_GET_SIZE(tables) != 3)
        return 0;
    for (int k = 0; k < 3; k++)
        if (!all_strings(PyTuple_GET_ITEM(tables, k)))
            return 0;
    t->first_mail = Py_NewRef(PyTuple_GET_ITEM(tables, 0));
    t->last_mail = Py_NewRef(PyTuple_GET_ITEM(tables, 1));
    t->domains = Py_NewRef(PyTuple_GET_ITEM(tables, 2));
    return 1;
}

/* has_street, from loc.street_tables: (streets, buildings as (fmt, low, span), separator,
 * number first). */
static int
read_street(TablesObject *t, PyObject *tables)
{
    if (!PyTuple_Check(tables) || PyTuple_GET_SIZE(tables) != 4)
        return 0;
    PyObject *streets = PyTuple_GET_ITEM(tables, 0), *buildings = PyTuple_GET_ITEM(tables, 1),
             *sep = PyTuple_GET_ITEM(tables, 2);
    if (!all_strings(streets) || !PyList_Check(buildings) || !PyUnicode_Check(sep) ||
        PyList_GET_SIZE(buildings) == 0)
        return 0;
    Py_ssize_t nb = PyList_GET_SIZE(buildings);
    t->buildings = PyMem_Calloc((size_t)nb, sizeof(Building));
    if (t->buildings == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    t->nbuildings = nb;
    for (Py_ssize_t k = 0; k < nb; k++) {
        PyObject *b = PyList_GET_ITEM(buildings, k);
        if (!PyTuple_Check(b) || PyTuple_GET_SIZE(b) != 3)
            return 0;
        PyObject *fmt = PyTuple_GET_ITEM(b, 0), *low = PyTuple_GET_ITEM(b, 1),
                 *span = PyTuple_GET_ITEM(b, 2);
        if (!PyLong_CheckExact(low) || !PyLong_CheckExact(span))
            return 0;
        int over_low = 0, over_span = 0;
        t->buildings[k].low = PyLong_AsLongLongAndOverflow(low, &over_low);
        t->buildings[k].span = PyLong_AsLongLongAndOverflow(span, &over_span);
        if (PyErr_Occurred())
            return -1;
        /* A span: a number low + x % span (x < 2**31), which a long long holds. */
        if (over_low || over_span || t->buildings[k].span < 0 || t->buildings[k].low < -(1LL << 40) ||
            t->buildings[k].low > (1LL << 40) || t->buildings[k].span > (1LL << 40))
            return 0;
        if (t->buildings[k].span > 0 && fmt != Py_None && !PyUnicode_Check(fmt))
            return 0;
        t->buildings[k].fmt = Py_NewRef(fmt);
    }
    int nf = PyObject_IsTrue(PyTuple_GET_ITEM(tables, 3));
    if (nf < 0)
        return -1;
    t->streets = Py_NewRef(streets);
    t->street_sep = Py_NewRef(sep);
    t->number_first = nf;
    return 1;
}

/* has_phone, from loc.phones: (fill, p, table, q, plan) per format. */
static int
read_phone(TablesObject *t, PyObject *phones)
{
    if (!PyList_Check(phones) || PyList_GET_SIZE(phones) == 0)
        return 0;
    Py_ssize_t n = PyList_GET_SIZE(phones);
    t->phones = PyMem_Calloc((size_t)n, sizeof(Phone));
    if (t->phones == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    t->nphones = n;
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *f = PyList_GET_ITEM(phones, k);
        if (!PyTuple_Check(f) || PyTuple_GET_SIZE(f) != 5)
            return 0;
        Phone *ph = &t->phones[k];
        PyObject *table = PyTuple_GET_ITEM(f, 2), *plan = PyTuple_GET_ITEM(f, 4);
        uint64_t p, q;
        if (!PyTuple_Check(table) || !u64_of(PyTuple_GET_ITEM(f, 3), &q) || q == 0 ||
            (uint64_t)PyTuple_GET_SIZE(table) != q || (plan != Py_None && !PyBytes_Check(plan)))
            return 0;
        PyObject *p_obj = PyTuple_GET_ITEM(f, 1);
        if (!PyLong_CheckExact(p_obj))
            return 0;
        int positive = PyObject_RichCompareBool(p_obj, s_zero, Py_GT);
        if (positive < 0)
            return -1;
        if (!positive)
            return 0;
        if (!u64_of(p_obj, &p) || p > MAX62) {
            /* 10**k beyond 62 bits: Python draws again (p * q * n > 2**62 - 1), the number
             * is p + that draw (below p), and the table's first item fills the other places. */
            p = 0;
        }
        ph->fill = Py_NewRef(PyTuple_GET_ITEM(f, 0));
        ph->table = Py_NewRef(table);
        ph->plan = Py_NewRef(plan);
        ph->p_obj = Py_NewRef(p_obj);
        ph->p = p;
        ph->q = q;
        ph->redraw = p == 0 || (unsigned __int128)p * q * (uint64_t)n > (unsigned __int128)MAX62;
    }
    return 1;
}

static int
tables_clear(TablesObject *t)
{
    Py_CLEAR(t->loc);
    pick_free(&t->first);
    pick_free(&t->last);
    Py_CLEAR(t->first_mail);
    Py_CLEAR(t->last_mail);
    Py_CLEAR(t->domains);
    Py_CLEAR(t->streets);
    Py_CLEAR(t->street_sep);
    for (Py_ssize_t k = 0; k < t->nbuildings; k++)
        Py_CLEAR(t->buildings[k].fmt);
    PyMem_Free(t->buildings);
    t->buildings = NULL;
    t->nbuildings = 0;
    for (Py_ssize_t k = 0; k < t->nphones; k++) {
        Py_CLEAR(t->phones[k].fill);
        Py_CLEAR(t->phones[k].table);
        Py_CLEAR(t->phones[k].plan);
        Py_CLEAR(t->phones[k].p_obj);
    }
    PyMem_Free(t->phones);
    t->phones = NULL;
    t->nphones = 0;
    t->has_name = t->has_mail = t->has_street = t->has_phone = 0;
    return 0;
}

static int
tables_traverse(TablesObject *t, visitproc visit, void *arg)
{
    Py_VISIT(t->loc);
    Py_VISIT(t->first.values);
    Py_VISIT(t->last.values);
    Py_VISIT(t->first.indices);
    Py_VISIT(t->last.indices);
    Py_VISIT(t->first_mail);
    Py_VISIT(t->last_mail);
    Py_VISIT(t->domains);
    Py_VISIT(t->streets);
    Py_VISIT(t->street_sep);
    for (Py_ssize_t k = 0; k < t->nbuildings; k++)
        Py_VISIT(t->buildings[k].fmt);
    for (Py_ssize_t k = 0; k < t->nphones; k++) {
        Py_VISIT(t->phones[k].fill);
        Py_VISIT(t->phones[k].table);
        Py_VISIT(t->phones[k].plan);
        Py_VISIT(t->phones[k].p_obj);
    }
    return 0;
}

static void
tables_dealloc(TablesObject *t)
{
    PyObject_GC_UnTrack(t);
    tables_clear(t);
    Py_TYPE(t)->tp_free((PyObject *)t);
}

static PyTypeObject TablesType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "doge_datagen.values._cvalues.Tables",
    .tp_basicsize = sizeof(TablesObject),
    .tp_dealloc = (destructor)tables_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "A locale's tables, as the C values read them.",
    .tp_traverse = (traverseproc)tables_traverse,
    .tp_clear = (inquiry)tables_clear,
};

/* One kind of tables: `read` on loc.<name>, its flag set when it applies. -1 on an error
 * other than the attribute's absence or the data's shape. */
static int
read_kind(TablesObject *t, PyObject *name, int (*read)(TablesObject *, PyObject *), int *flag)
{
    PyObject *v = PyObject_GetAttr(t->loc, name);
    if (v == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError))
            return -1;
        PyErr_Clear();
        return 0;
    }
    int done = read(t, v);
    Py_DECREF(v);
    if (done < 0)
        return -1;
    *flag = done;
    return 0;
}

/* The tables of LocaleData `loc` (a new reference). */
static TablesObject *
tables_new(PyObject *loc)
{
    TablesObject *t = PyObject_GC_New(TablesObject, &TablesType);
    if (t == NULL)
        return NULL;
    memset((char *)t + sizeof(PyObject), 0, sizeof(TablesObject) - sizeof(PyObject));
    t->loc = Py_NewRef(loc);
    PyObject_GC_Track(t);
    if (read_kind(t, s_name_tables, read_name, &t->has_name) < 0 ||
        read_kind(t, s_mail_tables, read_mail, &t->has_mail) < 0 ||
        read_kind(t, s_street_tables, read_street, &t->has_street) < 0 ||
        read_kind(t, s_phones, read_phone, &t->has_phone) < 0) {
        Py_DECREF(t);
        return NULL;
    }
    return t;
}

/* The locale's data (a new reference): self._loc, or self._load() the first time. */
static PyObject *
locale_of(PyObject *self, const Py_ssize_t *at)
{
    PyObject *d = fake_get(self, at, F_LOC);
    if (d == NULL)
        return NULL;
    if (d == Py_None) {
        Py_DECREF(d);
        d = PyObject_CallMethodNoArgs(self, s_load);
    }
    return d;
}

/* The Fake's tables (a new reference): self._ctables while they were read from self._loc,
 * else read now (self._load() the first time) and kept there. */
static TablesObject *
tables_of(PyObject *self, const Py_ssize_t *at)
{
    if (at != NULL) {
        PyObject *loc = slot_get(self, at[F_LOC]);
        PyObject *t = slot_get(self, at[F_TABLES]);
        if (loc != NULL && t != NULL && Py_TYPE(t) == &TablesType &&
            ((TablesObject *)t)->loc == loc) {
            Py_INCREF(t);
            return (TablesObject *)t;
        }
    }
    PyObject *loc = locale_of(self, at);
    if (loc == NULL)
        return NULL;
    PyObject *kept = fake_get(self, at, F_TABLES);
    if (kept == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
            Py_DECREF(loc);
            return NULL;
        }
        PyErr_Clear();
    }
    else if (Py_TYPE(kept) == &TablesType && ((TablesObject *)kept)->loc == loc) {
        Py_DECREF(loc);
        return (TablesObject *)kept;
    }
    Py_XDECREF(kept);
    TablesObject *t = tables_new(loc);
    Py_DECREF(loc);
    if (t == NULL)
        return NULL;
    Py_INCREF(t);
    if (fake_put(self, at, F_TABLES, (PyObject *)t) < 0) {
        Py_DECREF(t);
        Py_DECREF(t);
        return NULL;
    }
    return t;
}

/* -- the values ------------------------------------------------------------------------------ */

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

/* A part of a value's text: the first `len` characters of the string `s` (all of it when `len` is
 * -1), or, with `s` NULL, the `len` ASCII characters at `raw` (digits written on the stack, not
 * made into a string of their own). */
typedef struct {
    PyObject *s;
    const char *raw;
    Py_ssize_t len;
} Part;

#define STR(o) ((Part){(o), NULL, -1})
#define PREFIX(o, n) ((Part){(o), NULL, (n)})
#define RAW(p, n) ((Part){NULL, (p), (n)})

/* A new string of the `n` parts one after the other. */
static PyObject *
concat(Part *parts, int n)
{
    Py_ssize_t len = 0;
    Py_UCS4 maxchar = 127;
    for (int k = 0; k < n; k++) {
        if (parts[k].s == NULL) {
            len += parts[k].len;
            continue;
        }
        if (!PyUnicode_Check(parts[k].s)) {
            PyErr_SetString(PyExc_TypeError, "a value's part is not a string");
            return NULL;
        }
        Py_ssize_t l = PyUnicode_GET_LENGTH(parts[k].s);
        if (parts[k].len < 0 || parts[k].len > l)
            parts[k].len = l;
        len += parts[k].len;
        Py_UCS4 m = PyUnicode_MAX_CHAR_VALUE(parts[k].s);
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
            Py_ssize_t l = parts[k].len;
            memcpy(w, parts[k].s ? (const char *)PyUnicode_1BYTE_DATA(parts[k].s) : parts[k].raw,
                   (size_t)l);
            w += l;
        }
        return out;
    }
    Py_ssize_t at = 0;
    for (int k = 0; k < n; k++) {
        Py_ssize_t l = parts[k].len;
        if (parts[k].s == NULL) {
            for (Py_ssize_t c = 0; c < l; c++)
                PyUnicode_WRITE(PyUnicode_KIND(out), PyUnicode_DATA(out), at + c,
                                (Py_UCS4)(unsigned char)parts[k].raw[c]);
        }
        else if (l && PyUnicode_CopyCharacters(out, at, parts[k].s, 0, l) < 0) {
            Py_DECREF(out);
            return NULL;
        }
        at += l;
    }
    return out;
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
c_name(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs > 0 || kwnames != NULL) {
        if (!(nargs == 1 && kwnames == NULL && args[0] == Py_None))
            return fall_back(self, s_name_py, args, nargs, kwnames);
    }
    const Py_ssize_t *at = fake_slots(Py_TYPE(self));
    TablesObject *t = tables_of(self, at);
    if (t == NULL)
        return NULL;
    if (!t->has_name) {
        Py_DECREF(t);
        return fall_back(self, s_name_py, args, nargs, kwnames);
    }
    PyObject *out = NULL, *text = NULL;
    uint64_t u;
    if (draw(self, at, &u) < 0)
        goto done;
    Py_ssize_t i = pick_index(&t->first, u >> 31);
    if (i < 0)
        goto done;
    Py_ssize_t j = pick_index(&t->last, u & MASK31);
    if (j < 0)
        goto done;
    PyObject *first = list_item(t->first.values, i), *last = list_item(t->last.values, j);
    if (first == NULL || last == NULL)
        goto done;
    Part parts[3] = {STR(t->last_first ? last : first), STR(s_space),
                     STR(t->last_first ? first : last)};
    text = concat(parts, 3);
    if (text == NULL)
        goto done;
    /* email(name) of this very string reads the two names' e-mail forms from here. */
    PyObject *i_obj = index_object(&t->first, i), *j_obj = index_object(&t->last, j);
    if (i_obj == NULL || j_obj == NULL) {
        Py_XDECREF(i_obj);
        Py_XDECREF(j_obj);
        goto done;
    }
    Py_INCREF(text);
    PyObject *items[3] = {text, i_obj, j_obj};
    PyObject *named = at != NULL ? slot_get(self, at[F_NAMED]) : NULL;
    if (named != NULL && PyTuple_CheckExact(named) && PyTuple_GET_SIZE(named) == 3 &&
        Py_REFCNT(named) == 1) {
        /* The tuple of the name before, which nothing but the slot holds: its items are
         * replaced (strings and ints, which hold no reference to anything). */
        for (int k = 0; k < 3; k++) {
            PyObject *old = PyTuple_GET_ITEM(named, k);
            PyTuple_SET_ITEM(named, k, items[k]);
            Py_XDECREF(old);
        }
    }
    else {
        named = PyTuple_New(3);
        if (named == NULL) {
            for (int k = 0; k < 3; k++)
                Py_DECREF(items[k]);
            goto done;
        }
        for (int k = 0; k < 3; k++)
            PyTuple_SET_ITEM(named, k, items[k]);
        if (fake_put(self, at, F_NAMED, named) < 0)
            goto done;
    }
    out = text;
    text = NULL;
done:
    Py_XDECREF(text);
    Py_DECREF(t);
    return out;
}

/* email(self, name=None): the name just drawn by name(); anything else falls back. */
static PyObject *
c_email(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs != 1 || kwnames != NULL)
        return fall_back(self, s_email_py, args, nargs, kwnames);
    PyObject *name = args[0];
    const Py_ssize_t *at = fake_slots(Py_TYPE(self));
    PyObject *named = fake_get(self, at, F_NAMED);
    if (named == NULL)
        return NULL;
    if (!PyTuple_Check(named) || PyTuple_GET_SIZE(named) != 3 ||
        PyTuple_GET_ITEM(named, 0) != name) {
        Py_DECREF(named);
        return fall_back(self, s_email_py, args, nargs, kwnames);
    }
    Py_ssize_t i = PyLong_AsSsize_t(PyTuple_GET_ITEM(named, 1));
    Py_ssize_t j = PyLong_AsSsize_t(PyTuple_GET_ITEM(named, 2));
    Py_DECREF(named);
    if ((i == -1 || j == -1) && PyErr_Occurred())
        return NULL;
    TablesObject *t = tables_of(self, at);
    if (t == NULL)
        return NULL;
    if (!t->has_mail) {
        Py_DECREF(t);
        return fall_back(self, s_email_py, args, nargs, kwnames);
    }
    PyObject *out = NULL;
    PyObject *first = list_item(t->first_mail, i), *last = list_item(t->last_mail, j);
    if (first == NULL || last == NULL)
        goto done;
    /* Held: the draw may run Python code (a generator of another kind) that changes the lists. */
    Py_INCREF(first);
    Py_INCREF(last);
    uint64_t u;
    if (draw(self, at, &u) < 0)
        goto release;
    Py_ssize_t ndomains = PyList_GET_SIZE(t->domains);
    if (ndomains == 0) {
        PyErr_SetString(PyExc_IndexError, "the locale has no e-mail domains");
        goto release;
    }
    PyObject *domain = list_item(t->domains, (Py_ssize_t)(((u >> 31) * (uint64_t)ndomains) >> 31));
    if (domain == NULL)
        goto release;
    unsigned style = (unsigned)(u & 3);
    char buf[32];
    if (PyUnicode_GET_LENGTH(last) == 0) {
        int nlen = digits_of(buf, (unsigned long long)((u >> 8) % 100));
        Part parts[4] = {STR(first), RAW(buf, nlen), STR(s_at), STR(domain)};
        out = concat(parts, 4);
    }
    else if (style == 0) {
        Part parts[5] = {STR(first), STR(s_dot), STR(last), STR(s_at), STR(domain)};
        out = concat(parts, 5);
    }
    else if (style == 1) {
        int nlen = digits_of(buf, (unsigned long long)((u >> 8) % 100));
        Part parts[6] = {STR(first), STR(s_dot), STR(last), RAW(buf, nlen), STR(s_at),
                         STR(domain)};
        out = concat(parts, 6);
    }
    else if (style == 2) {
        Part parts[4] = {PREFIX(first, 1), STR(last), STR(s_at), STR(domain)};
        out = concat(parts, 4);
    }
    else {
        int nlen = digits_of(buf, (unsigned long long)((u >> 8) % 1000));
        Part parts[5] = {STR(first), STR(last), RAW(buf, nlen), STR(s_at), STR(domain)};
        out = concat(parts, 5);
    }
release:
    Py_DECREF(first);
    Py_DECREF(last);
done:
    Py_DECREF(t);
    return out;
}

/* street_address(self) */
static PyObject *
c_street_address(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs != 0 || kwnames != NULL)
        return fall_back(self, s_street_py, args, nargs, kwnames);
    const Py_ssize_t *at = fake_slots(Py_TYPE(self));
    TablesObject *t = tables_of(self, at);
    if (t == NULL)
        return NULL;
    if (!t->has_street) {
        Py_DECREF(t);
        return fall_back(self, s_street_py, args, nargs, kwnames);
    }
    PyObject *out = NULL, *number = NULL, *street = NULL;
    uint64_t u;
    if (draw(self, at, &u) < 0)
        goto done;
    Py_ssize_t nstreets = PyList_GET_SIZE(t->streets);
    street = list_item(t->streets, (Py_ssize_t)(((u >> 31) * (uint64_t)nstreets) >> 31));
    if (street == NULL)
        goto done;
    Py_INCREF(street); /* held while _fill (Python) runs */
    uint64_t lo = u & MASK31;
    uint64_t nb = (uint64_t)t->nbuildings;
    const Building *b = &t->buildings[lo % nb];
    char buf[32];
    Part digits = RAW(buf, 0);
    if (b->span == 0) {
        number = PyObject_CallMethodOneArg(self, s_fill, b->fmt);
    }
    else {
        long long value = b->low + (long long)((lo / nb) % (uint64_t)b->span);
        if (b->fmt == Py_None) {
            if (value >= 0)
                digits.len = digits_of(buf, (unsigned long long)value);
            else
                digits.len = snprintf(buf, sizeof buf, "%lld", value);
        }
        else {
            PyObject *v = PyLong_FromLongLong(value);
            if (v == NULL)
                goto done;
            number = PyObject_CallMethodOneArg(b->fmt, s_format, v);
            Py_DECREF(v);
        }
    }
    if (number == NULL && (b->span == 0 || b->fmt != Py_None))
        goto done;
    Part num = number != NULL ? STR(number) : digits;
    Part parts[3] = {t->number_first ? num : STR(street), STR(t->street_sep),
                     t->number_first ? STR(street) : num};
    out = concat(parts, 3);
done:
    Py_XDECREF(street);
    Py_XDECREF(number);
    Py_DECREF(t);
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
c_phone_number(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs != 0 || kwnames != NULL)
        return fall_back(self, s_phone_py, args, nargs, kwnames);
    const Py_ssize_t *at = fake_slots(Py_TYPE(self));
    TablesObject *t = tables_of(self, at);
    if (t == NULL)
        return NULL;
    if (!t->has_phone) {
        Py_DECREF(t);
        return fall_back(self, s_phone_py, args, nargs, kwnames);
    }
    PyObject *out = NULL, *digits = NULL;
    uint64_t n = (uint64_t)t->nphones;
    uint64_t u;
    if (draw(self, at, &u) < 0)
        goto done;
    const Phone *f = &t->phones[u % n];
    u /= n;
    if (f->redraw && draw(self, at, &u) < 0)
        goto done;
    if (f->p == 0) {
        /* 10**k beyond 62 bits: the number is p + the new draw (below p), and the table's
         * first item fills the other places, as in Python. */
        PyObject *x = PyLong_FromUnsignedLongLong(u);
        if (x == NULL)
            goto done;
        PyObject *sum = PyNumber_Add(f->p_obj, x);
        Py_DECREF(x);
        if (sum == NULL)
            goto done;
        digits = PyObject_Str(sum);
        Py_DECREF(sum);
        if (digits == NULL)
            goto done;
        PyObject *long_args[2] = {digits, PyTuple_GET_ITEM(f->table, 0)};
        out = PyObject_Vectorcall(f->fill, long_args, 2, NULL);
        goto done;
    }
    char buf[32];
    int dlen = digits_of(buf, (unsigned long long)(f->p + u % f->p));
    PyObject *e = PyTuple_GET_ITEM(f->table, (Py_ssize_t)((u / f->p) % f->q));
    out = phone_from_plan(f->plan, buf, dlen, e);
    if (out != NULL || PyErr_Occurred())
        goto done;
    digits = PyUnicode_FromStringAndSize(buf, dlen);
    if (digits == NULL)
        goto done;
    PyObject *call_args[2] = {digits, e};
    out = PyObject_Vectorcall(f->fill, call_args, 2, NULL);
done:
    Py_XDECREF(digits);
    Py_DECREF(t);
    return out;
}

/* -- the module ------------------------------------------------------------------------------ */

static PyMethodDef fake_methods[] = {
    {"name", (PyCFunction)(void (*)(void))c_name, METH_FASTCALL | METH_KEYWORDS,
     "name($self, /, gender=None)\n--\n\n"
     "A full name: one draw, its halves picking the first and the last name."},
    {"email", (PyCFunction)(void (*)(void))c_email, METH_FASTCALL | METH_KEYWORDS,
     "email($self, /, name=None)\n--\n\n"
     "An e-mail address at a free mail domain of the locale, from ``name`` when given\n"
     "(``fake.email(fake.name())`` matches the name), else from a drawn one."},
    {"street_address", (PyCFunction)(void (*)(void))c_street_address,
     METH_FASTCALL | METH_KEYWORDS,
     "street_address($self, /)\n--\n\nA building number and a street, in the locale's order."},
    {"phone_number", (PyCFunction)(void (*)(void))c_phone_number, METH_FASTCALL | METH_KEYWORDS,
     "phone_number($self, /)\n--\n\nA phone number in one of the locale's formats, each format "
     "as likely."},
    {NULL, NULL, 0, NULL},
};

/* method(cls, name): the C value `name` as a method of class `cls` (a method descriptor, which
 * a call such as fake.name() runs without making a bound method first). */
static PyObject *
c_method(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyType_Check(args[0]) || !PyUnicode_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "method(cls, name)");
        return NULL;
    }
    for (PyMethodDef *def = fake_methods; def->ml_name != NULL; def++) {
        if (PyUnicode_CompareWithASCIIString(args[1], def->ml_name) != 0)
            continue;
        /* Setting it on the class changes the class's version tag: fake_slots() looks the
         * slots up again at the next value. */
        return PyDescr_NewMethod((PyTypeObject *)args[0], def);
    }
    PyErr_Format(PyExc_ValueError, "no C value called %R", args[1]);
    return NULL;
}

static PyMethodDef methods[] = {
    {"method", (PyCFunction)(void (*)(void))c_method, METH_FASTCALL,
     "method(cls, name): the C value ``name`` as a method of ``cls``."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_cvalues",
    "The commonest values of doge_datagen.values in C (same draws, same text).", -1, methods,
    NULL, NULL, NULL, NULL,
};

/* The engine's C randint, from its extension's capsule; none (every draw a call) when the
 * extension is not there. */
static void
find_bound_randint(void)
{
    PyObject *engine = PyImport_ImportModule("doge_datagen.engine._speedups");
    if (engine == NULL) {
        PyErr_Clear();
        return;
    }
    PyObject *capsule = PyObject_GetAttrString(engine, "_bound_randint");
    Py_DECREF(engine);
    if (capsule == NULL) {
        PyErr_Clear();
        return;
    }
    void *fn = PyCapsule_GetPointer(capsule, "doge_datagen.engine._speedups._bound_randint");
    Py_DECREF(capsule);
    if (fn == NULL) {
        PyErr_Clear();
        return;
    }
    bound_randint = (bound_randint_fn)fn;
}

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
        {&s_ctables, "_ctables"},
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
    s_zero = PyLong_FromLong(0);
    if (s_zero == NULL)
        return NULL;
    if (PyType_Ready(&DrawType) < 0 || PyType_Ready(&TablesType) < 0)
        return NULL;
    find_bound_randint();
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    Py_INCREF(&DrawType);
    if (PyModule_AddObject(module, "Draw", (PyObject *)&DrawType) < 0) {
        Py_DECREF(&DrawType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
