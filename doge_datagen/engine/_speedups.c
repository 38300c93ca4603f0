/* The engine's hot loop in C: the same steps as the pure-Python loop of Run.loop (engine.py),
 * in the same order, with the same arithmetic, so that a run writes the same events either way.
 *
 * run_ticks() goes through the ticks of a fast run (no pacing, no progress reporter, whole
 * millisecond ticks) and hands control back to Python after a batch of busy ticks or events,
 * at an arrival tick, at the end of the run, or when the run is stopping: Python serves the
 * sinks' polls between batches and takes every rare or slow path (arrivals, pacing, errors).
 *
 * Exactness rests on three things: the 64-bit hash is SplitMix64 modulo 2**64 (what Python's
 * masked big-integer arithmetic computes), the geometric wait goes through the C library's
 * log() on the same double Python's math.log gets, and int() of a double truncates toward zero
 * as a C cast does. tests/test_engine.py runs the same models through both loops.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define GOLDEN UINT64_C(0x9E3779B97F4A7C15)
#define MIX1 UINT64_C(0xBF58476D1CE4E5B9)
#define MIX2 UINT64_C(0x94D049BB133111EB)
#define INDEX_GOLDEN ((uint64_t)(UINT64_C(4294967296) * GOLDEN))
/* A wait this long (in ticks) is beyond any run with an end; past it the tick is a Python int. */
#define SAFE_WAIT 4.0e18
/* A busy tick from this one on ends the run with an error (Run._too_far), as in the Python
 * loop (engine._TICK_LIMIT): below it, a tick plus any wait under SAFE_WAIT fits a long long. */
#define TICK_LIMIT (LLONG_MAX / 2)

static PyObject *str_i, *str_s, *str_t, *str_tb, *str_base, *str_gauss_next;
static PyObject *str_collect, *str_stopping, *str_draw;
static PyObject *str_ticks_done, *str_timestamp, *str_subjects_changed, *str_too_far;

/* What Python needs to report an error: the local subject index, the failing sink (or
 * None), the tick and its timestamp, the move being made and the subject making it (user
 * code may have changed the lists by then). The error set is kept. */
static void
note_where(PyObject *where, PyObject *index, PyObject *sink, long long tick, long long timestamp,
           PyObject *move, PyObject *subject)
{
    PyObject *exc_type, *exc_value, *exc_tb;
    PyErr_Fetch(&exc_type, &exc_value, &exc_tb);
    PyObject *t = PyLong_FromLongLong(tick);
    PyObject *ts = PyLong_FromLongLong(timestamp);
    if (t == NULL || ts == NULL) {
        PyErr_Clear();
    }
    else {
        PyObject *items[6] = {index, sink, t, ts, move, subject};
        for (int n = 0; n < 6; n++) {
            Py_INCREF(items[n]);
            PyObject *old = PyList_GET_ITEM(where, n);
            PyList_SET_ITEM(where, n, items[n]);
            Py_XDECREF(old);
        }
    }
    Py_XDECREF(t);
    Py_XDECREF(ts);
    PyErr_Restore(exc_type, exc_value, exc_tb);
}

/* Where the loop was when an error came between two events (an arrival, a poll, a signal,
 * a tick too far): no subject, no sink, the tick (a Python int) and the timestamp of the last
 * busy tick (or NULL: none). The error set, if any, is kept. */
static void
note_between_at(PyObject *where, PyObject *tick, PyObject *timestamp)
{
    PyObject *exc_type, *exc_value, *exc_tb;
    PyErr_Fetch(&exc_type, &exc_value, &exc_tb);
    PyObject *items[6] = {Py_None, Py_None, tick, timestamp ? timestamp : Py_None, Py_None,
                          Py_None};
    for (int n = 0; n < 6; n++) {
        Py_INCREF(items[n]);
        PyObject *old = PyList_GET_ITEM(where, n);
        PyList_SET_ITEM(where, n, items[n]);
        Py_XDECREF(old);
    }
    PyErr_Restore(exc_type, exc_value, exc_tb);
}

static void
note_between(PyObject *where, long long tick, PyObject *timestamp)
{
    PyObject *exc_type, *exc_value, *exc_tb;
    PyErr_Fetch(&exc_type, &exc_value, &exc_tb);
    PyObject *t = PyLong_FromLongLong(tick);
    if (t == NULL)
        PyErr_Clear();
    else {
        note_between_at(where, t, timestamp);
        Py_DECREF(t);
    }
    PyErr_Restore(exc_type, exc_value, exc_tb);
}

/* counts[k] += 1 for a list of ints. */
static int
add_one(PyObject *counts, Py_ssize_t k)
{
    if (k < 0 || k >= PyList_GET_SIZE(counts)) {
        PyErr_Format(PyExc_RuntimeError,
                     "transition #%zd has no count: the run's counts were changed", k);
        return -1;
    }
    PyObject *old = PyList_GET_ITEM(counts, k);
    Py_ssize_t value = PyLong_AsSsize_t(old);
    if (value == -1 && PyErr_Occurred())
        return -1;
    PyObject *next = PyLong_FromSsize_t(value + 1);
    if (next == NULL)
        return -1;
    PyList_SET_ITEM(counts, k, next);
    Py_DECREF(old);
    return 0;
}

/* A new bucket: a list that only ever holds ints, so it can be in no reference cycle, and the
 * garbage collector need not look at it (runs with short ticks make one per event). */
static PyObject *
new_bucket(Py_ssize_t size)
{
    PyObject *bucket = PyList_New(size);
    if (bucket != NULL)
        PyObject_GC_UnTrack(bucket);
    return bucket;
}

/* Append index to due[at] (making the list when it is the first). */
static int
file_under(PyObject *due, PyObject *at, PyObject *index)
{
    PyObject *later = PyDict_GetItemWithError(due, at);
    if (later != NULL)
        return PyList_Append(later, index);
    if (PyErr_Occurred())
        return -1;
    PyObject *fresh = new_bucket(1);
    if (fresh == NULL)
        return -1;
    Py_INCREF(index);
    PyList_SET_ITEM(fresh, 0, index);
    int failed = PyDict_SetItem(due, at, fresh);
    Py_DECREF(fresh);
    return failed;
}

/* -- datagen.random's keys, in its instance slots ---------------------------------------------
 *
 * The engine keys datagen.random at every event (the subject, a fresh stream) and every busy
 * tick (the tick), and randint reads the keys at every draw: SubjectRandom keeps them in
 * __slots__, which C reads and writes at a fixed offset in the object instead of through a
 * dict. key_slots() finds the offsets, and only where a store is all that setattr would do
 * (default __setattr__, each name a writable object slot); anything else (a subclass that makes
 * a key a property, another generator) goes through setattr and getattr. */

/* The keys: the engine sets those before ENGINE_KEYS, randint reads and writes them all. */
enum { KEY_I, KEY_S, KEY_T, KEY_TB, ENGINE_KEYS, KEY_BASE = ENGINE_KEYS, KEY_GAUSS, N_KEYS };
static PyObject **const key_names[N_KEYS] = {
    &str_i, &str_s, &str_t, &str_tb, &str_base, &str_gauss_next};

/* The offsets of the instance slots of the first `count` keys of `type` into `offsets`: 1 if
 * each is a plain writable object slot and the type sets attributes the default way, else 0. */
static int
key_slots(PyTypeObject *type, int count, Py_ssize_t *offsets)
{
    if (type->tp_setattro != PyObject_GenericSetAttr)
        return 0;
    for (int n = 0; n < count; n++) {
        PyObject *attr = _PyType_Lookup(type, *key_names[n]);
        if (attr == NULL || Py_TYPE(attr) != &PyMemberDescr_Type)
            return 0;
        PyMemberDef *member = ((PyMemberDescrObject *)attr)->d_member;
        if (member->type != T_OBJECT_EX || (member->flags & READONLY))
            return 0;
        offsets[n] = member->offset;
    }
    return 1;
}

/* The object in the slot at `offset` of `obj` (borrowed; NULL when the slot is empty). */
static inline PyObject *
slot_get(PyObject *obj, Py_ssize_t offset)
{
    return *(PyObject **)((char *)obj + offset);
}

static inline void
slot_set(PyObject *obj, Py_ssize_t offset, PyObject *value)
{
    PyObject **slot = (PyObject **)((char *)obj + offset);
    PyObject *old = *slot;
    Py_INCREF(value);
    *slot = value;
    Py_XDECREF(old);
}

/* The instance dict of `obj` if storing `names` there is what setattr does (plain
 * attributes: no data descriptor of that name on the type, default __setattr__), else NULL.
 * A new reference. */
static PyObject *
plain_dict(PyObject *obj, PyObject *const *names, int count)
{
    PyTypeObject *type = Py_TYPE(obj);
    if (type->tp_setattro != PyObject_GenericSetAttr || type->tp_dictoffset == 0)
        return NULL;
    for (int n = 0; n < count; n++) {
        PyObject *attr = _PyType_Lookup(type, names[n]);
        if (attr != NULL && Py_TYPE(attr)->tp_descr_set != NULL)
            return NULL;
    }
    PyObject *dict = PyObject_GenericGetDict(obj, NULL);
    if (dict == NULL || !PyDict_CheckExact(dict)) {
        PyErr_Clear();
        Py_XDECREF(dict);
        return NULL;
    }
    return dict;
}

/* The move's transition index (element 5 of a move) as a Py_ssize_t. */
static Py_ssize_t
move_index(PyObject *move)
{
    return PyLong_AsSsize_t(PyTuple_GET_ITEM(move, 5));
}

/* -- the calendar: which subjects are due at which tick ---------------------------------------
 *
 * In Python the buckets are a dict of lists (Run.due). For the length of a run_ticks() call
 * they live here instead, without a Python object per bucket or per entry: a wheel of WHEEL
 * slots for the ticks base .. limit - 1 (tick t in slot t % WHEEL), and an unordered list of
 * the entries due at limit or later. Ticks only move forward; when the current tick comes
 * within WHEEL / 2 of the limit, the limit moves to tick + WHEEL and the far entries it now
 * covers move into their slots (one pass over the far list at most every WHEEL / 2 ticks).
 * run_ticks() takes Run.due's entries in when it starts; the run ends with the call, and what is
 * still due then goes with the calendar.
 */
#define WHEEL_BITS 12
#define WHEEL ((long long)1 << WHEEL_BITS)
#define WHEEL_MASK (WHEEL - 1)
/* The largest buffer (in entries) a slot is handed back for reuse. */
#define RECYCLE_CAP 64

typedef struct {
    Py_ssize_t *items;
    Py_ssize_t len, cap;
} Vec;

typedef struct {
    Vec *slots;
    long long base, limit;
    Py_ssize_t in_wheel;
    long long *far_ticks;
    Py_ssize_t *far_items;
    Py_ssize_t far_len, far_cap;
    long long far_min;     /* LLONG_MAX: no far entry */
    PyObject *huge;        /* [(tick, index)] beyond 64-bit ticks (never reached), or NULL */
} Calendar;

