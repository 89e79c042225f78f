# Types for loop_py.py when Cython compiles it as core.loop_c (pure-Python mode):
# the classes become cdef classes, the methods the loop calls on itself C
# functions, and the I/O layer and the parser are called through their vtables.
# Named after the compiled module, not the source: Cython reads loop_c.pxd.
cimport cython
ctypedef long long int64
from core._parser_c cimport RequestParser
from core.request_c cimport Request
from core._io_c cimport IO, OutQueue
from core.filecache_c cimport Answer, FileCache, FileEntry

cdef unsigned int READ, WRITE, READABLE, LISTEN_EVENTS
cdef Py_ssize_t HIGH_WATER
cdef long long SENDFILE_CHUNK
cdef int UNSENT_BOUND
cdef int SWEEP_MS, STOPPING_MS, EVENTS_PER_TURN
cdef double EMFILE_PAUSE, STOP_IDLE_GRACE
cdef bytes M_GET, M_HEAD, V10, V11
cdef object NEED_DATA, END_OF_MESSAGE
cdef int IDLE, HEAD, BODY, SENDING, LINGER


@cython.final
cdef class Connection:
    cdef public int fd
    cdef public RequestParser parser
    cdef public OutQueue out
    cdef public int file_fd
    cdef public FileEntry file_entry
    cdef public Answer pending_answer
    cdef public long long file_off, file_left
    cdef public object request, body_sink, pending, committing
    cdef public bint closing, peer_closed, linger_after, lingering, yielded, scheduled
    cdef public unsigned int events
    cdef public int phase
    cdef public double deadline
    cdef public long long requests


cdef class EventLoop:
    cdef public object listener, app, limits, committer
    cdef public double graceful_timeout
    cdef public IO io
    cdef public int listen_fd, commit_fd
    cdef public dict connections
    cdef public FileCache file_cache
    cdef double timeouts[5]         # by phase
    cdef public list ready
    cdef public bint stopping, accepting
    cdef public double accept_paused_until, now
    cdef public Py_ssize_t max_connections, unbounded_connections
    cdef public long long max_keepalive_requests
    cdef public long date_second
    cdef public bytes date
    cdef public int parent

    @cython.locals(io=IO, conn=Connection, n=int, i=int, fd=int, turn=list,
                   next_sweep=double, deadline=double, stopping_since=bint)
    cdef loop(self)
    cdef serve(self, Connection conn, unsigned int readable)
    @cython.locals(conn=Connection)
    cdef answer_commits(self)
    cdef set_accepting(self, bint accepting)
    @cython.locals(fd=int, conn=Connection)
    cdef accept(self)
    @cython.locals(n=Py_ssize_t)
    cdef on_readable(self, Connection conn)
    @cython.locals(parser=RequestParser, budget=int)
    cdef process(self, Connection conn)
    @cython.locals(answer=Answer)
    cdef start_request(self, Connection conn, Request request)
    @cython.locals(second=long)
    cdef bytes current_date(self)
    cdef refuse_before_body(self, Connection conn, Request request, object response)
    @cython.locals(request=Request, answer=Answer, entry=FileEntry, keep_alive=bint, out=OutQueue)
    cdef end_of_request(self, Connection conn)
    cdef commit_done(self, Connection conn, object response)
    cdef fail(self, Connection conn, object error)
    cdef abandon(self, Connection conn)
    cdef release_file(self, Connection conn)
    cdef log(self, Connection conn, object request, int status, long long length)
    cdef respond(self, Connection conn, object response, bint keep_alive, bint http10)
    @cython.locals(result=int, want=int64, sent=int64)
    cdef int flush(self, Connection conn) except -2
    @cython.locals(result=int, phase=int, out_before=Py_ssize_t, file_before=int64)
    cdef after_io(self, Connection conn, bint progressed)
    cdef watch(self, Connection conn, unsigned int events)
    cdef enter_phase(self, Connection conn, int phase)
    cdef start_lingering(self, Connection conn)
    @cython.locals(conn=Connection, now=double)
    cdef sweep(self)
    cdef drop(self, Connection conn)