static int
vec_push(Vec *v, Py_ssize_t x)
{
    if (v->len == v->cap) {
        Py_ssize_t cap = v->cap ? 2 * v->cap : 4;
        Py_ssize_t *items = PyMem_Realloc(v->items, (size_t)cap * sizeof *items);
        if (items == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        v->items = items;
        v->cap = cap;
    }
    v->items[v->len++] = x;
    return 0;
}

static int
cal_init(Calendar *c, long long tick)
{
    memset(c, 0, sizeof *c);
    c->slots = PyMem_Calloc((size_t)WHEEL, sizeof(Vec));
    if (c->slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    c->base = tick;
    c->limit = tick + WHEEL;
    c->far_min = LLONG_MAX;
    return 0;
}

static void
cal_free(Calendar *c)
{
    if (c->slots != NULL) {
        for (long long n = 0; n < WHEEL; n++)
            PyMem_Free(c->slots[n].items);
        PyMem_Free(c->slots);
    }
    PyMem_Free(c->far_ticks);
    PyMem_Free(c->far_items);
    Py_XDECREF(c->huge);
    memset(c, 0, sizeof *c);
}

/* Subject i is due at tick `at` (base <= at). */
static int
cal_add(Calendar *c, long long at, Py_ssize_t i)
{
    if (at < c->limit) {
        if (vec_push(&c->slots[at & WHEEL_MASK], i) < 0)
            return -1;
        c->in_wheel++;
        return 0;
    }
    if (c->far_len == c->far_cap) {
        Py_ssize_t cap = c->far_cap ? 2 * c->far_cap : 64;
        long long *ticks = PyMem_Realloc(c->far_ticks, (size_t)cap * sizeof *ticks);
        if (ticks == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        c->far_ticks = ticks;
        Py_ssize_t *items = PyMem_Realloc(c->far_items, (size_t)cap * sizeof *items);
        if (items == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        c->far_items = items;
        c->far_cap = cap;
    }
    c->far_ticks[c->far_len] = at;
    c->far_items[c->far_len] = i;
    c->far_len++;
    if (at < c->far_min)
        c->far_min = at;
    return 0;
}

/* Subject `index` is due at a tick beyond 64 bits (a Python int): kept aside, never reached. */
static int
cal_add_huge(Calendar *c, PyObject *at, PyObject *index)
{
    if (c->huge == NULL && (c->huge = PyList_New(0)) == NULL)
        return -1;
    PyObject *pair = PyTuple_Pack(2, at, index);
    if (pair == NULL)
        return -1;
    int failed = PyList_Append(c->huge, pair);
    Py_DECREF(pair);
    return failed;
}

/* The run is at `tick` (every earlier slot is empty): move the limit on when it comes near. */
static int
cal_advance(Calendar *c, long long tick)
{
    c->base = tick;
    if (tick < c->limit - WHEEL / 2)
        return 0;
    long long limit = tick + WHEEL;
    c->limit = limit;
    if (c->far_min >= limit)
        return 0;
    Py_ssize_t kept = 0;
    long long far_min = LLONG_MAX;
    for (Py_ssize_t n = 0; n < c->far_len; n++) {
        long long at = c->far_ticks[n];
        Py_ssize_t i = c->far_items[n];
        if (at < limit) {
            if (vec_push(&c->slots[at & WHEEL_MASK], i) < 0)
                return -1;
            c->in_wheel++;
        }
        else {
            c->far_ticks[kept] = at;
            c->far_items[kept] = i;
            kept++;
            if (at < far_min)
                far_min = at;
        }
    }
    c->far_len = kept;
    c->far_min = far_min;
    return 0;
}

/* Move every entry of the dict `due` (tick -> list of local indices) into the calendar. */
static int
cal_take(Calendar *c, PyObject *due)
{
    PyObject *tick_obj, *bucket;
    Py_ssize_t pos = 0;
    while (PyDict_Next(due, &pos, &tick_obj, &bucket)) {
        if (!PyList_Check(bucket)) {
            PyErr_SetString(PyExc_TypeError, "a bucket is a list");
            return -1;
        }
        int overflow = 0;
        long long at = PyLong_AsLongLongAndOverflow(tick_obj, &overflow);
        if (at == -1 && PyErr_Occurred())
            return -1;
        for (Py_ssize_t n = 0; n < PyList_GET_SIZE(bucket); n++) {
            PyObject *index = PyList_GET_ITEM(bucket, n);
            if (overflow || at >= LLONG_MAX / 2) {
                if (cal_add_huge(c, tick_obj, index) < 0)
                    return -1;
                continue;
            }
            Py_ssize_t i = PyLong_AsSsize_t(index);
            if (i == -1 && PyErr_Occurred())
                return -1;
            if (at < c->base) {
                PyErr_SetString(PyExc_ValueError, "a subject is due before the current tick");
                return -1;
            }
            if (cal_add(c, at, i) < 0)
                return -1;
        }
    }
    PyDict_Clear(due);
    return 0;
}

/* Append index `i` to the list due[at] (made when missing). */
static int
due_append(PyObject *due, PyObject *at, PyObject *i)
{
    PyObject *bucket = PyDict_GetItemWithError(due, at);
    if (bucket == NULL) {
        if (PyErr_Occurred() || (bucket = PyList_New(0)) == NULL)
            return -1;
        int failed = PyDict_SetItem(due, at, bucket) < 0 || PyList_Append(bucket, i) < 0;
        Py_DECREF(bucket);
        return failed ? -1 : 0;
    }
    return PyList_Append(bucket, i);
}

/* The opposite of cal_take: every entry of the calendar back into the dict `due`, for a run
 * that goes on later from the tick the loop returned at (a checkpoint). */
static int
cal_give(Calendar *c, PyObject *due)
{
    for (long long t = c->base; t < c->base + WHEEL; t++) {
        Vec *slot = &c->slots[t & WHEEL_MASK];
        if (slot->len == 0)
            continue;
        PyObject *at = PyLong_FromLongLong(t);
        if (at == NULL)
            return -1;
        for (Py_ssize_t n = 0; n < slot->len; n++) {
            PyObject *i = PyLong_FromSsize_t(slot->items[n]);
            int failed = i == NULL || due_append(due, at, i) < 0;
            Py_XDECREF(i);
            if (failed) {
                Py_DECREF(at);
                return -1;
            }
        }
        Py_DECREF(at);
        c->in_wheel -= slot->len;
        slot->len = 0;
    }
    for (Py_ssize_t n = 0; n < c->far_len; n++) {
        PyObject *at = PyLong_FromLongLong(c->far_ticks[n]);
        PyObject *i = at ? PyLong_FromSsize_t(c->far_items[n]) : NULL;
        int failed = i == NULL || due_append(due, at, i) < 0;
        Py_XDECREF(at);
        Py_XDECREF(i);
        if (failed)
            return -1;
    }
    c->far_len = 0;
    c->far_min = LLONG_MAX;
    if (c->huge != NULL) {
        for (Py_ssize_t n = 0; n < PyList_GET_SIZE(c->huge); n++) {
            PyObject *pair = PyList_GET_ITEM(c->huge, n);
            if (due_append(due, PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1)) < 0)
                return -1;
        }
        Py_CLEAR(c->huge);
    }
    return 0;
}

/* The widest digit radix_indices counts by: 2,048 counters, 16 KiB, stay in the L1 cache. */
#define RADIX_BITS 11

/* Sort `items` (n distinct non-negative indices) by their digits, least significant first,
 * through `to` (room for n), when that is the cheaper way: each pass counts the entries per
 * digit, then places each at its digit's next place, and costs about 2n steps plus one per
 * counter; merging costs about n per run doubling. Returns 1 once sorted, 0 (nothing done)
 * when merging is cheaper: few entries for the counters of the indices' width. */
static int
radix_indices(Py_ssize_t *items, Py_ssize_t n, Py_ssize_t *to)
{
    size_t all = 0;
    for (Py_ssize_t k = 0; k < n; k++)
        all |= (size_t)items[k];
    int bits = 0;
    while (bits < (int)(8 * sizeof all) && (all >> bits) != 0)
        bits++;
    int passes = (bits + RADIX_BITS - 1) / RADIX_BITS;
    if (passes == 0)
        return 1;  /* every entry is 0: n <= 1, as they are distinct */
    int width = (bits + passes - 1) / passes;
    size_t digits = (size_t)1 << width;
    if ((size_t)n * 4 < (size_t)passes * digits)
        return 0;
    Py_ssize_t count[(size_t)1 << RADIX_BITS];
    Py_ssize_t *from = items;
    for (int p = 0; p < passes; p++) {
        int shift = p * width;
        size_t mask = digits - 1;
        memset(count, 0, digits * sizeof count[0]);
        for (Py_ssize_t k = 0; k < n; k++)
            count[((size_t)from[k] >> shift) & mask]++;
        Py_ssize_t sum = 0;
        for (size_t d = 0; d < digits; d++) {
            Py_ssize_t c = count[d];
            count[d] = sum;
            sum += c;
        }
        for (Py_ssize_t k = 0; k < n; k++) {
            Py_ssize_t x = from[k];
            to[count[((size_t)x >> shift) & mask]++] = x;
        }
        Py_ssize_t *swap = from;
        from = to;
        to = swap;
    }
    if (from != items)
        memcpy(items, from, (size_t)n * sizeof *items);
    return 1;
}

/* Ascending order, as the Python loop's bucket.sort() (indices are distinct). A slot's
 * entries come in ascending runs (those filed while one earlier tick ran come in that tick's
 * order), so, like list.sort(), a small bucket merges the runs it finds: n entries from r ticks
 * cost n log r, not n log n. A large bucket is sorted by its digits instead (radix_indices):
 * with a million subjects a tick's few thousand entries come from fifty-odd ticks, and six
 * merge passes, each a coin toss for the branch predictor at every entry, cost three times
 * two passes that only count and place. `scratch` is a buffer kept between calls. Returns -1
 * (with MemoryError) when the buffer cannot grow. */
static int
sort_indices(Py_ssize_t *items, Py_ssize_t n, Vec *scratch)
{
    if (n <= 16) {
        for (Py_ssize_t a = 1; a < n; a++) {
            Py_ssize_t x = items[a], b = a;
            for (; b > 0 && items[b - 1] > x; b--)
                items[b] = items[b - 1];
            items[b] = x;
        }
        return 0;
    }
    if (scratch->cap < n) {
        Py_ssize_t *grown = PyMem_Realloc(scratch->items, (size_t)n * sizeof *grown);
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        scratch->items = grown;
        scratch->cap = n;
    }
    if (radix_indices(items, n, scratch->items))
        return 0;
    Py_ssize_t *from = items, *to = scratch->items;
    for (;;) {
        /* One pass: merge each pair of neighbouring runs of `from` into `to`. */
        Py_ssize_t runs = 0, start = 0;
        while (start < n) {
            Py_ssize_t mid = start + 1;
            while (mid < n && from[mid - 1] <= from[mid])
                mid++;
            Py_ssize_t end = mid;
            if (mid < n) {
                end = mid + 1;
                while (end < n && from[end - 1] <= from[end])
                    end++;
            }
            Py_ssize_t a = start, b = mid, k = start;
            while (a < mid && b < end)
                to[k++] = from[a] < from[b] ? from[a++] : from[b++];
            while (a < mid)
                to[k++] = from[a++];
            while (b < end)
                to[k++] = from[b++];
            runs++;
            start = end;
        }
        Py_ssize_t *swap = from;
        from = to;
        to = swap;
        if (runs <= 1)
            break;
    }
    if (from != items)
        memcpy(items, from, (size_t)n * sizeof *items);
    return 0;
}

/* -- the loop ----------------------------------------------------------------------------------- */

#define TIMELINES_KEPT 8

typedef struct {
    PyObject *due, *pending, *subjects, *counts, *vetoes, *rng, *model, *where, *key_obj;
    int rng_slots;        /* 1: rng's engine keys are the slots at rng_offsets */
    Py_ssize_t rng_offsets[ENGINE_KEYS];
    Calendar *cal;        /* where run_ticks files subjects; NULL: straight into `due` */
    /* The instance dicts of the profiled states' timelines seen in this call (a model has a
     * few): looked up once, not at every draw. Strong references, dropped by loop_release. */
    PyObject *timelines[TIMELINES_KEPT], *timeline_dicts[TIMELINES_KEPT];
    int n_timelines;
    uint64_t key;
    long long n_ticks;    /* LLONG_MAX: no end */
    double ln_2_pow_32;
    PyObject *run;        /* the engine's Run (run_ticks only) */
    Py_ssize_t size;      /* the size the subjects list keeps (run_ticks only) */
    long long budget;     /* events or busy ticks before the next loop_yield */
} Loop;

/* File subject `index` (local position i) under tick `at` (at >= following), if before the
 * end. `upcoming` is the dict bucket of `following` (made on first use) when filing into the
 * dict, as the Python loop does. */
static int
file_at(Loop *L, long long at, PyObject *index, Py_ssize_t i, long long following,
        PyObject **upcoming)
{
    if (L->cal != NULL)
        return at < L->n_ticks ? cal_add(L->cal, at, i) : 0;
    if (at == following) {
        if (*upcoming == NULL) {
            PyObject *fresh = new_bucket(0);
            if (fresh == NULL)
                return -1;
            /* Past the end, the bucket is nobody's: it goes when the caller is done. */
            if (following < L->n_ticks) {
                PyObject *key = PyLong_FromLongLong(following);
                int failed = key ? PyDict_SetItem(L->due, key, fresh) : -1;
                Py_XDECREF(key);
                if (failed) {
                    Py_DECREF(fresh);
                    return -1;
                }
            }
            *upcoming = fresh;
        }
        return PyList_Append(*upcoming, index);
    }
    if (at < L->n_ticks) {
        PyObject *key = PyLong_FromLongLong(at);
        if (key == NULL)
            return -1;
        int failed = file_under(L->due, key, index);
        Py_DECREF(key);
        return failed;
    }
    return 0;
}

/* File subject `index` under a tick given as a Python int beyond 64 bits (or inf). */
static int
file_huge(Loop *L, PyObject *at, PyObject *index)
{
    if (L->n_ticks != LLONG_MAX) {
        /* A run with an end: compare as Python does (inf and huge ticks are past it). */
        PyObject *limit = PyLong_FromLongLong(L->n_ticks);
        if (limit == NULL)
            return -1;
        int before = PyObject_RichCompareBool(at, limit, Py_LT);
        Py_DECREF(limit);
        if (before <= 0)
            return before;
    }
    else if (PyFloat_Check(at)) {
        return 0;  /* inf: never */
    }
    if (L->cal != NULL)
        return cal_add_huge(L->cal, at, index);
    return file_under(L->due, at, index);
}

/* draw()'s 64 bits for local subject i: SplitMix64's output function of tick_key + i * 2**32
 * * golden, tick_key being key + tick * golden (the arithmetic of engine.draw, modulo 2**64). */
static inline uint64_t
draw_bits(uint64_t tick_key, Py_ssize_t i)
{
    uint64_t h = tick_key + (uint64_t)i * INDEX_GOLDEN;
    h = (h ^ (h >> 30)) * MIX1;
    h = (h ^ (h >> 27)) * MIX2;
    return h ^ (h >> 31);
}

#define PICK_ERROR (-1)     /* a threshold that is not an int (exception set) */
#define PICK_PAST_END (-2)  /* the low bits are above the last threshold (no exception) */

/* Which move the low 32 bits of h pick: the first cumulative threshold above them. */
static inline Py_ssize_t
pick(PyObject *thresholds, uint64_t h)
{
    uint64_t low = h & UINT64_C(0xFFFFFFFF);
    Py_ssize_t size = PyList_Check(thresholds) ? PyList_GET_SIZE(thresholds) : 0;
    for (Py_ssize_t j = 0; j < size; j++) {
        uint64_t threshold = PyLong_AsUnsignedLongLong(PyList_GET_ITEM(thresholds, j));
        if (threshold == (uint64_t)-1 && PyErr_Occurred())
            return PICK_ERROR;
        if (low < threshold)
            return j;
    }
    return PICK_PAST_END;
}

/* A segment's figures, from its `fast` tuple (timevarying.py). */
typedef struct {
    long long start;
    double end, leave, inv_log_stay, hazard;
    PyObject *thresholds, *moves;
    Py_ssize_t index;
    int plain;
} Segment;

static int
read_segment(PyObject *fast, Segment *seg)
{
    if (!PyTuple_Check(fast) || PyTuple_GET_SIZE(fast) != 9)
        return 0;
    PyObject *end = PyTuple_GET_ITEM(fast, 1);
    seg->start = PyLong_AsLongLong(PyTuple_GET_ITEM(fast, 0));
    seg->end = PyFloat_Check(end) ? PyFloat_AS_DOUBLE(end) : PyLong_AsDouble(end);
    seg->leave = PyFloat_AsDouble(PyTuple_GET_ITEM(fast, 2));
    seg->inv_log_stay = PyFloat_AsDouble(PyTuple_GET_ITEM(fast, 3));
    seg->thresholds = PyTuple_GET_ITEM(fast, 4);
    seg->moves = PyTuple_GET_ITEM(fast, 5);
    seg->hazard = PyFloat_AsDouble(PyTuple_GET_ITEM(fast, 6));
    seg->index = PyLong_AsSsize_t(PyTuple_GET_ITEM(fast, 7));
    seg->plain = PyTuple_GET_ITEM(fast, 8) == Py_True;
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return PyList_Check(seg->thresholds) && PyList_Check(seg->moves);
}

static PyObject *str_cumulative, *str_hazard_known, *str_fasts, *str_rest, *str_fast;
static PyObject *str_known_until, *str_periodic;

/* The segments of a periodic timeline are exact in a double (and shifted by whole periods
 * without overflow) below this tick; further, the timeline draws in Python. */
#define PERIODIC_LIMIT 9007199254740992.0 /* 2**53 */

#define FOUND_PYTHON 0   /* the timeline must draw in Python */
#define FOUND 1          /* *seg and *cum hold the segment */
#define FOUND_NEVER 2    /* no segment after P0 has any hazard: the subject rests */
#define FOUND_BEFORE 3   /* the target is before P0's hazard: search the timeline's lists */

/* StateTimeline._find in C, operation for operation (the same floats, so the same segment):
 * `periodic` is the timeline's `_periodic`, (P0, K, C0, H, used, fasts). Period n (from 0)
 * begins at hazard C0 + n * H; within it, segment k at used[k] more. The segment found is
 * fasts[k] moved n periods (n * K ticks) on, with its hazard from tick 0 in *cum. */
static int
periodic_find(PyObject *periodic, double target, Segment *seg, double *cum)
{
    if (!PyTuple_Check(periodic) || PyTuple_GET_SIZE(periodic) != 6)
        return FOUND_PYTHON;
    long long ticks = PyLong_AsLongLong(PyTuple_GET_ITEM(periodic, 1));
    double c0 = PyFloat_AsDouble(PyTuple_GET_ITEM(periodic, 2));
    double hazard = PyFloat_AsDouble(PyTuple_GET_ITEM(periodic, 3));
    PyObject *used = PyTuple_GET_ITEM(periodic, 4);
    PyObject *fasts = PyTuple_GET_ITEM(periodic, 5);
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return FOUND_PYTHON;
    }
    if (!PyList_Check(used) || !PyList_Check(fasts) || ticks <= 0)
        return FOUND_PYTHON;
    Py_ssize_t size = PyList_GET_SIZE(used);
    if (size < 1 || PyList_GET_SIZE(fasts) != size)
        return FOUND_PYTHON;
    if (target < c0)
        return FOUND_BEFORE;
    if (!(hazard > 0.0))
        return FOUND_NEVER;
    double periods = (target - c0) / hazard;
    if (!(periods < PERIODIC_LIMIT))
        return FOUND_PYTHON;
    long long n = (long long)periods;  /* int(): towards zero, and periods >= 0 */
    for (int r = 0; r < 64; r++) {
        if (c0 + (double)(n + 1) * hazard > target)
            break;
        n++;
    }
    for (int r = 0; r < 64; r++) {
        if (n == 0 || c0 + (double)n * hazard <= target)
            break;
        n--;
    }
    double base = c0 + (double)n * hazard;
    double rest = target - base;
    /* bisect_right(used, rest) - 1, within 0 .. size - 1 */
    Py_ssize_t lo = 0, hi = size;
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        double value = PyFloat_AsDouble(PyList_GET_ITEM(used, mid));
        if (value == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            return FOUND_PYTHON;
        }
        if (rest < value)
            hi = mid;
        else
            lo = mid + 1;
    }
    Py_ssize_t k = lo - 1;
    if (k < 0)
        k = 0;
    if (k > size - 1)
        k = size - 1;
    double here, after;
    for (;;) {
        if (k + 1 >= size)
            break;
        after = PyFloat_AsDouble(PyList_GET_ITEM(used, k + 1));
        if (after == -1.0 && PyErr_Occurred())
            break;
        if (!(base + after <= target))
            break;
        k++;
    }
    for (;;) {
        here = PyFloat_AsDouble(PyList_GET_ITEM(used, k));
        if (here == -1.0 && PyErr_Occurred())
            break;
        if (!(k > 0 && base + here > target))
            break;
        k--;
    }
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return FOUND_PYTHON;
    }
    if (!read_segment(PyList_GET_ITEM(fasts, k), seg))
        return FOUND_PYTHON;
    long long shift;
    if (__builtin_mul_overflow(n, ticks, &shift) || !(seg->end < PERIODIC_LIMIT) ||
        (double)shift + seg->end >= PERIODIC_LIMIT)
        return FOUND_PYTHON;
    seg->start += shift;
    seg->end += (double)shift;
    seg->index = -1;
    double following = c0 + (double)(n + 1) * hazard;
    double own = base + here;
    *cum = following < own ? following : own;  /* min(own, following) */
    return FOUND;
}

/* The instance dict of `timeline` (borrowed from L's cache), or NULL when its attributes are
 * not plain ones (the timeline then draws in Python). */
static PyObject *
timeline_dict(Loop *L, PyObject *timeline)
{
    for (int n = 0; n < L->n_timelines; n++)
        if (L->timelines[n] == timeline)
            return L->timeline_dicts[n];
    PyObject *names[7] = {str_fast, str_cumulative,  str_hazard_known, str_fasts,
                          str_rest, str_known_until, str_periodic};
    PyObject *dict = plain_dict(timeline, names, 7);
    if (dict == NULL || L->n_timelines == TIMELINES_KEPT) {
        Py_XDECREF(dict);  /* (a model with more profiled states than kept: Python draws) */
        return NULL;
    }
    Py_INCREF(timeline);
    L->timelines[L->n_timelines] = timeline;
    L->timeline_dicts[L->n_timelines] = dict;
    L->n_timelines++;
    return dict;
}

static void
loop_release(Loop *L)
{
    for (int n = 0; n < L->n_timelines; n++) {
        Py_DECREF(L->timelines[n]);
        Py_DECREF(L->timeline_dicts[n]);
    }
    L->n_timelines = 0;
}

/* StateTimeline.draw in C for the draws that need no new segment and no callable: 1 when it
 * applied (the subject is filed, or rests), 0 when the timeline must draw in Python (which
 * gives the same result, extending its segments as it goes), -1 on an error. Only reads the
 * timeline. */
static int
timeline_draw(Loop *L, PyObject *timeline, PyObject *index, Py_ssize_t i, long long following,
              uint64_t tick_key, PyObject **upcoming)
{
    PyObject *dict = timeline_dict(L, timeline);
    if (dict == NULL)
        return 0;
    int result = 0;
    PyObject *move = NULL;
    Segment seg;
    PyObject *fast = PyDict_GetItemWithError(dict, str_fast);
    if (fast == NULL || !read_segment(fast, &seg))
        goto done;
    if (!(seg.start <= following && (double)following < seg.end))
        goto done;  /* the timeline finds (or makes) the tick's segment */
    uint64_t h = draw_bits(tick_key, i);
    double minus_e = log((double)((h >> 32) + 1)) - L->ln_2_pow_32;
    long long at = following;
    if (0.0 < seg.leave && seg.leave < 1.0) {
        double wait = minus_e * seg.inv_log_stay;
        if (!(wait < SAFE_WAIT))
            goto done;
        at += (long long)wait;
    }
    if (seg.leave == 0.0 || (double)at >= seg.end) {
        /* Past this segment: the rest of the exponential is used up in the next ones. */
        int rests = 0;
        if (seg.end >= (double)L->n_ticks) {
            rests = 1;
        }
        else {
            PyObject *cumulative = PyDict_GetItemWithError(dict, str_cumulative);
            PyObject *known = PyDict_GetItemWithError(dict, str_hazard_known);
            PyObject *fasts = PyDict_GetItemWithError(dict, str_fasts);
            if (cumulative == NULL || known == NULL || fasts == NULL ||
                !PyList_Check(cumulative) || !PyList_Check(fasts) ||
                seg.index >= PyList_GET_SIZE(cumulative))
                goto done;
            double hazard_known = PyFloat_AsDouble(known);
            double from = PyFloat_AsDouble(PyList_GET_ITEM(cumulative, seg.index));
            if (PyErr_Occurred()) {
                PyErr_Clear();
                goto done;
            }
            double target = from + seg.hazard * (double)(following - seg.start) - minus_e;
            /* A periodic timeline finds the segment in any period by arithmetic (_find);
             * the hazard before P0 is in the lists. */
            PyObject *periodic = PyDict_GetItemWithError(dict, str_periodic);
            if (periodic == NULL)
                goto done;
            double base = 0.0;
            int found = periodic == Py_None ? FOUND_BEFORE
                                            : periodic_find(periodic, target, &seg, &base);
            if (found == FOUND_PYTHON)
                goto done;
            if (found == FOUND_NEVER) {
                rests = 1;
            }
            else if (found == FOUND_BEFORE && target >= hazard_known) {
                /* Not used up in the segments known. When they reach the run's end, the
                 * subject rests there for good; otherwise the timeline extends them. */
                PyObject *until = PyDict_GetItemWithError(dict, str_known_until);
                double known_until = until ? PyFloat_AsDouble(until) : -1.0;
                if (PyErr_Occurred()) {
                    PyErr_Clear();
                    goto done;
                }
                if (!(known_until >= (double)L->n_ticks))
                    goto done;
                rests = 1;
            }
            else {
                if (found == FOUND_BEFORE) {
                    /* bisect_right(cumulative, target) - 1 */
                    Py_ssize_t lo = 0, hi = PyList_GET_SIZE(cumulative);
                    while (lo < hi) {
                        Py_ssize_t mid = lo + (hi - lo) / 2;
                        double value = PyFloat_AsDouble(PyList_GET_ITEM(cumulative, mid));
                        if (value == -1.0 && PyErr_Occurred()) {
                            PyErr_Clear();
                            goto done;
                        }
                        if (target < value)
                            hi = mid;
                        else
                            lo = mid + 1;
                    }
                    if (lo < 1 || lo - 1 >= PyList_GET_SIZE(fasts) ||
                        !read_segment(PyList_GET_ITEM(fasts, lo - 1), &seg) ||
                        seg.index < 0 || seg.index >= PyList_GET_SIZE(cumulative))
                        goto done;
                    base = PyFloat_AsDouble(PyList_GET_ITEM(cumulative, seg.index));
                    if (base == -1.0 && PyErr_Occurred()) {
                        PyErr_Clear();
                        goto done;
                    }
                }
                if (seg.hazard == 0.0) {
                    rests = 1;  /* the last segment, never left */
                }
                else {
                    at = seg.start;
                    if (!isinf(seg.hazard)) {
                        double wait = (target - base) / seg.hazard;
                        if (!(wait < SAFE_WAIT))
                            goto done;
                        at += (long long)wait;
                        if ((double)at >= seg.end)
                            at = (long long)seg.end - 1;  /* float rounding at the very end */
                    }
                    if (at >= L->n_ticks)
                        rests = 1;
                }
            }
        }
        if (rests) {
            PyObject *rest = PyDict_GetItemWithError(dict, str_rest);
            if (rest == NULL)
                goto done;
            Py_INCREF(rest);
            result = PyList_SetItem(L->pending, i, rest) < 0 ? -1 : 1;
            goto done;
        }
    }
    if (!seg.plain)
        goto done;  /* thinning: the callables' values are the timeline's */
    Py_ssize_t j = pick(seg.thresholds, h);
    if (j == PICK_ERROR)
        result = -1;
    if (j < 0 || j >= PyList_GET_SIZE(seg.moves))
        goto done;
    move = PyList_GET_ITEM(seg.moves, j);
    Py_INCREF(move);
    if (PyList_SetItem(L->pending, i, move) < 0)
        result = -1;
    else
        result = file_at(L, at, index, i, following, upcoming) < 0 ? -1 : 1;
done:
    if (result == 0 && PyErr_Occurred())
        PyErr_Clear();
    return result;
}

/* Where subject `index` (local position i) goes after its event: the draw of next_move()
 * from `table` at tick `following`. Returns 0, or -1 with an exception set. */
static int
schedule(Loop *L, PyObject *table, PyObject *index, Py_ssize_t i, long long following,
         uint64_t tick_key, PyObject **upcoming)
{
    if (!PyList_Check(table) || PyList_GET_SIZE(table) != 6) {
        PyErr_SetString(PyExc_TypeError, "a compiled table is a list of six");
        return -1;
    }
    PyObject *certain = PyList_GET_ITEM(table, 0);
    if (certain != Py_None) {
        Py_INCREF(certain);
        if (PyList_SetItem(L->pending, i, certain) < 0)
            return -1;
        return file_at(L, following, index, i, following, upcoming);
    }
    double leave = PyFloat_AsDouble(PyList_GET_ITEM(table, 1));
    if (leave == -1.0 && PyErr_Occurred())
        return -1;
    PyObject *thresholds = PyList_GET_ITEM(table, 3);
    if (leave == 0.0) {
        int any = PyObject_IsTrue(thresholds);
        if (any < 0)
            return -1;
        if (!any) {
            /* A state it never leaves. */
            PyObject *rest = PyList_GET_ITEM(table, 5);
            Py_INCREF(rest);
            return PyList_SetItem(L->pending, i, rest);
        }
        /* Profiled: the state's timeline draws (timevarying.py), in C when it can. */
        if (following < L->n_ticks) {
            int drawn = timeline_draw(L, thresholds, index, i, following, tick_key,
                                      upcoming);
            if (drawn != 0)
                return drawn < 0 ? -1 : 0;
        }
        PyObject *following_obj = PyLong_FromLongLong(following);
        if (following_obj == NULL)
            return -1;
        PyObject *args[4] = {thresholds, L->key_obj, index, following_obj};
        PyObject *drawn = PyObject_VectorcallMethod(
            str_draw, args, 4 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        Py_DECREF(following_obj);
        if (drawn == NULL)
            return -1;
        if (!PyTuple_Check(drawn) || PyTuple_GET_SIZE(drawn) != 2) {
            Py_DECREF(drawn);
            PyErr_SetString(PyExc_TypeError, "a timeline's draw gives (at, move)");
            return -1;
        }
        PyObject *move = PyTuple_GET_ITEM(drawn, 1);
        Py_INCREF(move);
        if (PyList_SetItem(L->pending, i, move) < 0) {
            Py_DECREF(drawn);
            return -1;
        }
        PyObject *at_drawn = PyTuple_GET_ITEM(drawn, 0);
        int overflow = 0;
        long long at = PyLong_Check(at_drawn)
            ? PyLong_AsLongLongAndOverflow(at_drawn, &overflow) : 0;
        int failed;
        if (!PyLong_Check(at_drawn) || overflow || at >= LLONG_MAX / 2)
            failed = file_huge(L, at_drawn, index);
        else
            failed = file_at(L, at, index, i, following, upcoming);
        Py_DECREF(drawn);
        return failed;
    }
    double inv_log_stay = PyFloat_AsDouble(PyList_GET_ITEM(table, 2));
    if (inv_log_stay == -1.0 && PyErr_Occurred())
        return -1;
    uint64_t h = draw_bits(tick_key, i);
    long long at = following;
    PyObject *at_obj = NULL;
    if (leave < 1.0) {
        double wait = (log((double)((h >> 32) + 1)) - L->ln_2_pow_32) * inv_log_stay;
        if (!(wait < SAFE_WAIT)) {
            PyObject *whole = PyLong_FromDouble(wait);
            PyObject *from = whole ? PyLong_FromLongLong(following) : NULL;
            at_obj = from ? PyNumber_Add(from, whole) : NULL;
            Py_XDECREF(whole);
            Py_XDECREF(from);
            if (at_obj == NULL)
                return -1;
        }
        else {
            at += (long long)wait;
        }
    }
    Py_ssize_t j = pick(thresholds, h);
    if (j < 0) {
        Py_XDECREF(at_obj);
        if (j == PICK_PAST_END)
            PyErr_SetString(PyExc_TypeError, "thresholds end at 2**32");
        return -1;
    }
    PyObject *move = PySequence_GetItem(PyList_GET_ITEM(table, 4), j);
    if (move == NULL) {
        Py_XDECREF(at_obj);
        return -1;
    }
    if (PyList_SetItem(L->pending, i, move) < 0) {
        Py_XDECREF(at_obj);
        return -1;
    }
    if (at_obj != NULL) {
        int failed = file_huge(L, at_obj, index);
        Py_DECREF(at_obj);
        return failed;
    }
    return file_at(L, at, index, i, following, upcoming);
}

#define PREFETCH_AHEAD 8
#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(address, write) __builtin_prefetch((address), (write))
#else
#define PREFETCH(address, write) ((void)(address))
#endif

/* datagen.random's key `k` (KEY_I ...) = value. */
static inline int
set_key(Loop *L, int k, PyObject *value)
{
    if (L->rng_slots) {
        slot_set(L->rng, L->rng_offsets[k], value);
        return 0;
    }
    return PyObject_SetAttr(L->rng, *key_names[k], value);
}

/* Give other threads the GIL and serve signals, every YIELD_EVERY events or busy ticks: with
 * no callback and no sink no bytecode runs in the loop, so without this a thread calling
 * stop() would never run, and a signal's handler would wait. Releasing and taking back an
 * uncontended GIL costs about a tenth of a microsecond, under a nanosecond per event. */
#define YIELD_EVERY 2048

static int
loop_yield(Loop *L)
{
    L->budget = YIELD_EVERY;
    Py_BEGIN_ALLOW_THREADS
    Py_END_ALLOW_THREADS
    return PyErr_CheckSignals();
}

/* The subjects list must keep its size (user code may replace a subject, not add or remove
 * one): 0 if it did, else -1 with the ConfigurationError that Run._subjects_changed raises. */
static int
check_size(Loop *L)
{
    if (PyList_GET_SIZE(L->subjects) == L->size)
        return 0;
    PyObject *size = PyLong_FromSsize_t(L->size);
    if (size == NULL)
        return -1;
    PyObject *done = PyObject_CallMethodOneArg(L->run, str_subjects_changed, size);
    Py_DECREF(size);
    Py_XDECREF(done);
    if (done != NULL)
        PyErr_SetString(PyExc_RuntimeError, "the subjects list changed size");
    return -1;
}

/* One busy tick: every subject of `due` (sorted local indices) has its event, then its next
 * move drawn. On an error, `where` says which event (or none) it came at, and datagen.random
 * stays keyed to the event's subject: Python gives the sinks after a failing one the event
 * as the Python loop does (Run._fast_loop_failed), then unkeys it. */
static int
run_bucket(Loop *L, const Py_ssize_t *due, Py_ssize_t n, PyObject *tick_obj, long long tick,
           PyObject *ts_obj, long long timestamp)
{
    long long following = tick + 1;
    PyObject *upcoming = NULL;  /* (only used when filing into the dict) */
    int status = -1;
    if (set_key(L, KEY_T, tick_obj) < 0 || set_key(L, KEY_TB, Py_None) < 0) {
        note_between(L->where, tick, ts_obj);
        goto done;
    }
    uint64_t tick_key = L->key + (uint64_t)following * GOLDEN;
    for (Py_ssize_t b = 0; b < n; b++) {
        Py_ssize_t i = due[b];
        if (--L->budget <= 0 && (loop_yield(L) < 0 || check_size(L) < 0)) {
            note_between(L->where, tick, ts_obj);
            goto done;
        }
        /* With many subjects, each event's subject, pending move and list slots are far
         * apart in memory: fetch those of the events a few places ahead while this one
         * runs (the indices are sorted, so each is a cache miss otherwise). The lists'
         * arrays are read again at every event: user code may have resized them (which
         * check_size catches) and so moved them. */
        Py_ssize_t known = Py_MIN(PyList_GET_SIZE(L->pending), PyList_GET_SIZE(L->subjects));
        if (b + 2 * PREFETCH_AHEAD < n && due[b + 2 * PREFETCH_AHEAD] < known) {
            Py_ssize_t f = due[b + 2 * PREFETCH_AHEAD];
            PREFETCH(&((PyListObject *)L->pending)->ob_item[f], 0);
            PREFETCH(&((PyListObject *)L->subjects)->ob_item[f], 0);
        }
        if (b + PREFETCH_AHEAD < n && due[b + PREFETCH_AHEAD] < known) {
            Py_ssize_t f = due[b + PREFETCH_AHEAD];
            PREFETCH(((PyListObject *)L->subjects)->ob_item[f], 1);
        }
        PyObject *index = PyLong_FromSsize_t(i);
        if (index == NULL) {
            note_between(L->where, tick, ts_obj);
            goto done;
        }
        PyObject *move = PyList_GetItem(L->pending, i);
        PyObject *subject = PyList_GetItem(L->subjects, i);
        if (move == NULL || subject == NULL || !PyTuple_Check(move) ||
            PyTuple_GET_SIZE(move) != 7) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "a pending move is a tuple of seven");
            note_between(L->where, tick, ts_obj);
            Py_DECREF(index);
            goto done;
        }
        Py_INCREF(move);
        Py_INCREF(subject);
        PyObject *transition = PyTuple_GET_ITEM(move, 0);
        PyObject *callback = PyTuple_GET_ITEM(move, 1);
        PyObject *sinks = PyTuple_GET_ITEM(move, 2);
        PyObject *table = PyTuple_GET_ITEM(move, 3);
        int step = -1;
        /* datagen.random draws from this subject's stream at this tick. */
        if (set_key(L, KEY_I, index) < 0 || set_key(L, KEY_S, Py_None) < 0) {
            note_where(L->where, index, Py_None, tick, timestamp, move, subject);
            goto fail;
        }
        int happens = 1;
        if (callback != Py_None) {
            PyObject *args[2] = {subject, transition};
            PyObject *result = PyObject_Vectorcall(callback, args, 2, NULL);
            if (result == NULL) {
                note_where(L->where, index, Py_None, tick, timestamp, move, subject);
                goto fail;
            }
            happens = PyObject_IsTrue(result);
            Py_DECREF(result);
            if (happens < 0) {
                note_where(L->where, index, Py_None, tick, timestamp, move, subject);
                goto fail;
            }
        }
        Py_ssize_t k = move_index(move);
        if (k == -1 && PyErr_Occurred()) {
            note_where(L->where, index, Py_None, tick, timestamp, move, subject);
            goto fail;
        }
        if (happens) {
            if (add_one(L->counts, k) < 0) {
                note_where(L->where, index, Py_None, tick, timestamp, move, subject);
                goto fail;
            }
            Py_ssize_t m = PyTuple_GET_SIZE(sinks);
            for (Py_ssize_t s = 0; s < m; s++) {
                PyObject *sink = PyTuple_GET_ITEM(sinks, s);
                PyObject *args[4] = {sink, ts_obj, subject, transition};
                PyObject *result = PyObject_VectorcallMethod(
                    str_collect, args, 4 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
                if (result == NULL) {
                    note_where(L->where, index, sink, tick, timestamp, move, subject);
                    goto fail;
                }
                Py_DECREF(result);
            }
        }
        else {
            if (add_one(L->vetoes, k) < 0) {
                note_where(L->where, index, Py_None, tick, timestamp, move, subject);
                goto fail;
            }
            table = PyTuple_GET_ITEM(move, 4);
        }
        if (check_size(L) < 0 ||
            schedule(L, table, index, i, following, tick_key, &upcoming) < 0) {
            note_where(L->where, index, Py_None, tick, timestamp, move, subject);
            goto fail;
        }
        step = 0;
    fail:
        Py_DECREF(move);
        Py_DECREF(subject);
        Py_DECREF(index);
        if (step < 0)
            goto done;
    }
    status = set_key(L, KEY_I, Py_None);
    if (status < 0)
        note_between(L->where, following, ts_obj);
done:
    Py_XDECREF(upcoming);
    return status;
}

static int
as_limit(PyObject *value, long long *out)
{
    if (PyFloat_Check(value)) {
        double d = PyFloat_AS_DOUBLE(value);
        if (isinf(d) && d > 0) {
            *out = LLONG_MAX;
            return 0;
        }
        PyErr_SetString(PyExc_ValueError, "a tick limit is an int or inf");
        return -1;
    }
    int overflow = 0;
    *out = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow > 0) {
        *out = LLONG_MAX;
        return 0;
    }
    if (*out == -1 && PyErr_Occurred())
        return -1;
    if (overflow < 0) {
        PyErr_SetString(PyExc_ValueError, "a tick limit is not negative");
        return -1;
    }
    return 0;
}

/* Set run.ticks_done and run.timestamp, for readers in other threads (metrics, a shard's
 * watcher) and the sinks' polls. */
static int
note_progress(PyObject *run, long long tick, PyObject *timestamp)
{
    PyObject *t = PyLong_FromLongLong(tick);
    if (t == NULL)
        return -1;
    int failed = PyObject_SetAttr(run, str_ticks_done, t) < 0 ||
                 PyObject_SetAttr(run, str_timestamp, timestamp) < 0;
    Py_DECREF(t);
    return failed ? -1 : 0;
}

/* The fields of the engine's LoopContext (engine/loop.py), a NamedTuple read by position here:
 * tests/engine/test_loop_contract.py checks that these indices follow its field order. */
#define CTX_DUE 0
#define CTX_COUNTS 1
#define CTX_VETOES 2
#define CTX_RNG 3
#define CTX_MODEL 4
#define CTX_KEY 5
#define CTX_START 6
#define CTX_TICK_MS 7
#define CTX_N_TICKS 8
#define CTX_WHERE 9
#define CTX_LN_2_POW_32 10
#define CTX_RUN 11
#define CTX_POLLS 12
#define CTX_POLL_SECONDS 13
#define CTX_CLOCK 14
#define CTX_ARRIVE 15
#define CTX_PAUSE_AT 16
#define CTX_SIZE 17

/* The engine's part of a run_ticks() context (see its doc) into L, checked; subjects and
 * pending are the call's own arguments. Returns -1 with TypeError on a context of the wrong
 * shape. */
static int
read_context(PyObject *context, PyObject *subjects, PyObject *pending, Loop *L)
{
    if (!PyTuple_Check(context) || PyTuple_GET_SIZE(context) != CTX_SIZE) {
        PyErr_SetString(PyExc_TypeError, "the engine's context is a LoopContext of 17 fields");
        return -1;
    }
    memset(L, 0, sizeof *L);
    L->due = PyTuple_GET_ITEM(context, CTX_DUE);
    L->counts = PyTuple_GET_ITEM(context, CTX_COUNTS);
    L->vetoes = PyTuple_GET_ITEM(context, CTX_VETOES);
    L->rng = PyTuple_GET_ITEM(context, CTX_RNG);
    L->model = PyTuple_GET_ITEM(context, CTX_MODEL);
    L->key_obj = PyTuple_GET_ITEM(context, CTX_KEY);
    L->where = PyTuple_GET_ITEM(context, CTX_WHERE);
    L->ln_2_pow_32 = PyFloat_AsDouble(PyTuple_GET_ITEM(context, CTX_LN_2_POW_32));
    L->subjects = subjects;
    L->pending = pending;
    if (!PyDict_Check(L->due) || !PyList_Check(L->counts) || !PyList_Check(L->vetoes) ||
        !PyList_Check(L->where) || PyList_GET_SIZE(L->where) < 6 || !PyList_Check(subjects) ||
        !PyList_Check(pending) || !PyLong_Check(L->key_obj)) {
        PyErr_SetString(PyExc_TypeError, "the engine's context has the wrong shape");
        return -1;
    }
    L->key = PyLong_AsUnsignedLongLongMask(L->key_obj);
    if (PyErr_Occurred() || as_limit(PyTuple_GET_ITEM(context, CTX_N_TICKS), &L->n_ticks) < 0)
        return -1;
    return 0;
}

PyDoc_STRVAR(run_ticks_doc,
"run_ticks(context, subjects, pending, tick, next_arrival) -> (tick, timestamp, finished)\n\n"
"Run the ticks from `tick` to the end of the run, or until it stops (model._stopping), or\n"
"until nobody will ever move again (`finished`), or, past the clock time pause_at, at the\n"
"end of a busy tick (not finished, tick below n_ticks). `context` is the engine's LoopContext\n"
"(engine/loop.py), a NamedTuple of (due, counts, vetoes, rng,\n"
"model, key, timestamp_start, tick_ms, n_ticks, where, ln_2_pow_32, run, polls,\n"
"poll_seconds, clock, arrive, pause_at): with pause_at a number (not None), what is still due\n"
"goes back into `due` when the call returns without an error.\n"
"After each busy tick the sinks' polls are called at most every\n"
"poll_seconds by clock() (None: the clock time.perf_counter reads), and arrive(tick) creates\n"
"the subjects arriving at tick next_arrival and returns the next one. The timestamp is that\n"
"of the last busy tick (None if none ran). On an error, `where` (a list of six) holds the\n"
"local index, the failing sink, the tick, the timestamp, the move and the subject of the\n"
"event it came at (index, sink, move and subject None between events), and datagen.random\n"
"is left keyed to the event's subject: Run._fast_loop_failed finishes what the Python loop\n"
"does. A resized subjects list and a tick beyond 64 bits are raised by run._subjects_changed\n"
"and run._too_far. Other threads run, and signals are served, every 2,048 events.");

/* How often (in busy ticks) the loop updates the run's progress for readers in other threads
 * (the Python loop does it every 256 ticks). */
#define PROGRESS_EVERY 256

/* The clock of the sinks' polls when the engine gives None: the one time.perf_counter()
 * reads on this platform, in seconds, without a call into Python. */
static int
read_clock(PyObject *clock, double *now)
{
    if (clock == Py_None) {
        struct timespec ts;
        if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        *now = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
        return 0;
    }
    PyObject *now_obj = PyObject_CallNoArgs(clock);
    *now = now_obj ? PyFloat_AsDouble(now_obj) : -1.0;
    Py_XDECREF(now_obj);
    return PyErr_Occurred() ? -1 : 0;
}

/* The run reached `tick`, beyond 64-bit ticks or timestamps: Run._too_far(tick, timestamp)
 * raises the error the Python loop raises (timestamp: of the last busy tick). Returns -1. */
static int
too_far(PyObject *run, PyObject *tick, PyObject *timestamp)
{
    PyObject *last = timestamp;
    if (last == NULL && (last = PyObject_GetAttr(run, str_timestamp)) == NULL)
        return -1;
    if (timestamp != NULL)
        Py_INCREF(last);
    PyObject *done = PyObject_CallMethodObjArgs(run, str_too_far, tick, last, NULL);
    Py_DECREF(last);
    Py_XDECREF(done);
    if (done != NULL)
        PyErr_SetString(PyExc_RuntimeError, "a tick beyond 64 bits");
    return -1;
}

/* The tick of the next arrivals into *out: ticks from TICK_LIMIT on (where the run stops with
 * an error) are TICK_LIMIT, with the Python int kept in *huge (a new reference) for the error;
 * inf is LLONG_MAX (never). */
static int
arrival_limit(PyObject *value, long long *out, PyObject **huge)
{
    Py_CLEAR(*huge);
    if (as_limit(value, out) < 0)
        return -1;
    if (*out >= TICK_LIMIT && PyLong_Check(value)) {
        *out = TICK_LIMIT;
        Py_INCREF(value);
        *huge = value;
    }
    return 0;
}

static PyObject *
run_ticks(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Loop L;
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "run_ticks takes 5 arguments");
        return NULL;
    }
    PyObject *context = args[0];
    if (read_context(context, args[1], args[2], &L) < 0)
        return NULL;
    PyObject *start_obj = PyTuple_GET_ITEM(context, CTX_START);
    PyObject *tick_ms_obj = PyTuple_GET_ITEM(context, CTX_TICK_MS);
    PyObject *run = PyTuple_GET_ITEM(context, CTX_RUN);
    PyObject *polls = PyTuple_GET_ITEM(context, CTX_POLLS);
    double poll_seconds = PyFloat_AsDouble(PyTuple_GET_ITEM(context, CTX_POLL_SECONDS));
    PyObject *clock = PyTuple_GET_ITEM(context, CTX_CLOCK);
    PyObject *arrive = PyTuple_GET_ITEM(context, CTX_ARRIVE);
    /* None: no checkpoints. A number: the clock time after which the loop returns at the
     * end of a busy tick; and what is still due goes back into `due` whenever it returns
     * without an error (paused, stopped or at the end), for the checkpoint to write. */
    PyObject *pause_obj = PyTuple_GET_ITEM(context, CTX_PAUSE_AT);
    int hand_back = pause_obj != Py_None;
    double pause_at = hand_back ? PyFloat_AsDouble(pause_obj) : INFINITY;
    if (hand_back && pause_at == -1.0 && PyErr_Occurred())
        return NULL;
    if (!PyList_Check(polls)) {
        PyErr_SetString(PyExc_TypeError, "run_ticks: polls is a list");
        return NULL;
    }
    L.run = run;
    L.size = PyList_GET_SIZE(L.subjects);
    L.budget = YIELD_EVERY;
    long long start = PyLong_AsLongLong(start_obj);
    long long tick_ms = PyLong_AsLongLong(tick_ms_obj);
    long long tick = PyLong_AsLongLong(args[3]);
    long long next_arrival;
    PyObject *arrival_huge = NULL;  /* the tick of the next arrivals when beyond TICK_LIMIT */
    if (PyErr_Occurred() || arrival_limit(args[4], &next_arrival, &arrival_huge) < 0)
        return NULL;

    Calendar cal;
    if (cal_init(&cal, tick) < 0) {
        Py_XDECREF(arrival_huge);
        return NULL;
    }
    L.cal = &cal;
    PyObject *result = NULL;
    PyObject *timestamp_obj = NULL;  /* of the last busy tick */
    L.rng_slots = key_slots(Py_TYPE(L.rng), ENGINE_KEYS, L.rng_offsets);
    /* model._stopping, read at every tick (stop() sets it), straight from the model's dict
     * when it is a plain attribute there. */
    PyObject *model_dict = plain_dict(L.model, &str_stopping, 1);
    if (model_dict != NULL && !PyDict_GetItemWithError(model_dict, str_stopping)) {
        Py_CLEAR(model_dict);
        PyErr_Clear();
    }
    Vec current = {NULL, 0, 0};
    Vec scratch = {NULL, 0, 0};
    int finished = 0;
    long long busy = 0;
    double next_poll = 0.0;
    Py_ssize_t n_polls = PyList_GET_SIZE(polls);
    if (cal_take(&cal, L.due) < 0)
        goto out;

    while (tick < L.n_ticks) {
        if (tick >= next_arrival) {
            if (tick >= TICK_LIMIT) {
                /* Arrivals beyond 64-bit ticks: the Python loop stops there with an error. */
                PyObject *at = arrival_huge;
                if (at != NULL)
                    Py_INCREF(at);
                else if ((at = PyLong_FromLongLong(tick)) == NULL)
                    goto between;
                too_far(run, at, timestamp_obj);
                note_between_at(L.where, at, timestamp_obj);
                Py_DECREF(at);
                goto out;
            }
            PyObject *at = PyLong_FromLongLong(tick);
            PyObject *next = at ? PyObject_CallOneArg(arrive, at) : NULL;
            Py_XDECREF(at);
            if (next == NULL || arrival_limit(next, &next_arrival, &arrival_huge) < 0) {
                Py_XDECREF(next);
                goto between;
            }
            Py_DECREF(next);
            /* The arrivals were filed into the dict: into the calendar with them. */
            L.size = PyList_GET_SIZE(L.subjects);
            if (cal_take(&cal, L.due) < 0)
                goto between;
        }
        PyObject *flag = model_dict ? PyDict_GetItemWithError(model_dict, str_stopping)
                                    : PyObject_GetAttr(L.model, str_stopping);
        int stopping = flag == NULL ? -1 : PyObject_IsTrue(flag);
        if (model_dict == NULL)
            Py_XDECREF(flag);
        else if (flag == NULL && !PyErr_Occurred())
            PyErr_SetString(PyExc_AttributeError, "the model has no _stopping");
        if (stopping < 0)
            goto between;
        if (stopping) {
            finished = 1;
            break;
        }
        if (cal_advance(&cal, tick) < 0)
            goto between;
        Vec *slot = &cal.slots[tick & WHEEL_MASK];
        if (slot->len == 0) {
            if (cal.in_wheel == 0 && cal.far_len == 0 && next_arrival >= L.n_ticks) {
                if (cal.huge == NULL) {
                    finished = 1;  /* nobody will ever move again */
                    break;
                }
                /* Only subjects due beyond 64-bit ticks: the Python loop goes on to the
                 * first of them, and stops there with an error. */
                PyObject *first = NULL;
                for (Py_ssize_t n = 0; n < PyList_GET_SIZE(cal.huge); n++) {
                    PyObject *at = PyTuple_GET_ITEM(PyList_GET_ITEM(cal.huge, n), 0);
                    int less = first == NULL ? 1 : PyObject_RichCompareBool(at, first, Py_LT);
                    if (less < 0)
                        goto between;
                    if (less)
                        first = at;
                }
                if (first != NULL) {
                    Py_INCREF(first);
                    too_far(run, first, timestamp_obj);
                    note_between_at(L.where, first, timestamp_obj);
                    Py_DECREF(first);
                    goto out;
                }
                finished = 1;
                break;
            }
            /* On to the next tick with something to do: through the wheel's empty slots,
             * or, with the wheel empty, straight to the first far entry. */
            tick += 1;
            if (cal.in_wheel == 0) {
                long long to = cal.far_min;
                if (to > next_arrival)
                    to = next_arrival;
                if (to > L.n_ticks)
                    to = L.n_ticks;
                if (to > tick)
                    tick = to;
            }
            else {
                while (tick < L.n_ticks && tick < next_arrival && tick < cal.limit &&
                       cal.slots[tick & WHEEL_MASK].len == 0)
                    tick += 1;
            }
            continue;
        }
        /* Take the tick's subjects out of its slot. The slot gets the previous tick's buffer
         * back only when it is small: large ones would leave every slot of the wheel holding
         * as much memory as the busiest tick needed. */
        Vec taken = *slot;
        if (current.cap <= RECYCLE_CAP) {
            *slot = current;  /* a small buffer serves the slot again */
            slot->len = 0;
        }
        else {
            PyMem_Free(current.items);
            slot->items = NULL;
            slot->len = slot->cap = 0;
        }
        current = taken;
        cal.in_wheel -= current.len;
        if (sort_indices(current.items, current.len, &scratch) < 0)
            goto between;
        /* The tick's timestamp, start + tick * tick_ms, without a signed overflow: a tick
         * or a timestamp beyond 64 bits ends the run with an error, as in Python. */
        long long product, stamp;
        if (tick >= TICK_LIMIT || __builtin_mul_overflow(tick, tick_ms, &product) ||
            __builtin_add_overflow(start, product, &stamp)) {
            PyObject *at = PyLong_FromLongLong(tick);
            if (at != NULL) {
                too_far(run, at, timestamp_obj);
                Py_DECREF(at);
            }
            goto between;
        }
        PyObject *tick_obj = PyLong_FromLongLong(tick);
        PyObject *ts = tick_obj ? PyLong_FromLongLong(stamp) : NULL;
        if (ts == NULL) {
            Py_XDECREF(tick_obj);
            goto between;
        }
        Py_XSETREF(timestamp_obj, ts);
        int failed = run_bucket(&L, current.items, current.len, tick_obj, tick, ts, stamp);
        Py_DECREF(tick_obj);
        current.len = 0;
        if (failed)
            goto out;  /* run_bucket said where */
        tick += 1;
        busy += 1;
        if (n_polls > 0) {
            /* As the Python loop: after every busy tick, polls at most every poll_seconds
             * (the first busy tick polls). */
            double now;
            if (read_clock(clock, &now) < 0)
                goto between;
            if (now >= next_poll) {
                next_poll = now + poll_seconds;
                if (note_progress(run, tick, timestamp_obj) < 0)
                    goto between;
                for (Py_ssize_t n = 0; n < n_polls && n < PyList_GET_SIZE(polls); n++) {
                    PyObject *poll = PyList_GET_ITEM(polls, n);
                    Py_INCREF(poll);
                    PyObject *done = PyObject_CallNoArgs(poll);
                    Py_DECREF(poll);
                    if (done == NULL)
                        goto between;
                    Py_DECREF(done);
                }
                if (check_size(&L) < 0)
                    goto between;
            }
        }
        if (busy % PROGRESS_EVERY == 0 && note_progress(run, tick, timestamp_obj) < 0)
            goto between;
        if (--L.budget <= 0 && loop_yield(&L) < 0)
            goto between;
        if (pause_at != INFINITY) {
            /* A checkpoint is due: back to Python at this tick boundary (not finished). */
            double now;
            if (read_clock(clock, &now) < 0)
                goto between;
            if (now >= pause_at)
                break;
        }
    }
    if (hand_back && cal_give(&cal, L.due) < 0)
        goto between;
    if (timestamp_obj != NULL)
        result = Py_BuildValue("(LOO)", tick, timestamp_obj, finished ? Py_True : Py_False);
    else
        result = Py_BuildValue("(LOO)", tick, Py_None, finished ? Py_True : Py_False);
    goto out;
between:
    /* An error between events: the tick it came at, and the last busy tick's timestamp. */
    note_between(L.where, tick, timestamp_obj);
out:
    /* The run is over, however it ended: what is still due goes with the calendar (filing
     * a million subjects back into Run.due took longer than stopping). */
    PyMem_Free(current.items);
    PyMem_Free(scratch.items);
    cal_free(&cal);
    loop_release(&L);
    Py_XDECREF(timestamp_obj);
    Py_XDECREF(model_dict);
    Py_XDECREF(arrival_huge);
    return result;
}

PyDoc_STRVAR(schedule_all_doc,
"schedule_all(context, pending, count, table, start=0)\n\n"
"File local subjects start .. count - 1 under the tick each first leaves the state of\n"
"`table`, drawing from tick 0 on (Run.schedule_all). `context` is run_ticks' context.");

static PyObject *
schedule_all(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Loop L;
    if ((nargs != 4 && nargs != 5) || !PyList_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "schedule_all(context, pending, count, table, start=0)");
        return NULL;
    }
    Py_ssize_t start = 0;
    if (nargs == 5) {
        start = PyLong_AsSsize_t(args[4]);
        if (start == -1 && PyErr_Occurred())
            return NULL;
        if (start < 0) {
            PyErr_SetString(PyExc_ValueError, "schedule_all: start must be >= 0");
            return NULL;
        }
    }
    /* (No subjects are needed: the pending list stands in for them in the check.) */
    if (read_context(args[0], args[1], args[1], &L) < 0)
        return NULL;
    Py_ssize_t count = PyLong_AsSsize_t(args[2]);
    if (PyErr_Occurred())
        return NULL;
    if (count > PyList_GET_SIZE(L.pending)) {
        PyErr_SetString(PyExc_ValueError, "more subjects than pending moves");
        return NULL;
    }
    /* due[0] plays the part of the loop's bucket of the tick that follows. */
    PyObject *zero = PyLong_FromLong(0);
    if (zero == NULL)
        return NULL;
    PyObject *upcoming = PyDict_GetItemWithError(L.due, zero);
    Py_DECREF(zero);
    if (upcoming == NULL && PyErr_Occurred())
        return NULL;
    Py_XINCREF(upcoming);
    for (Py_ssize_t i = start; i < count; i++) {
        PyObject *index = PyLong_FromSsize_t(i);
        if (index == NULL)
            goto failed;
        /* tick 0: draw()'s hash input is key + i * INDEX_GOLDEN. */
        int status = schedule(&L, args[3], index, i, 0, L.key, &upcoming);
        Py_DECREF(index);
        if (status < 0)
            goto failed;
    }
    Py_XDECREF(upcoming);
    loop_release(&L);
    Py_RETURN_NONE;
failed:
    Py_XDECREF(upcoming);
    loop_release(&L);
    return NULL;
}

/* -- datagen.random: SubjectRandom.randint (randomness.py has the same in Python) ---------- */

#define SPREAD_I UINT64_C(0xD1B54A32D192ED03)
#define SPREAD_T UINT64_C(0xAEF17502108EF2D9)

static PyObject *randint_fallback;

/* A uint64 from a Python int, modulo 2**64 (the Python code masks the same way). */
static int
as_u64(PyObject *value, uint64_t *out)
{
    if (!PyLong_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "a stream key is an int");
        return -1;
    }
    *out = PyLong_AsUnsignedLongLongMask(value);
    return (*out == (uint64_t)-1 && PyErr_Occurred()) ? -1 : 0;
}

static PyObject *
call_fallback(PyObject *self, PyObject *const *args)
{
    PyObject *full[3] = {self, args[0], args[1]};
    return PyObject_Vectorcall(randint_fallback, full, 3, NULL);
}

/* randint's key offsets for the last class it drew for, kept while the class is unchanged
 * (its version tag, which any assignment to the class or its bases changes): key_slots() looks
 * up six names in the class, which cost as much as the draw itself. */
static PyTypeObject *randint_type;
static unsigned int randint_type_version;
static int randint_type_slots;
static Py_ssize_t randint_offsets[N_KEYS];

/* The offsets of the keys of `type` (key_slots with all N_KEYS): a pointer to them, or NULL
 * when the class does not keep them in plain slots. */
static const Py_ssize_t *
randint_slots(PyTypeObject *type)
{
#ifdef Py_TPFLAGS_VALID_VERSION_TAG
    if (type == randint_type && randint_type_version != 0 &&
        PyType_HasFeature(type, Py_TPFLAGS_VALID_VERSION_TAG) &&
        type->tp_version_tag == randint_type_version)
        return randint_type_slots ? randint_offsets : NULL;
#endif
    randint_type_slots = key_slots(type, N_KEYS, randint_offsets);
    Py_INCREF(type);
    Py_XSETREF(randint_type, type);
    /* key_slots' lookups gave the class a version tag, if it can have one. */
#ifdef Py_TPFLAGS_VALID_VERSION_TAG
    randint_type_version =
        PyType_HasFeature(type, Py_TPFLAGS_VALID_VERSION_TAG) ? type->tp_version_tag : 0;
#else
    randint_type_version = 0;
#endif
    return randint_type_slots ? randint_offsets : NULL;
}

/* The draw of randint(a, b) - a, for `n` = b - a + 1 (1 to 2**64 - 1), from the stream the
 * engine keyed `self` to: the same steps as SubjectRandom.randint, with the keys read from and
 * written to its slots. 1 and the draw in *out; 0 when this does not apply (a class that
 * does not keep the keys in slots, an unkeyed generator: the Python randint draws then); -1
 * with an error set. */
static int
stream_below(PyObject *self, uint64_t n, uint64_t *out)
{
    const Py_ssize_t *at = randint_slots(Py_TYPE(self));
    if (at == NULL)
        return 0;
    PyObject *index = slot_get(self, at[KEY_I]);
    if (index == NULL || index == Py_None)
        return 0;
    int shift = __builtin_clzll(n);
    uint64_t s;
    PyObject *position = slot_get(self, at[KEY_S]);
    if (position == NULL || position == Py_None) {
        /* A fresh event starts with no Gaussian value held back from someone else's draws. */
        slot_set(self, at[KEY_GAUSS], Py_None);
        uint64_t tb, i;
        PyObject *tick_base = slot_get(self, at[KEY_TB]);
        if (tick_base == NULL || tick_base == Py_None) {
            PyObject *base = slot_get(self, at[KEY_BASE]);
            PyObject *tick = slot_get(self, at[KEY_T]);
            uint64_t base_value, tick_value;
            if (base == NULL || tick == NULL) {
                PyErr_SetString(PyExc_AttributeError, "the stream is not keyed");
                return -1;
            }
            if (as_u64(base, &base_value) < 0 || as_u64(tick, &tick_value) < 0)
                return -1;
            tb = base_value + (tick_value + 2) * SPREAD_T;
            PyObject *stored = PyLong_FromUnsignedLongLong(tb);
            if (stored == NULL)
                return -1;
            slot_set(self, at[KEY_TB], stored);
            Py_DECREF(stored);
        }
        else if (as_u64(tick_base, &tb) < 0)
            return -1;
        /* The index again: setting gauss_next or _tb may have freed an object whose
         * finaliser changed the keys. */
        index = slot_get(self, at[KEY_I]);
        if (index == NULL || index == Py_None) {
            PyErr_SetString(PyExc_RuntimeError, "the stream's keys changed during a draw");
            return -1;
        }
        if (as_u64(index, &i) < 0)
            return -1;
        s = tb + i * SPREAD_I;
    }
    else {
        if (as_u64(position, &s) < 0)
            return -1;
        s += GOLDEN;
    }
    for (;;) {
        uint64_t z = (s ^ (s >> 30)) * MIX1;
        z = (z ^ (z >> 27)) * MIX2;
        uint64_t r = (z ^ (z >> 31)) >> shift;
        if (r < n) {
            PyObject *stored = PyLong_FromUnsignedLongLong(s);
            if (stored == NULL)
                return -1;
            slot_set(self, at[KEY_S], stored);
            Py_DECREF(stored);
            *out = r;
            return 1;
        }
        s += GOLDEN;
    }
}

/* randint(a, b) while the engine keys the generator to a subject and tick: the same draws as
 * SubjectRandom.randint (stream_below). */
static PyObject *
stream_randint(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "randint() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    if (!PyLong_CheckExact(args[0]) || !PyLong_CheckExact(args[1]))
        return call_fallback(self, args);
    int overflow_a = 0, overflow_b = 0;
    long long a = PyLong_AsLongLongAndOverflow(args[0], &overflow_a);
    long long b = PyLong_AsLongLongAndOverflow(args[1], &overflow_b);
    if (overflow_a || overflow_b || b < a || (uint64_t)b - (uint64_t)a == UINT64_MAX)
        return call_fallback(self, args);
    uint64_t r;
    int done = stream_below(self, (uint64_t)b - (uint64_t)a + 1, &r);
    if (done < 0)
        return NULL;
    if (done == 0)
        return call_fallback(self, args);
    return PyLong_FromLongLong((long long)((uint64_t)a + r));
}

/* The C side of randint for other C code (values/_cvalues.c draws its values with it, through
 * the capsule `_bound_randint`): `method` is a generator's bound randint (`rng.randint`);
 * when it is this one and the generator is keyed, 1 and randint(a, b) - a in *out, with the
 * generator's stream moved on as the call would; 0 when not (call `method` instead); -1 with
 * an error set. */
static int
bound_randint(PyObject *method, long long a, long long b, uint64_t *out)
{
    if (!PyCFunction_Check(method) ||
        PyCFunction_GET_FUNCTION(method) != (PyCFunction)(void (*)(void))stream_randint)
        return 0;
    PyObject *self = PyCFunction_GET_SELF(method);
    if (self == NULL || b < a || (uint64_t)b - (uint64_t)a == UINT64_MAX)
        return 0;
    Py_INCREF(self);
    int done = stream_below(self, (uint64_t)b - (uint64_t)a + 1, out);
    Py_DECREF(self);
    return done;
}

static PyMethodDef stream_randint_def = {
    "randint", (PyCFunction)(void (*)(void))stream_randint, METH_FASTCALL,
    "randint(a, b): a whole number in [a, b], both ends included (from the subject's stream "
    "while the engine keys the generator)."};

PyDoc_STRVAR(randint_method_doc,
"randint_method(cls, fallback) -> a randint method for class cls\n\n"
"The method draws as randomness.SubjectRandom.randint does; for anything but two int\n"
"arguments of a keyed generator it calls fallback(self, a, b).");

static PyObject *
randint_method(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyType_Check(args[0]) || !PyCallable_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "randint_method(cls, fallback)");
        return NULL;
    }
    Py_INCREF(args[1]);
    Py_XSETREF(randint_fallback, args[1]);
    return PyDescr_NewMethod((PyTypeObject *)args[0], &stream_randint_def);
}

/* A disordered sink's collect() (sinks/disorder.py, DisorderedSink._collector): the same
 * steps as the Python closure, in the same order, with the same arithmetic. Most events meet
 * no fate and go straight to the inner sink; every other case calls back into Python. */

/* How far apart neighbouring subjects' draws start (disorder._SPREAD). */
#define DISORDER_SPREAD UINT64_C(0xD6E8FEB86659FD93)

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *inner;    /* the inner sink's collect */
    PyObject *truth;    /* the truth sink's collect, or None */
    PyObject *held;     /* the heap of late events (a list of tuples, release time first) */
    PyObject *release;  /* release(timestamp): pass on what is due before it */
    PyObject *special;  /* special(h, timestamp, subject, transition): drop, copy or hold */
    PyObject *counted;  /* counted(timestamp) -> h, for an event of no run's subject */
    PyObject *rng;      /* the run's datagen.random (its _i), or a stand-in */
    PyObject *fallback; /* the Python closure, for a timestamp that is no 64-bit int */
    uint64_t start;
    uint64_t late_below;
    uint64_t base;
    long long stamp;
    int has_stamp;
} DisorderObject;

static PyObject *
disorder_vectorcall(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    DisorderObject *self = (DisorderObject *)op;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 3 || kwnames != NULL) {
        PyErr_SetString(PyExc_TypeError, "collect(timestamp, subject, transition)");
        return NULL;
    }
    PyObject *timestamp = args[0];
    int overflow = 0;
    long long ts = 0;
    if (PyLong_CheckExact(timestamp)) {
        ts = PyLong_AsLongLongAndOverflow(timestamp, &overflow);
        if (ts == -1 && PyErr_Occurred()) {
            return NULL;
        }
    }
    if (!PyLong_CheckExact(timestamp) || overflow) {
        return PyObject_Vectorcall(self->fallback, args, 3, NULL);
    }
    if (self->truth != Py_None) {
        PyObject *r = PyObject_Vectorcall(self->truth, args, 3, NULL);
        if (r == NULL) {
            return NULL;
        }
        Py_DECREF(r);
    }
    if (PyList_GET_SIZE(self->held) > 0) {
        PyObject *top = PyList_GET_ITEM(self->held, 0);
        if (!PyTuple_Check(top) || PyTuple_GET_SIZE(top) < 1) {
            PyErr_SetString(PyExc_TypeError, "a held event must be a tuple");
            return NULL;
        }
        Py_INCREF(top);
        int due = PyObject_RichCompareBool(PyTuple_GET_ITEM(top, 0), timestamp, Py_LT);
        Py_DECREF(top);
        if (due < 0) {
            return NULL;
        }
        if (due) {
            PyObject *r = PyObject_CallOneArg(self->release, timestamp);
            if (r == NULL) {
                return NULL;
            }
            Py_DECREF(r);
        }
    }
    PyObject *index = PyObject_GetAttr(self->rng, str_i);
    if (index == NULL) {
        return NULL;
    }
    uint64_t h;
    PyObject *drawn = NULL;
    if (index == Py_None) {
        Py_DECREF(index);
        drawn = PyObject_CallOneArg(self->counted, timestamp);
        if (drawn == NULL) {
            return NULL;
        }
        h = PyLong_AsUnsignedLongLong(drawn);
        if (h == (uint64_t)-1 && PyErr_Occurred()) {
            Py_DECREF(drawn);
            return NULL;
        }
    }
    else {
        long long i = PyLong_AsLongLong(index);
        Py_DECREF(index);
        if (i == -1 && PyErr_Occurred()) {
            return NULL;
        }
        if (!self->has_stamp || ts != self->stamp) {
            self->stamp = ts;
            self->has_stamp = 1;
            self->base = self->start + (uint64_t)ts * GOLDEN;
        }
        h = self->base + (uint64_t)i * DISORDER_SPREAD;
        h = (h ^ (h >> 30)) * MIX1;
        h = (h ^ (h >> 27)) * MIX2;
    }
    if (h >= self->late_below) {
        Py_XDECREF(drawn);
        return PyObject_Vectorcall(self->inner, args, 3, NULL);
    }
    if (drawn == NULL && (drawn = PyLong_FromUnsignedLongLong(h)) == NULL) {
        return NULL;
    }
    PyObject *call[4] = {drawn, args[0], args[1], args[2]};
    PyObject *r = PyObject_Vectorcall(self->special, call, 4, NULL);
    Py_DECREF(drawn);
    return r;
}

static int
disorder_traverse(DisorderObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->inner);
    Py_VISIT(self->truth);
    Py_VISIT(self->held);
    Py_VISIT(self->release);
    Py_VISIT(self->special);
    Py_VISIT(self->counted);
    Py_VISIT(self->rng);
    Py_VISIT(self->fallback);
    return 0;
}

static int
disorder_clear(DisorderObject *self)
{
    Py_CLEAR(self->inner);
    Py_CLEAR(self->truth);
    Py_CLEAR(self->held);
    Py_CLEAR(self->release);
    Py_CLEAR(self->special);
    Py_CLEAR(self->counted);
    Py_CLEAR(self->rng);
    Py_CLEAR(self->fallback);
    return 0;
}

static void
disorder_dealloc(DisorderObject *self)
{
    PyObject_GC_UnTrack(self);
    disorder_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
disorder_call(PyObject *op, PyObject *args, PyObject *kwargs)
{
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0) {
        PyErr_SetString(PyExc_TypeError, "collect(timestamp, subject, transition)");
        return NULL;
    }
    return disorder_vectorcall(op, &PyTuple_GET_ITEM(args, 0), PyTuple_GET_SIZE(args), NULL);
}

static PyTypeObject DisorderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "doge_datagen._speedups.DisorderCollect",
    .tp_basicsize = sizeof(DisorderObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(DisorderObject, vectorcall),
    .tp_call = disorder_call,
    .tp_traverse = (traverseproc)disorder_traverse,
    .tp_clear = (inquiry)disorder_clear,
    .tp_dealloc = (destructor)disorder_dealloc,
    .tp_doc = "A disordered sink's collect(timestamp, subject, transition).",
};

PyDoc_STRVAR(disorder_collect_doc,
             "disorder_collect(inner, truth, held, release, special, counted, rng, fallback, "
             "start, late_below)\n\nA disordered sink's collect() (see sinks/disorder.py).");

static PyObject *
disorder_collect(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 10 || !PyList_CheckExact(args[2])) {
        PyErr_SetString(PyExc_TypeError,
                        "disorder_collect(inner, truth, held: list, release, special, counted, "
                        "rng, fallback, start, late_below)");
        return NULL;
    }
    uint64_t start = PyLong_AsUnsignedLongLong(args[8]);
    if (start == (uint64_t)-1 && PyErr_Occurred()) {
        return NULL;
    }
    uint64_t late_below = PyLong_AsUnsignedLongLong(args[9]);
    if (late_below == (uint64_t)-1 && PyErr_Occurred()) {
        return NULL;
    }
    DisorderObject *self = PyObject_GC_New(DisorderObject, &DisorderType);
    if (self == NULL) {
        return NULL;
    }
    PyObject **fields[8] = {&self->inner,   &self->truth,   &self->held, &self->release,
                            &self->special, &self->counted, &self->rng,  &self->fallback};
    for (int n = 0; n < 8; n++) {
        Py_INCREF(args[n]);
        *fields[n] = args[n];
    }
    self->vectorcall = disorder_vectorcall;
    self->start = start;
    self->late_below = late_below;
    self->base = 0;
    self->stamp = 0;
    self->has_stamp = 0;
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

/* -- a large population on huge pages ------------------------------------------------------ */

/* A million subjects, their attribute values and the loop's lists take a few hundred MiB, and
 * every event reads a few of them at places far apart: with 4 KiB pages nearly every one of
 * those reads also misses the TLB, whose walk of the page tables is itself a few reads from
 * memory (more under a hypervisor). On 2 MiB pages the whole population is a few hundred TLB
 * entries. Linux gives an anonymous mapping huge pages where the program asks for them
 * (madvise MADV_HUGEPAGE, the default setting of transparent huge pages), and Python's
 * allocator takes its objects from 1 MiB arenas that it maps one at a time, too small for a
 * huge page. So while a run creates a large population (huge_arenas(True) ... (False)), the
 * arenas come from 64 MiB chunks mapped with that advice, aligned to 2 MiB, one after the
 * other; at any other time they come from the interpreter's own arena allocator, as before.
 * An arena of a chunk that Python gives back returns its memory to the system (MADV_DONTNEED)
 * but keeps its addresses, which serve the next arena made while on: nothing else is ever
 * mapped inside a chunk, so an address tells whose arena it is. The allocator stays
 * installed for the life of the process, so that it knows its chunks whenever they are given
 * back. */

#if defined(__linux__)
#include <sys/mman.h>
#endif

#if defined(__linux__) && defined(MADV_HUGEPAGE) && defined(MAP_ANONYMOUS)
#define HUGE_ARENAS 1
#define HUGE_PAGE ((size_t)2 << 20)
#define HUGE_CHUNK ((size_t)64 << 20)

typedef struct {
    char *start, *end;
} Span;

static PyObjectArenaAllocator plain_arenas;  /* the allocator found when ours was installed */
static int huge_installed, huge_on;
static char *huge_next, *huge_end;           /* the part of the current chunk not handed out */
static Span *huge_spans;                     /* every chunk mapped (a run makes a few) */
static size_t n_huge_spans, cap_huge_spans;
static void **huge_free;                     /* arenas of the chunks given back, to reuse */
static size_t n_huge_free, cap_huge_free, huge_free_size;

/* A new chunk of at least `size` bytes, or 0 (then the interpreter's allocator serves). */
static int
huge_chunk(size_t size)
{
    if (n_huge_spans == cap_huge_spans) {
        size_t cap = cap_huge_spans ? 2 * cap_huge_spans : 8;
        Span *spans = realloc(huge_spans, cap * sizeof *spans);
        if (spans == NULL)
            return 0;
        huge_spans = spans;
        cap_huge_spans = cap;
    }
    size_t want = size <= HUGE_CHUNK ? HUGE_CHUNK : (size + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    char *raw = mmap(NULL, want + HUGE_PAGE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED)
        return 0;
    /* Keep the 2 MiB-aligned `want` bytes inside: a huge page sits on a 2 MiB boundary. */
    char *start = (char *)(((uintptr_t)raw + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    char *end = start + want;
    if (start > raw)
        munmap(raw, (size_t)(start - raw));
    if (raw + want + HUGE_PAGE > end)
        munmap(end, (size_t)(raw + want + HUGE_PAGE - end));
    (void)madvise(start, want, MADV_HUGEPAGE);  /* only advice: without it, 4 KiB pages */
    huge_spans[n_huge_spans].start = start;
    huge_spans[n_huge_spans].end = end;
    n_huge_spans++;
    huge_next = start;
    huge_end = end;
    return 1;
}

static void *
huge_arena_alloc(void *ctx, size_t size)
{
    if (huge_on && n_huge_free > 0 && size == huge_free_size)
        return huge_free[--n_huge_free];
    if (huge_on && ((size_t)(huge_end - huge_next) >= size || huge_chunk(size))) {
        void *arena = huge_next;
        huge_next += size;
        return arena;
    }
    return plain_arenas.alloc(plain_arenas.ctx, size);
}

static void
huge_arena_free(void *ctx, void *ptr, size_t size)
{
    for (size_t n = 0; n < n_huge_spans; n++) {
        if ((char *)ptr >= huge_spans[n].start && (char *)ptr < huge_spans[n].end) {
            /* The memory goes back to the system; the addresses stay ours, so that nothing
             * else is ever mapped there, and serve a later arena of this size. */
            (void)madvise(ptr, size, MADV_DONTNEED);
            if (n_huge_free > 0 && size != huge_free_size)
                return;  /* (arenas are all of one size) the range stays unused */
            if (n_huge_free == cap_huge_free) {
                size_t cap = cap_huge_free ? 2 * cap_huge_free : 64;
                void **grown = realloc(huge_free, cap * sizeof *grown);
                if (grown == NULL)
                    return;  /* the range stays unused */
                huge_free = grown;
                cap_huge_free = cap;
            }
            huge_free[n_huge_free++] = ptr;
            huge_free_size = size;
            return;
        }
    }
    plain_arenas.free(plain_arenas.ctx, ptr, size);
}
#endif

PyDoc_STRVAR(huge_arenas_doc,
"huge_arenas(on) -> bool\n\n"
"While on, Python's allocator takes new arenas from 2 MiB-aligned chunks advised to use huge\n"
"pages (Linux; elsewhere nothing changes). Returns whether it was on before.");

static PyObject *
huge_arenas(PyObject *module, PyObject *arg)
{
    int on = PyObject_IsTrue(arg);
    if (on < 0)
        return NULL;
#ifdef HUGE_ARENAS
    int was = huge_on;
    if (on && !huge_installed) {
        PyObjectArenaAllocator ours = {NULL, huge_arena_alloc, huge_arena_free};
        PyObject_GetArenaAllocator(&plain_arenas);
        PyObject_SetArenaAllocator(&ours);
        huge_installed = 1;
    }
    huge_on = on;
    return PyBool_FromLong(was);
#else
    (void)on;
    Py_RETURN_FALSE;
#endif
}

static PyMethodDef methods[] = {
    {"huge_arenas", huge_arenas, METH_O, huge_arenas_doc},
    {"schedule_all", (PyCFunction)(void (*)(void))schedule_all, METH_FASTCALL, schedule_all_doc},
    {"randint_method", (PyCFunction)(void (*)(void))randint_method, METH_FASTCALL,
     randint_method_doc},
    {"run_ticks", (PyCFunction)(void (*)(void))run_ticks, METH_FASTCALL, run_ticks_doc},
    {"disorder_collect", (PyCFunction)(void (*)(void))disorder_collect, METH_FASTCALL,
     disorder_collect_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "doge_datagen._speedups",
    "The engine's hot loop in C (see engine.py for the same loop in Python).",
    -1,
    methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
#define INTERN(var, text) if ((var = PyUnicode_InternFromString(text)) == NULL) return NULL
    INTERN(str_i, "_i");
    INTERN(str_s, "_s");
    INTERN(str_t, "_t");
    INTERN(str_tb, "_tb");
    INTERN(str_collect, "collect");
    INTERN(str_stopping, "_stopping");
    INTERN(str_draw, "draw");
    INTERN(str_ticks_done, "ticks_done");
    INTERN(str_timestamp, "timestamp");
    INTERN(str_subjects_changed, "_subjects_changed");
    INTERN(str_too_far, "_too_far");
    INTERN(str_fast, "_fast");
    INTERN(str_cumulative, "_cumulative");
    INTERN(str_hazard_known, "_hazard_known");
    INTERN(str_fasts, "_fasts");
    INTERN(str_rest, "rest");
    INTERN(str_known_until, "_known_until");
    INTERN(str_periodic, "_periodic");
    INTERN(str_base, "_base");
    INTERN(str_gauss_next, "gauss_next");
#undef INTERN
    if (PyType_Ready(&DisorderType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    PyObject *capsule = PyCapsule_New((void *)bound_randint,
                                      "doge_datagen.engine._speedups._bound_randint", NULL);
    if (capsule == NULL || PyModule_AddObject(module, "_bound_randint", capsule) < 0) {
        Py_XDECREF(capsule);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
